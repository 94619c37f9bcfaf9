import { ExitCode, UsageError } from '../../core/errors.ts';
import { report } from '../../api/report.ts';
import { count, formatBytes } from '../output.ts';
import { defineCommand } from './types.ts';

export const reportCommand = defineCommand({
  name: 'report',
  summary: 'write one self-contained HTML review report of a bundle (offline, no script, printable)',
  usage: `Usage: airlock report BUNDLE [--base OLD] [--audit FINDINGS.json] [--key NAME.pub] [-o report.html]

Verifies the bundle (every blob hashed) and writes one HTML file for its security review: identity
(name, version, inventory digest, the airlock that packed it, the signer and whether the signature
verifies — with --key), what changed against --base (as \`airlock diff\`), the images (digest,
platforms, size, bytes shared with other images, signatures/SBOMs carried), charts with versions and
dependencies, files and tools, the audit findings (--audit: \`airlock audit --format json\` output),
the verification status of every blob, and pictures of the bytes (by image, own vs shared; new vs
carried). The file loads nothing (inline CSS, no script, no font, image or external link), reads
with JavaScript off, and prints; hundreds of images stay readable: grouped by registry, and offered
sorted by size, own and shared bytes in sections to open.

Options:
  --base OLD           the bundle (or airlock.lock) before this one
  --audit FILE         findings from \`airlock audit CHART --format json > FILE\`
  --key NAME.pub       verify the signature with this key
  -o, --output FILE    where to write the report (default BUNDLE.report.html)

Exit code 0 when the bundle is intact, ${ExitCode.integrity} when it is not (the report is written and says why).`,
  options: { base: { type: 'string' }, audit: { type: 'string' }, key: { type: 'string' }, output: { type: 'string', short: 'o' } },
  async run({ values, positionals, out, signal }) {
    if (positionals.length === 0) throw new UsageError('report needs a bundle: airlock report BUNDLE [-o report.html]');
    const r = await report(positionals.length === 1 ? positionals[0]! : positionals, {
      base: values.base as string | undefined,
      audit: values.audit as string | undefined,
      key: values.key as string | undefined,
      out: values.output as string | undefined,
      signal,
    });
    const m = r.model;
    out.result(
      { path: r.path, bytes: r.bytes, ok: r.ok, images: m.images.length, charts: m.charts.length, problems: m.verify.problems, ...(m.diff ? { changed: !m.diff.same } : {}), ...(m.findings ? { findings: m.findings.length } : {}) },
      `wrote ${r.path} (${formatBytes(r.bytes)}): ${count(m.images.length, 'image')}, ${count(m.charts.length, 'chart')}, ${count(m.blobs.length, 'blob')} ${r.ok ? 'verified' : `— ${count(m.verify.problems.length, 'problem')}: the report lists them`}` + `\nopen it in a browser (it loads nothing): file://${r.path}`,
    );
    return r.ok ? ExitCode.ok : ExitCode.integrity;
  },
});
