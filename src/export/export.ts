// export: a bundle's images as OCI-archive tarballs for nodes without a registry. k3s and RKE2
// import every tarball in agent/images/ at start; `ctr -n k8s.io images import` takes the same
// files. One file per image (named from its reference) or one for all (`single`). Every tarball is
// written to a temp file first and all are renamed into place together: a blob that fails its
// check (or any other failure) leaves no tarball and no temp file behind.
import { mkdir, rmdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { UsageError, throwIfAborted } from '../core/errors.ts';
import { openBundleSet, type SetImage } from '../serve/bundle-set.ts';
import { commitAll, discardAll } from '../util/atomic-file.ts';
import { asAborted } from '../content/file-store.ts';
import { stageOciArchive, type StagedArchive } from './oci-archive.ts';
import { referrerMark } from '../core/referrers.ts';

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
  /**
   * Images named by their upstream index, which lists platforms the bundle does not carry: `ctr
   * images import` takes them for the node's platform (or --platform), not with --all-platforms.
   */
  partial: string[];
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
    // containerd unpacks what it imports; an artifact without layers to unpack fails the import.
    // A cosign signature has an image config too, but nothing to run: referrers are not imported.
    const runnable = set.images.filter((i) => set.isContainerImage(i.root.digest) && !referrerMark(i.root));
    const skipped = set.images.filter((i) => !runnable.includes(i)).map((i) => i.name);
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
    const staged: { archive: StagedArchive; images: string[] }[] = [];
    const created = await mkdir(dir, { recursive: true });
    try {
      for (const g of groups) {
        throwIfAborted(opts.signal);
        const archive = await stageOciArchive(set, g.images, join(dir, g.file), { signal: opts.signal, onBytes: (n) => opts.onEvent?.({ type: 'bytes', bytes: n }) });
        staged.push({ archive, images: g.images.map((i) => i.name) });
      }
      await commitAll(
        staged.map((s) => s.archive.file),
        { signal: opts.signal },
      ).catch((e: unknown) => {
        throw asAborted(e, opts.signal);
      });
      const files: ExportedFile[] = staged.map(({ archive, images }) => ({ path: archive.file.path, images, size: archive.size }));
      for (const f of files) opts.onEvent?.({ type: 'file-done', file: f.path, images: f.images, size: f.size });
      return { dir, format: opts.format, files, skipped, partial: runnable.filter((i) => i.original).map((i) => i.name) };
    } catch (e) {
      await discardAll(staged.map((s) => s.archive.file));
      if (created !== undefined) await removeEmptyDirs(dir, created);
      throw e;
    }
  } finally {
    await set.close();
  }
}

/** The folders this export made, from `dir` up to `top`, while they are empty (nothing else wrote there). */
async function removeEmptyDirs(dir: string, top: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
    if (d === top || dirname(d) === d) return;
  }
}
