// pack: lock → content-addressed cache → one deterministic bundle tar.
// Downloads run in parallel into the cache (resumable, verified as they stream); the bundle is
// then written from the cache in one sequential pass to a temp file renamed at the end.
//
// `since` packs a delta against a base: a bundle (or its volumes), or the lock it was packed from —
// then the base's inventory is worked out from that lock as `pack` would write it (manifests and
// configs only, from the cache or the registries), so the delta names the same base. Blobs the base
// has are neither downloaded (configs aside: small, and read for platforms) nor carried.
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { open as openFile, writeFile, rename } from 'node:fs/promises';
import { IntegrityError, UsageError } from './core/errors.ts';
import { childrenOf, isManifestDescriptor, MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from './core/manifest.ts';
import { isIndexMediaType } from './core/media-types.ts';
import { formatReference, parseReference } from './core/reference.ts';
import { readAllLimited } from './content/verify-stream.ts';
import { FileStore } from './content/file-store.ts';
import { copyGraph, type CopyEvent } from './copy.ts';
import { lockSpec, reduceIndex, type OpenRepository, type SourceRepository } from './lock.ts';
import { diffLock, formatLock, readLock, type Lock } from './spec/lock.ts';
import { loadSpec } from './spec/spec.ts';
import { loadDeltaBase, writeBundle } from './bundle/index.ts';
import type { DeltaBase, Inventory, SignatureInfo, VolumeLayout } from './bundle/index.ts';
import { canonicalJson, allBlobs } from './bundle/format.ts';
import { CONFIG_MEDIA_TYPES, planBundle } from './bundle/plan.ts';
import { digestOf } from './core/digest.ts';
import type { Storage } from './content/types.ts';
import type { SigningKey } from './sign/keys.ts';
import { Limiter } from './util/limiter.ts';
import { TOOL_VERSION } from './version.ts';
import { ChartHttpClient } from './helm/http-client.ts';
import { parseChartSource } from './helm/chart-source.ts';
import { chartRoot, isPassThrough, stageChart } from './helm/stage-charts.ts';

export type PackEvent =
  | { type: 'phase'; phase: 'lock' | 'base' | 'download' | 'write' | 'parity'; total?: number; images?: { reference: string; size: number }[] }
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
  /** Pack a delta against this base: a bundle (its file, volumes or shared name) or the lock it was packed from. */
  since?: string | undefined;
  /** Cut the bundle into volumes of `size` bytes, with `parity` recovery volumes. */
  split?: { size: number; parity?: number | undefined } | undefined;
  /** Sign the inventory with this key. */
  sign?: SigningKey | undefined;
  concurrency?: number;
  signal?: AbortSignal | undefined;
  onEvent?: (e: PackEvent) => void;
}

export interface PackResult {
  path: string;
  size: number;
  inventory: Inventory;
  /** sha256 of the bundle's airlock/inventory.json: its identity. */
  inventoryDigest: string;
  lock: Lock;
  /** Bytes fetched from registries in this run (0 when everything was cached). */
  downloaded: number;
  /** Every file written (the bundle, or its volumes and recovery volumes). */
  files: string[];
  volumes?: VolumeLayout;
  signature?: SignatureInfo;
  /** A delta: the base it names and what it relies on from there. */
  delta?: { base: { inventory: string; name: string; version: string; from: string }; blobs: number; bytes: number };
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

