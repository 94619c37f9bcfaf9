import { UsageError } from '../../core/errors.ts';
import { approve } from '../../api/approve.ts';
import { PASSPHRASE_ENV, readPassphrase } from '../../sign/keys.ts';
import { defineCommand } from './types.ts';

export const approveCommand = defineCommand({
  name: 'approve',
  summary: "sign a reviewer's approval of a bundle, written beside it (BUNDLE.approvals/)",
  usage: `Usage: airlock approve BUNDLE --key REVIEWER.key [--note TEXT] [--passphrase-file FILE]

Signs a statement that the bundle is approved — its name, version and inventory digest (which pins
every blob, index.json and the lock), the reviewer's key fingerprint, the time, the note — and writes
it beside the bundle: BUNDLE.approvals/<key fingerprint hex>.json and its raw signature .json.sig.
The bundle's bytes are never changed. Approving again with the same key replaces the approval.
Carry the BUNDLE.approvals/ folder across with the bundle; on the isolated side
\`airlock verify|push|serve --approved-by REVIEWER.pub\` demands it.

The key is one from \`airlock keygen\`. openssl checks an approval alone (ECDSA P-256: add -digest sha256):
  openssl pkeyutl -verify -pubin -inkey REVIEWER.pub -rawin -in BUNDLE.approvals/HEX.json -sigfile BUNDLE.approvals/HEX.json.sig
  tar -xOf BUNDLE airlock/inventory.json | sha256sum     (the statement's "inventory")

Options:
  --key REVIEWER.key      the reviewer's private key (required)
  --note TEXT             why, or the review record it stands on (at most 4096 characters)
  --passphrase-file FILE  the key's passphrase (first line); else $${PASSPHRASE_ENV}`,
  options: { key: { type: 'string' }, note: { type: 'string' }, 'passphrase-file': { type: 'string' } },
  async run({ values, positionals, out, signal }) {
    if (positionals.length === 0) throw new UsageError('approve needs a bundle: airlock approve BUNDLE --key REVIEWER.key');
    if (typeof values.key !== 'string') throw new UsageError('approve needs the reviewer\'s key: airlock approve BUNDLE --key REVIEWER.key');
    const file = values['passphrase-file'] as string | undefined;
    const r = await approve(positionals.length === 1 ? positionals[0]! : positionals, {
      key: values.key,
      note: values.note as string | undefined,
      passphrase: file !== undefined ? await readPassphrase(file) : undefined,
      signal,
    });
    const s = r.statement;
    out.result(
      { bundle: r.bundle, file: r.file, signatureFile: r.signatureFile, statement: s },
      [`approved ${s.bundle.name} ${s.bundle.version} (inventory ${s.bundle.inventory})`, `by key ${s.key} (${s.algorithm}) at ${s.time}${s.note !== undefined ? `: ${s.note}` : ''}`, `wrote ${r.file} and ${r.signatureFile}`].join('\n'),
    );
  },
});
