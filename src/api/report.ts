// report: one self-contained HTML file for the security review of a bundle (no script, nothing
// fetched; printable), with the bundle verified while it is made.
import { throwIfAborted } from '../core/errors.ts';
import { writeReport, type WriteReportResult } from '../report/report.ts';
import type { BaseOptions } from './options.ts';

export type { ReportFinding, ReportModel } from '../report/report.ts';

export interface ReportOptions extends BaseOptions {
  /** The bundle (or lock) before this one: the report says what changed, as `diff`. */
  base?: string | readonly string[] | undefined;
  /** A file of `airlock audit --format json` output: its findings are listed. */
  audit?: string | undefined;
  /** The signer's public key (NAME.pub): the signature is verified with it, else only its claim is shown. */
  key?: string | undefined;
  /** The HTML file to write (default BUNDLE.report.html beside the bundle); replaced atomically. */
  out?: string | undefined;
}

export type ReportResult = WriteReportResult;

/** Verify the bundle (its file, or a split bundle's volumes) and write its review report. */
export async function report(bundle: string | readonly string[], options: ReportOptions = {}): Promise<ReportResult> {
  throwIfAborted(options.signal);
  return await writeReport(bundle, { base: options.base, audit: options.audit, key: options.key, out: options.out, signal: options.signal });
}