  const store = new FileStore(opts.cacheDir, { trustOwnWrites: true });
  const limiter = new Limiter(opts.concurrency ?? 8);
  const signal = opts.signal;
  let base: DeltaBase | undefined;
  if (opts.since !== undefined) {
    opts.onEvent?.({ type: 'phase', phase: 'base' });
    base = await resolveBase(opts.since, { store, limiter, open: opts.open, http: opts.http, baseDir: dirname(opts.specPath), signal });
  }
  // Blobs the base has are not downloaded, configs aside (read for platforms).
  const fromBase = (d: Descriptor): boolean => base !== undefined && base.blobs.get(d.digest) === d.size && !isManifestDescriptor(d) && !CONFIG_MEDIA_TYPES.includes(d.mediaType);
  const target: Storage = base ? { exists: async (d, o) => fromBase(d) || (await store.exists(d, o)), fetch: (d, o) => store.fetch(d, o), push: (d, c, o) => store.push(d, c, o) } : store;
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
  const cached = await Promise.all([...blobs.values()].map(async (b) => ((await target.exists(b, { signal })) ? 0 : b.size)));
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
      await copyGraph(store, target, root, {
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
    await copyGraph(store, target, root, {
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
  let phase: 'write' | 'parity' = 'write';
  const result = await writeBundle({
    out: opts.out,
    images: roots,
    source: store,
    lockText,
    name: lock.name,
    version: lock.version,
    toolVersion: TOOL_VERSION,
    base,
    split: opts.split,
    sign: opts.sign,
    signal: opts.signal,
    onProgress: (p) => {
      if (p.phase === 'parity' && phase !== 'parity') {
        phase = 'parity';
        opts.onEvent?.({ type: 'phase', phase: 'parity' });
      }
      opts.onEvent?.({ type: 'write-progress', written: p.written, total: p.total });
    },
  });
  const d = result.inventory.delta;
  return {
    path: result.path,
    size: result.size,
    inventory: result.inventory,
    inventoryDigest: result.inventoryDigest,
    lock,
    downloaded,
    files: result.files,
    ...(result.volumes ? { volumes: result.volumes } : {}),
    ...(result.signature ? { signature: result.signature } : {}),
    ...(d ? { delta: { base: { ...d.base, from: resolve(opts.since!) }, blobs: d.blobs.length, bytes: d.blobs.reduce((a, b) => a + b.size, 0) } } : {}),
  };
}

interface BaseContext {
  store: FileStore;
  limiter: Limiter;
  open: OpenRepository;
  http: ChartHttpClient | undefined;
  baseDir: string;
  signal: AbortSignal | undefined;
}

/** The base of a delta: a bundle (read for its inventory), or a lock (its inventory worked out). */
async function resolveBase(since: string, ctx: BaseContext): Promise<DeltaBase> {
  const abs = resolve(since);
  if (await looksLikeLock(abs)) return await baseFromLock(abs, ctx);
  return await loadDeltaBase(abs, ctx.signal);
}

/** A file that is not a tar (no ustar magic in its first header) is taken for a lock. */
async function looksLikeLock(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await openFile(path, 'r');
  } catch {
    return false;
  }
  try {
    if (!(await fh.stat()).isFile()) return false;
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    return !(bytesRead === 512 && head.toString('latin1', 257, 262) === 'ustar');
  } finally {
    await fh.close();
  }
}

/**
 * The inventory `pack` would write for a lock, worked out from manifests and configs only (from
 * the cache, else the registries): the same digest as the bundle packed from that lock.
 */
async function baseFromLock(path: string, ctx: BaseContext): Promise<DeltaBase> {
  const { lock, text } = await readLock(path);
  const { store, limiter, signal } = ctx;
  const roots: { reference: string; root: Descriptor }[] = [];
  const ignored = new Map<string, Descriptor>();
  for (const img of lock.images) {
    const repo = ctx.open(parseReference(img.reference));
    const root: Descriptor = { mediaType: img.mediaType, digest: img.digest, size: img.size };
    const chosen = img.platforms ? new Set(img.platforms.map((p) => p.digest)) : undefined;
    await cacheManifests(repo, store, root, chosen ? (c) => c.filter((x) => chosen.has(x.digest)) : undefined, ignored, limiter, signal);
    let bundleRoot = root;
    if (img.bundled) {
      bundleRoot = { mediaType: img.mediaType, digest: img.bundled.digest, size: img.bundled.size };
      if (!(await store.exists(bundleRoot, { signal }))) {
        const original = await readAllLimited(await store.fetch(root, { signal }), MAX_MANIFEST_BYTES, img.reference);
        await store.push(bundleRoot, Readable.from([reduceIndex(original, chosen!)]), { signal });
      }
    }
    // A single manifest's config names its platform in the inventory: it must be at hand.
    if (!isIndexMediaType(bundleRoot.mediaType)) {
      const m = parseManifest(await readAllLimited(await store.fetch(bundleRoot, { signal }), MAX_MANIFEST_BYTES, img.reference), bundleRoot.mediaType, img.reference);
      if (m.kind === 'manifest' && !(await store.exists(m.value.config, { signal }))) await store.ingest(m.value.config, repo, { signal });
    }
    roots.push({ reference: bundleName(img.reference), root: bundleRoot });
  }
  const charts = lock.charts ?? [];
  const http = ctx.http ?? new ChartHttpClient();
  try {
    for (const chart of charts) {
      if (isPassThrough(chart)) {
        const src = parseChartSource(chart.source, `chart ${chart.name}`);
        if (src.kind !== 'oci') throw new IntegrityError(`chart ${chart.name}: expected an oci:// source`, { code: 'LOCK_INVALID' });
        const repo = ctx.open({ registry: src.ref.registry, repository: src.ref.repository });
        const root = chartRoot(chart);
        await cacheManifests(repo, store, root, undefined, ignored, limiter, signal);
        roots.push({ reference: chart.reference, root });
      } else {
        roots.push({ reference: chart.reference, root: await stageChart(chart, { http, open: ctx.open, baseDir: ctx.baseDir, store, signal }) });
      }
    }
  } finally {
    if (!ctx.http) await http.close();
  }
  // Planning checks that blobs exist; the base's layers need not be here, only its identity.
  const metadataOnly = { exists: async () => true, fetch: (d: Descriptor, o?: { signal?: AbortSignal | undefined }) => store.fetch(d, o) };
  const plan = await planBundle(roots, metadataOnly, { signal, lock: { name: lock.name, version: lock.version, text } });
  return {
    inventory: digestOf(Buffer.from(canonicalJson(plan.inventory, true))),
    name: lock.name,
    version: lock.version,
    blobs: new Map(allBlobs(plan.inventory).map((b) => [b.digest, b.size])),
  };
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
