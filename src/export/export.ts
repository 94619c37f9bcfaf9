// export: a bundle's images as OCI-archive tarballs for nodes without a registry. k3s and RKE2
// import every tarball in agent/images/ at start; `ctr -n k8s.io images import` takes the same
// files. One file per image (named from its reference) or one for all (`single`).
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { UsageError, throwIfAborted } from '../core/errors.ts';
import { openBundleSet, type SetImage } from '../serve/bundle-set.ts';
import { writeOciArchive } from './oci-archive.ts';

export type ExportFormat = 'k3s' | 'containerd';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['k3s', 'containerd'];

export interface ExportOptions {
  /** One bundle, or a base and its updates (later ones win a name both carry). */
  bundles: readonly string[];
  dir: string;
  format: ExportFormat;
  /** One tarball with every image instead of one per image. */
  single?: boolean | undefined;
  signal?: AbortSignal | undefined;
  onEvent?: ((e: ExportEvent) => void) | undefined;
}

export type ExportEvent =
  | { type: 'start'; files: number; bytes: number }
  | { type: 'bytes'; bytes: number }
  | { type: 'file-done'; file: string; images: string[]; size: number };

export interface ExportedFile {
  path: string;
  /** Full references of the images in the file. */
  images: string[];
  size: number;
}

export interface ExportResult {
  dir: string;
  format: ExportFormat;
  files: ExportedFile[];
  /** Artifacts left out: not container images (charts, SBOMs, signatures), which nodes cannot import. */
  skipped: string[];
}

const NAME_MAX = 200;

/** A file name from a reference: `docker.io/library/nginx:1.27` → `docker.io_library_nginx_1.27.tar`. */
export function archiveFileName(name: string): string {
  let base = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[.-]+/, '');
  if (base.length > NAME_MAX) base = `${base.slice(0, NAME_MAX - 13)}-${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
  return `${base || 'image'}.tar`;
}

export async function exportImages(opts: ExportOptions): Promise<ExportResult> {
  if (!EXPORT_FORMATS.includes(opts.format)) {
    throw new UsageError(`unknown export format "${opts.format}"`, { code: 'FORMAT_INVALID', hint: `formats: ${EXPORT_FORMATS.join(', ')}` });
  }
  const dir = resolve(opts.dir);
  const set = await openBundleSet(opts.bundles, { signal: opts.signal });
  try {
    await mkdir(dir, { recursive: true });
    // containerd unpacks what it imports; an artifact without layers to unpack fails the import.
    const runnable = set.images.filter((i) => set.isContainerImage(i.root.digest));
    const skipped = set.images.filter((i) => !set.isContainerImage(i.root.digest)).map((i) => i.name);
    if (runnable.length === 0) {
      throw new UsageError('the bundle holds no container images to export', {
        code: 'NOTHING_TO_EXPORT',
        hint: skipped.length > 0 ? `it holds only artifacts (${skipped.join(', ')}): serve or push them instead` : undefined,
      });
    }
    const groups: { file: string; images: SetImage[] }[] = [];
    if (opts.single) {
      const info = set.bundles[set.bundles.length - 1]!.bundleInfo;
      groups.push({ file: archiveFileName(`${info.name}-${info.version}`), images: runnable });
    } else {
      const used = new Map<string, number>();
      for (const img of runnable) used.set(archiveFileName(img.name), (used.get(archiveFileName(img.name)) ?? 0) + 1);
      for (const img of runnable) {
        let file = archiveFileName(img.name);
        // Two references that sanitise alike (a/b_c:1, a/b/c:1) get their root digest appended.
        if ((used.get(file) ?? 0) > 1) file = `${file.slice(0, -4)}-${img.root.digest.slice(img.root.digest.indexOf(':') + 1, img.root.digest.indexOf(':') + 13)}.tar`;
        groups.push({ file, images: [img] });
      }
    }
    let bytes = 0;
    for (const g of groups) for (const d of new Set(g.images.flatMap((i) => [...i.digests]))) bytes += set.locate(d)?.entry.size ?? 0;
    opts.onEvent?.({ type: 'start', files: groups.length, bytes });
    const files: ExportedFile[] = [];
    for (const g of groups) {
      throwIfAborted(opts.signal);
      const path = join(dir, g.file);
      const size = await writeOciArchive(set, g.images, path, { signal: opts.signal, onBytes: (n) => opts.onEvent?.({ type: 'bytes', bytes: n }) });
      const f = { path, images: g.images.map((i) => i.name), size };
      files.push(f);
      opts.onEvent?.({ type: 'file-done', file: path, images: f.images, size });
    }
    return { dir, format: opts.format, files, skipped };
  } finally {
    await set.close();
  }
}
