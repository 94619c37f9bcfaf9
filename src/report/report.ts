// `airlock report`: one self-contained HTML file for the security review of a bundle — the one
// entry point of src/report. The bundle is verified (every blob hashed) while the report is made,
// so what the report says of its blobs was checked, not read from the bundle's own claims.
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { locateBundle } from '../bundle/volumes.ts';
import { bundleName } from '../approve/demand.ts';
import { loadVerifyingKey } from '../sign/keys.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { TOOL_VERSION } from '../version.ts';
import { renderReport } from './html.ts';
import { buildReportModel, type ReportModel } from './model.ts';

export type { ReportModel };
export type { ReportFinding } from './findings.ts';

export interface WriteReportOptions {
  /** The bundle (or lock) before: the report says what changed (as `airlock diff`). */
  base?: string | readonly string[] | undefined;
  /** `airlock audit --format json` output: the findings are listed. */
  audit?: string | undefined;
  /** The signer's public key: the signature is verified with it (else only what it claims is shown). */
  key?: string | undefined;
  /** Where to write the HTML (default: BUNDLE.report.html beside the bundle). */
  out?: string | undefined;
  signal?: AbortSignal | undefined;
  now?: Date | undefined;
}

export interface WriteReportResult {
  /** The HTML file written. */
  path: string;
  bytes: number;
  /** The blobs verified intact (false: the report lists the problems). */
  ok: boolean;
  model: ReportModel;
}

export async function writeReport(spec: string | readonly string[], opts: WriteReportOptions = {}): Promise<WriteReportResult> {
  const abs = typeof spec === 'string' ? resolve(spec) : spec.map((p) => resolve(p));
  const files = await locateBundle(abs);
  const name = bundleName(files);
  const out = resolve(opts.out ?? `${name}.report.html`);
  const inputs = files.kind === 'file' ? [files.path] : [...files.data.values(), ...files.parity.values()];
  if (inputs.includes(out)) throw new UsageError(`cannot write the report to ${out}: it is the bundle`, { code: 'OUTPUT_IS_INPUT', hint: 'name another file, e.g. -o report.html' });
  const key = opts.key !== undefined ? await loadVerifyingKey(opts.key) : undefined;
  const model = await buildReportModel(abs, { base: opts.base, audit: opts.audit, key, signal: opts.signal, toolVersion: TOOL_VERSION, now: opts.now });
  const html = renderReport(model);
  await writeFileAtomic(out, html, { signal: opts.signal });
  return { path: out, bytes: Buffer.byteLength(html), ok: model.verify.ok, model };
}
