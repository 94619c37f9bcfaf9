// pack: lock → content-addressed cache → one deterministic bundle tar.
// Downloads run in parallel into the cache (resumable, verified as they stream); the bundle is
// then written from the cache in one sequential pass to a temp file renamed at the end.
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { writeFile, rename } from 'node:fs/promises';
import { IntegrityError, UsageError } from './core/errors.ts';
import { childrenOf, isManifestDescriptor, MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from './core/manifest.ts';
import { formatReference, parseReference } from './core/reference.ts';
import { readAllLimited } from './content/verify-stream.ts';
import { FileStore } from './content/file-store.ts';
import { copyGraph, type CopyEvent } from './copy.ts';
import { lockSpec, reduceIndex, type OpenRepository, type SourceRepository } from './lock.ts';
import { diffLock, formatLock, readLock, type Lock } from './spec/lock.ts';
import { loadSpec } from './spec/spec.ts';
import { writeBundle } from './bundle/index.ts';
import type { Inventory } from './bundle/index.ts';
import { Limiter } from './util/limiter.ts';
import { TOOL_VERSION } from './version.ts';
import { ChartHttpClient } from './helm/http-client.ts';
import { parseChartSource } from './helm/chart-source.ts';
import { chartRoot, isPassThrough, stageChart } from './helm/stage-charts.ts';

export type PackEvent =
  | { type: 'phase'; phase: 'lock' | 'download' | 'write'; total?: number; images?: { reference: string; size: number }[] }
  | CopyEvent
  | { type: 'write-progress'; written: number; total: number };

export interface PackOptions {
  specPath: string;
  /** Default: airlock.lock beside the spec. */
  lockPath?: string;
  out: string;
  cacheDir: string;
  open: OpenRepository;
  /** For charts from https:// repositories; a default one (system CAs) when absent. */
  http?: ChartHttpClient | undefined;
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
export async function lockAndWrite(
  specPath: string,
  lockPath: string,
  opts: { open: OpenRepository; http?: ChartHttpClient | undefined; concurrency?: number; signal?: AbortSignal | undefined },
): Promise<{ lock: Lock; text: string }> {
  const spec = await loadSpec(specPath);
  const lock = await lockSpec(spec, { ...opts, baseDir: dirname(specPath) });
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
  const signal = opts.signal;
  const images = lock.images.map((img) => {
    const repo = opts.open(parseReference(img.reference));
    const root: Descriptor = { mediaType: img.mediaType, digest: img.digest, size: img.size };
    const chosen = img.platforms ? new Set(img.platforms.map((p) => p.digest)) : undefined;
    const select = chosen ? (children: Descriptor[]): Descriptor[] => children.filter((c) => chosen.has(c.digest)) : undefined;
    return { img, repo, root, chosen, select };
  });
  // Charts a registry serves as airlock would carry them are copied like images, manifest untouched.
  const charts = lock.charts ?? [];
  const copiedCharts = charts.filter(isPassThrough).map((chart) => {
    const src = parseChartSource(chart.source, `chart ${chart.name}`);
    if (src.kind !== 'oci') throw new IntegrityError(`chart ${chart.name}: expected an oci:// source`, { code: 'LOCK_INVALID' });
    return { chart, repo: opts.open({ registry: src.ref.registry, repository: src.ref.repository }), root: chartRoot(chart) };
  });

  // Manifests first (small): they say which blobs are needed, so progress has a true total.
  const blobs = new Map<string, Descriptor>();
  await Promise.all([
    ...images.map((i) => cacheManifests(i.repo, store, i.root, i.select, blobs, limiter, signal)),
    ...copiedCharts.map((c) => cacheManifests(c.repo, store, c.root, undefined, blobs, limiter, signal)),
  ]);
  // Every other chart: its archives (small) fetched and verified, its artifact built into the cache.
  const staged: { reference: string; root: Descriptor }[] = [];
  const toStage = charts.filter((c) => !isPassThrough(c));
  if (toStage.length > 0) {
    const http = opts.http ?? new ChartHttpClient();
    try {
      for (const chart of toStage) {
        staged.push({ reference: chart.reference, root: await stageChart(chart, { http, open: opts.open, baseDir: dirname(opts.specPath), store, signal }) });
      }
    } finally {
      if (!opts.http) await http.close();
    }
  }
  const cached = await Promise.all([...blobs.values()].map(async (b) => ((await store.exists(b, { signal })) ? 0 : b.size)));
  opts.onEvent?.({ type: 'phase', phase: 'download', total: cached.reduce((a, n) => a + n, 0), images: lock.images.map((i) => ({ reference: i.reference, size: i.totalSize })) });

  const done = new Map<string, Promise<void>>();
  let downloaded = 0;
  const onEvent = (e: CopyEvent): void => {
    if (e.type === 'blob-progress') downloaded += e.bytes;
    opts.onEvent?.(e);
  };
  const roots = await Promise.all(
    images.map(async ({ img, repo, root, chosen, select }) => {
      // Source and destination are both the cache for manifests; blobs come from the registry.
      await copyGraph(store, store, root, {
        limiter,
        done,
        signal,
        image: img.reference,
        onEvent,
        selectChildren: select ? (parent, children) => (parent.digest === root.digest ? select(children) : children) : undefined,
        transferBlob: (desc, onBytes) => store.ingest(desc, repo, { signal, onBytes }),
      });
      if (!img.bundled) return { reference: bundleName(img.reference), root };
      const original = await readAllLimited(await store.fetch(root, { signal }), MAX_MANIFEST_BYTES, img.reference);
      const reduced = reduceIndex(original, chosen!);
      const bundleRoot: Descriptor = { mediaType: img.mediaType, digest: img.bundled.digest, size: img.bundled.size };
      if (childrenOf(parseManifest(reduced, img.mediaType, img.reference)).length !== chosen!.size) {
        throw new IntegrityError(`${img.reference}: the index no longer lists every locked platform`, { code: 'LOCK_MISMATCH', hint: 'run `airlock lock` again' });
      }
      // push verifies size and digest: a reduced index that differs from the lock's is refused.
      await store.push(bundleRoot, Readable.from([reduced]), { signal });
      return { reference: bundleName(img.reference), root: bundleRoot };
    }),
  );
  for (const { chart, repo, root } of copiedCharts) {
    await copyGraph(store, store, root, {
      limiter,
      done,
      signal,
      image: chart.reference,
      onEvent,
      transferBlob: (desc, onBytes) => store.ingest(desc, repo, { signal, onBytes }),
    });
    roots.push({ reference: chart.reference, root });
  }
  roots.push(...staged);

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

/** Put every manifest under `desc` into the cache (verified) and collect the blobs they name. */
async function cacheManifests(
  repo: SourceRepository,
  store: FileStore,
  desc: Descriptor,
  select: ((children: Descriptor[]) => Descriptor[]) | undefined,
  blobs: Map<string, Descriptor>,
  limiter: Limiter,
  signal: AbortSignal | undefined,
): Promise<void> {
  const bytes = await limiter.run(async () => {
    if (!(await store.exists(desc, { signal }))) await store.push(desc, await repo.fetch(desc, { signal }), { signal });
    return readAllLimited(await store.fetch(desc, { signal }), MAX_MANIFEST_BYTES, `manifest ${desc.digest}`);
  }, signal);
  const parsed = parseManifest(bytes, desc.mediaType, `manifest ${desc.digest}`);
  let children = childrenOf(parsed);
  if (parsed.kind === 'index' && select) children = select(children);
  await Promise.all(
    children.map((c) => (isManifestDescriptor(c) ? cacheManifests(repo, store, c, undefined, blobs, limiter, signal) : void blobs.set(c.digest, c))),
  );
}

/** The name an image carries in the bundle's index.json: by tag when it has one, else by digest. */
export function bundleName(reference: string): string {
  const ref = parseReference(reference);
  return formatReference(ref.tag !== undefined ? { ...ref, digest: undefined } : ref);
}
