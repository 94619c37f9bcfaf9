// pack: lock → content-addressed cache → one deterministic bundle tar.
// Downloads run in parallel into the cache (resumable, verified as they stream); the bundle is
// then written from the cache in one sequential pass to a temp file renamed at the end.
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { writeFile, rename } from 'node:fs/promises';
import { IntegrityError, UsageError } from './core/errors.ts';
import { childrenOf, MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from './core/manifest.ts';
import { formatReference, parseReference } from './core/reference.ts';
import { readAllLimited } from './content/verify-stream.ts';
import { FileStore } from './content/file-store.ts';
import { copyGraph, type CopyEvent } from './copy.ts';
import { lockSpec, reduceIndex, type OpenRepository } from './lock.ts';
import { diffLock, formatLock, readLock, type Lock } from './spec/lock.ts';
import { loadSpec } from './spec/spec.ts';
import { writeBundle } from './bundle/index.ts';
import type { Inventory } from './bundle/index.ts';
import { Limiter } from './util/limiter.ts';
import { TOOL_VERSION } from './version.ts';

export type PackEvent =
  | { type: 'phase'; phase: 'lock' | 'download' | 'write'; total?: number }
  | CopyEvent
  | { type: 'write-progress'; written: number; total: number };

export interface PackOptions {
  specPath: string;
  /** Default: airlock.lock beside the spec. */
  lockPath?: string;
  out: string;
  cacheDir: string;
  open: OpenRepository;
  /** Lock first (and write the lock) instead of failing when it is missing or stale. */
  relock?: boolean;
  concurrency?: number;
  signal?: AbortSignal | undefined;
  onEvent?: (e: PackEvent) => void;
}

export interface PackResult {
  path: string;
  size: number;
  inventory: Inventory;
  lock: Lock;
  /** Bytes fetched from registries in this run (0 when everything was cached). */
  downloaded: number;
}

export function lockPathFor(specPath: string): string {
  return join(dirname(specPath), 'airlock.lock');
}

/** Lock a spec and write airlock.lock atomically beside it. */
export async function lockAndWrite(specPath: string, lockPath: string, opts: { open: OpenRepository; concurrency?: number; signal?: AbortSignal | undefined }): Promise<{ lock: Lock; text: string }> {
  const spec = await loadSpec(specPath);
  const lock = await lockSpec(spec, opts);
  const text = formatLock(lock);
  const tmp = `${lockPath}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, lockPath);
  return { lock, text };
}

export async function pack(opts: PackOptions): Promise<PackResult> {
  const lockPath = opts.lockPath ?? lockPathFor(opts.specPath);
  const spec = await loadSpec(opts.specPath);
  let lock: Lock;
  let lockText: string;
  if (opts.relock) {
    opts.onEvent?.({ type: 'phase', phase: 'lock' });
    ({ lock, text: lockText } = await lockAndWrite(opts.specPath, lockPath, opts));
  } else {
    ({ lock, text: lockText } = await readLock(lockPath));
    const diff = diffLock(spec, lock);
    if (diff.length > 0) {
      throw new UsageError(`${lockPath} does not match ${opts.specPath}:\n  ${diff.join('\n  ')}`, {
        code: 'LOCK_STALE',
        hint: 'run `airlock lock` to update it, or `airlock pack --lock` to lock and pack in one step',
      });
    }
  }

  const store = new FileStore(opts.cacheDir);
  const limiter = new Limiter(opts.concurrency ?? 8);
  const done = new Map<string, Promise<void>>();
  let downloaded = 0;
  const onEvent = (e: CopyEvent): void => {
    if (e.type === 'blob-progress') downloaded += e.bytes;
    opts.onEvent?.(e);
  };
  opts.onEvent?.({ type: 'phase', phase: 'download', total: lock.images.reduce((a, i) => a + i.totalSize, 0) });

  const roots = await Promise.all(
    lock.images.map(async (img) => {
      const ref = parseReference(img.reference);
      const repo = opts.open(ref);
      const root: Descriptor = { mediaType: img.mediaType, digest: img.digest, size: img.size };
      const chosen = img.platforms ? new Set(img.platforms.map((p) => p.digest)) : undefined;
      await copyGraph(repo, store, root, {
        limiter,
        done,
        signal: opts.signal,
        image: img.reference,
        onEvent,
        selectChildren: chosen ? (_parent, children) => children.filter((c) => chosen.has(c.digest)) : undefined,
        transferBlob: (desc, onBytes) => store.ingest(desc, repo, { signal: opts.signal, onBytes }),
      });
      let bundleRoot = root;
      if (img.bundled) {
        const original = await readAllLimited(await store.fetch(root, { signal: opts.signal }), MAX_MANIFEST_BYTES, img.reference);
        const reduced = reduceIndex(original, chosen!);
        bundleRoot = { mediaType: img.mediaType, digest: img.bundled.digest, size: img.bundled.size };
        if (reduced.length !== bundleRoot.size) {
          throw new IntegrityError(`${img.reference}: the reduced index is ${reduced.length} bytes, the lock says ${bundleRoot.size}`, {
            code: 'LOCK_MISMATCH',
            hint: 'run `airlock lock` again',
          });
        }
        await store.push(bundleRoot, Readable.from([reduced]), { signal: opts.signal });
        // Every child must really be there (selectChildren already copied exactly these).
        const parsed = parseManifest(reduced, img.mediaType, img.reference);
        if (childrenOf(parsed).length !== chosen!.size) throw new IntegrityError(`${img.reference}: the index no longer lists the locked platforms`, { code: 'LOCK_MISMATCH' });
      }
      return { reference: bundleName(img.reference), root: bundleRoot };
    }),
  );

  opts.onEvent?.({ type: 'phase', phase: 'write' });
  const result = await writeBundle({
    out: opts.out,
    images: roots,
    source: store,
    lockText,
    name: lock.name,
    version: lock.version,
    toolVersion: TOOL_VERSION,
    signal: opts.signal,
    onProgress: (p) => opts.onEvent?.({ type: 'write-progress', written: p.written, total: p.total }),
  });
  return { path: result.path, size: result.size, inventory: result.inventory, lock, downloaded };
}

/** The name an image carries in the bundle's index.json: by tag when it has one, else by digest. */
export function bundleName(reference: string): string {
  const ref = parseReference(reference);
  return formatReference(ref.tag !== undefined ? { ...ref, digest: undefined } : ref);
}
