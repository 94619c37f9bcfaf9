// extract: what a bundle carries besides images, written out on the isolated side — the files of
// `files:` (k3s binaries, install scripts, licences), byte for byte with their modes.
import { resolve } from 'node:path';
import { extractFiles as extractBundleFiles, type ExtractedFile, type ExtractFilesResult } from '../files/extract.ts';
import type { BaseOptions } from './options.ts';

export type { ExtractedFile, ExtractFilesResult };

export interface ExtractFilesOptions extends BaseOptions {
  /** Replace files in the folder that have other content (default: refuse, exit 8, nothing written). */
  force?: boolean | undefined;
  /** Each file once it is in place. */
  onFile?: ((f: ExtractedFile) => void) | undefined;
}

/**
 * Write every file a bundle carries (its file, or a split bundle's volumes) into `dir`, created when
 * missing: byte for byte (checked against its sha256 as it is read), with its mode, each through a
 * temp file renamed into place; nothing is written outside `dir`.
 */
export async function extractFiles(bundle: string | readonly string[], dir: string, options: ExtractFilesOptions = {}): Promise<ExtractFilesResult> {
  return await extractBundleFiles(typeof bundle === 'string' ? resolve(bundle) : bundle.map((p) => resolve(p)), resolve(dir), {
    force: options.force,
    signal: options.signal,
    onFile: options.onFile,
  });
}
