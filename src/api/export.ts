// exportImages: a bundle's images as OCI-archive tarballs that k3s/RKE2 and `ctr images import` load.
import { resolve } from 'node:path';
import { EXPORT_FORMATS, exportImages as exportArchives, type ExportEvent, type ExportFormat, type ExportResult, type ExportedFile } from '../export/export.ts';
import { sinkOf } from './events.ts';
import type { BaseOptions, EventOptions } from './options.ts';

export { EXPORT_FORMATS };
export type { ExportFormat, ExportResult, ExportedFile };

export interface ExportOptions extends BaseOptions, EventOptions<ExportEvent> {
  /** k3s (default) or containerd: the same files; the result says where they go. */
  format?: ExportFormat | undefined;
  /** One tarball with every image instead of one per image. */
  single?: boolean | undefined;
}

/**
 * Write the images of one bundle (or of a base and its updates: a later one wins a name both carry)
 * into `dir`, one tarball per image named from its reference (or one for all), every digest kept.
 */
export async function exportImages(bundles: string | readonly string[], dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  return await exportArchives({
    bundles: (typeof bundles === 'string' ? [bundles] : bundles).map((p) => resolve(p)),
    dir: resolve(dir),
    format: options.format ?? 'k3s',
    single: options.single === true,
    signal: options.signal,
    onEvent: sinkOf(options),
  });
}
