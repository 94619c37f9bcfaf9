import { resolve } from 'node:path';
import { ExitCode, UsageError } from '../../core/errors.ts';
import { verifyBundle } from '../../bundle/index.ts';
import { formatBytes } from '../output.ts';
import type { Command } from './types.ts';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check every blob, manifest and the inventory of a bundle',
  usage: `Usage: airlock verify BUNDLE [--json]

Hashes every blob (in parallel, streaming), checks that every manifest's content is present and that
the inventory, index.json and the tar agree. Names each bad blob and the images that use it.
Exit code 0 when the bundle is intact, ${ExitCode.integrity} when anything is wrong.`,
  options: {},
  async run({ positionals, out, signal }) {
    if (positionals.length !== 1) throw new UsageError('verify needs one bundle: airlock verify BUNDLE');
    const path = resolve(positionals[0]!);
    const started = Date.now();
    out.begin('verify', 0);
    const report = await verifyBundle(path, { signal, onProgress: (p) => out.progress(p.done, p.total) });
    const secs = (Date.now() - started) / 1000;
    const lines = report.problems.map((p) => `  ${p.digest ?? p.entry ?? ''}: ${p.message}${p.images.length ? ` (used by ${p.images.join(', ')})` : ''}`);
    out.result(
      { bundle: path, ok: report.ok, blobs: report.blobs, bytes: report.bytes, problems: report.problems, seconds: secs },
      report.ok
        ? `${path}: OK, ${report.blobs} blobs, ${formatBytes(report.bytes)} verified in ${secs.toFixed(1)}s`
        : `${path}: ${report.problems.length} problem(s)\n${lines.join('\n')}`,
    );
    return report.ok ? ExitCode.ok : ExitCode.integrity;
  },
};
