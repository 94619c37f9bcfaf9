import { basename } from 'node:path';
import { ExitCode, UsageError } from '../../core/errors.ts';
import { verify, type VerifyReport } from '../../api/verify.ts';
import { count, formatBytes } from '../output.ts';
import { defineCommand } from './types.ts';

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: 'check every blob, manifest and the inventory of a bundle (its volumes, signature, base)',
  usage: `Usage: airlock verify BUNDLE [--base BASE]... [--complete] [--key NAME.pub] [--approved-by REVIEWER.pub]... [--json]
       airlock verify BUNDLE.tar.* …           (a split bundle: its volumes, in place)

Hashes every blob (in parallel, streaming), checks that every manifest's content is present and that
the inventory, index.json and the tar agree, and that the tar is byte for byte as airlock writes it.
Names each bad blob and the images that use it.

A split bundle (BUNDLE.tar.001 …; name any volume, all of them, or BUNDLE.tar) is first checked
volume by volume: a missing, truncated, damaged or foreign volume is named, and so is whether the
recovery volumes (BUNDLE.tar.par01 …) suffice for \`airlock repair\` to rebuild what is lost.

A delta (pack --since) passes on its own when it is sound: what it relies on from its base is
reported, not counted missing.

Options:
  --base BASE      check a delta against its base bundle (repeat for a chain of deltas): the base it
                   names is given and holds every blob the delta relies on
  --complete       demand a self-sufficient bundle: a delta fails
  --key NAME.pub   demand a signature by this key (from \`airlock keygen\`): fails on an unsigned
                   bundle, another key, any changed byte of the inventory (which pins every blob),
                   or signature metadata that names another signer. Without it, the key a signed
                   bundle names is reported as a claim, never as its signer.
  --approved-by REVIEWER.pub
                   demand an approval by this key (\`airlock approve\`) in BUNDLE.approvals/
                   beside the bundle (repeatable: every one named): a missing approval, one
                   that does not verify with the key, or one for another inventory fails

Exit code 0 when the bundle is intact, ${ExitCode.integrity} when anything is wrong.`,
  options: {
    base: { type: 'string', multiple: true },
    complete: { type: 'boolean', default: false },
    key: { type: 'string' },
    'approved-by': { type: 'string', multiple: true },
  },
  async run({ values, positionals, out, signal }) {
    if (positionals.length === 0) throw new UsageError('verify needs a bundle: airlock verify BUNDLE (or its volumes, BUNDLE.tar.*)');
    const started = Date.now();
    out.begin('verify', 0);
    const report = await verify(positionals.length === 1 ? positionals[0]! : positionals, {
      signal,
      base: (values.base as string[] | undefined) ?? [],
      complete: values.complete === true,
      key: values.key as string | undefined,
      approvedBy: values['approved-by'] as string[] | undefined,
      onEvent: (p) => out.progress(p.done, p.total),
    });
    const secs = (Date.now() - started) / 1000;
    const name = report.bundle;
    const lines = report.problems.map((p) => {
      const head = p.digest ?? p.entry ?? '';
      // Volume problems already start with the volume's name.
      const text = p.message.startsWith(`${head} `) ? p.message : `${head}: ${p.message}`;
      return `  ${text}${p.images.length ? ` (used by ${p.images.join(', ')})` : ''}${p.volume && p.entry !== basename(p.volume) ? ` [in ${p.volume.split(' and ').map((v) => basename(v)).join(' and ')}]` : ''}`;
    });
    out.result(
      { bundle: name, ok: report.ok, blobs: report.blobs, bytes: report.bytes, problems: report.problems, seconds: secs, ...extras(report) },
      [
        report.ok
          ? `${name}: OK, ${count(report.blobs, 'blob')}${report.tools !== undefined ? `, ${count(report.tools, 'tool')}` : ''}${report.files !== undefined ? `, ${count(report.files, 'file')}` : ''}, ${formatBytes(report.bytes)} verified in ${secs.toFixed(1)}s`
          : `${name}: ${count(report.problems.length, 'problem')}\n${lines.join('\n')}`,
        ...notes(report, values.key !== undefined),
      ].join('\n'),
    );
    return report.ok ? ExitCode.ok : ExitCode.integrity;
  },
});

function extras(r: VerifyReport): Record<string, unknown> {
  return { ...(r.tools !== undefined ? { tools: r.tools } : {}), ...(r.files !== undefined ? { files: r.files } : {}), ...(r.delta ? { delta: r.delta } : {}), ...(r.signature ? { signature: r.signature } : {}), ...(r.volumes ? { volumes: r.volumes } : {}), ...(r.approvals ? { approvals: r.approvals } : {}) };
}

function notes(r: VerifyReport, keyGiven: boolean): string[] {
  const out: string[] = [];
  if (r.volumes?.layout) {
    const v = r.volumes.layout;
    const bad = r.volumes.files.filter((f) => f.state !== 'ok').length;
    out.push(`volumes: ${v.count} of at most ${formatBytes(v.size)}, ${v.parity} recovery volume${v.parity === 1 ? '' : 's'}${bad === 0 ? ', all intact' : ''}`);
  }
  if (r.delta) {
    const d = r.delta;
    out.push(
      `delta of ${d.base.name} ${d.base.version} (inventory ${d.base.inventory}): relies on ${d.blobs} blob${d.blobs === 1 ? '' : 's'} (${formatBytes(d.bytes)}) from it; ` +
        (d.checkedAgainst ? `checked against ${d.checkedAgainst.join(', ')}` : 'not checked against it (give --base BASE)'),
    );
  }
  if (r.signature) out.push(signatureNote(r.signature, keyGiven));
  for (const a of r.approvals ?? []) out.push(`approved by key ${a.key} (${basename(a.keyPath)}) at ${a.time}${a.note !== undefined ? `: ${JSON.stringify(a.note)}` : ''}`);
  return out;
}

/** The signer is named only when a key given verified it; what the bundle claims is said to be a claim. */
function signatureNote(s: NonNullable<VerifyReport['signature']>, keyGiven: boolean): string {
  if (!s.signed) return 'not signed';
  if (s.verified) return `signed by key ${s.key} (${s.algorithm}): verified with the key given${s.claimed && s.claimed.key !== s.key ? `; the bundle claims another signer (${s.claimed.key})` : ''}`;
  return `signed, not verified (claims key ${s.claimed?.key}, ${s.claimed?.algorithm}): ${keyGiven ? 'the key given does not verify it' : 'give --key NAME.pub to check it'}`;
}
