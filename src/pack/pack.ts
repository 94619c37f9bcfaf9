// pack: lock → one deterministic bundle tar, with a content-addressed cache beside it.
// Manifests (and configs) come first, so the bundle is planned before a layer is fetched; then each
// blob is downloaded straight into its place in the bundle's temp file, in parallel, verified as it
// streams, while the cache keeps a copy (reused by later packs, resumed after an interruption).
// Blobs already in the cache are copied from there. The temp file is renamed at the end. A split
// bundle (volumes, written in one sequential pass) downloads everything into the cache first.
//
// `since` packs a delta against a base: a bundle (or its volumes), or the lock it was packed from —
// then the base's inventory is worked out from that lock as `pack` would write it (manifests and
// configs only, from the cache or the registries), so the delta names the same base. Blobs the base
// has are neither downloaded (configs aside: small, and read for platforms) nor carried.
import { dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { open as openFile } from 'node:fs/promises';
import { IntegrityError, NetworkError, UsageError } from '../core/errors.ts';
import { childrenOf, isManifestDescriptor, MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from '../core/manifest.ts';
import { formatReference, parseReference } from '../core/reference.ts';
import { readAllLimited } from '../content/verify-stream.ts';
import { FileStore } from '../content/file-store.ts';
import { copyGraph, type CopyEvent } from '../copy.ts';
import { reduceIndex, type OpenRepository, type SourceRepository } from '../lock/lock.ts';
import { lockAndWrite, lockPathFor } from '../lock/lock-file.ts';
import { diffLock, readLock, type Lock } from '../spec/lock.ts';
import { loadSpec } from '../spec/spec.ts';
import { loadDeltaBase, writeBundle } from '../bundle/index.ts';
import type { DeltaBase, Inventory, SignatureInfo, VolumeLayout } from '../bundle/index.ts';
import { canonicalJson, allBlobs } from '../bundle/format.ts';
import { CONFIG_MEDIA_TYPES, planBundle } from '../bundle/plan.ts';
import { digestOf } from '../core/digest.ts';
import type { ChunkSink, ReadOnlyStorage, Storage } from '../content/types.ts';
import type { SigningKey } from '../sign/keys.ts';
import { Limiter } from '../util/limiter.ts';
import { TOOL_VERSION } from '../version.ts';
import { ChartHttpClient } from '../helm/http-client.ts';

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
        hint: 'run `airlock lock` to update it, or pack with relock to lock and pack in one step',
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
  const cm = charts.length > 0 ? await chartModules() : undefined;
  const copiedCharts = (cm ? charts.filter(cm.isPassThrough) : []).map((chart) => {
    const src = cm!.parseChartSource(chart.source, `chart ${chart.name}`);
    if (src.kind !== 'oci') throw new IntegrityError(`chart ${chart.name}: expected an oci:// source`, { code: 'LOCK_INVALID' });
    return { chart, repo: opts.open({ registry: src.ref.registry, repository: src.ref.repository }), root: cm!.chartRoot(chart) };
  });

  // Manifests first (small): they say which blobs are needed, and where to fetch each.
  const walk = new ManifestWalk(store, limiter, signal);
  const blobs = walk.blobs;
  await Promise.all([
    ...images.map((i) => walk.walk(i.repo, i.root, i.select, i.img.reference)),
    ...copiedCharts.map((c) => walk.walk(c.repo, c.root, undefined, c.chart.reference)),
  ]);
  // Every other chart: its archives (small) fetched and verified, its artifact built into the cache.
  const staged: { reference: string; root: Descriptor }[] = [];
  const toStage = cm ? charts.filter((c) => !cm.isPassThrough(c)) : [];
  if (toStage.length > 0) {
    const http = opts.http ?? new ChartHttpClient();
    try {
      for (const chart of toStage) {
        staged.push({ reference: chart.reference, root: await cm!.stageChart(chart, { http, open: opts.open, baseDir: dirname(opts.specPath), store, signal }) });
      }
    } finally {
      if (!opts.http) await http.close();
    }
  }
  const roots = [
    ...(await Promise.all(
      images.map(async ({ img, root, chosen }) => ({ reference: bundleName(img.reference), root: img.bundled ? await storeReducedIndex(store, img, await walk.read(root), chosen!, signal) : root })),
    )),
    ...copiedCharts.map(({ chart, root }) => ({ reference: chart.reference, root })),
    ...staged,
  ];

  let downloaded = 0;
  const onDownloaded = (n: number): void => {
    downloaded += n;
  };
  const onEvent = (e: CopyEvent): void => {
    opts.onEvent?.(e);
  };
  const write = {
    out: opts.out,
    images: roots,
    lockText,
    name: lock.name,
    version: lock.version,
    toolVersion: TOOL_VERSION,
    base,
    sign: opts.sign,
    signal,
  };
  let result: Awaited<ReturnType<typeof writeBundle>>;
  try {
    if (!opts.split) {
      // One pass: each blob is downloaded straight into its place in the bundle (the cache keeps a
      // copy for later packs and resumes) or copied there from the cache, in parallel.
      result = await writeBundle({
        ...write,
        source: walk.source(),
        concurrency: opts.concurrency ?? 8,
        onPlan: async (plan) => {
          const carried = plan.blobs.filter((b) => !plan.manifests.has(b.digest));
          const missing = await Promise.all(carried.map(async (b) => ((await store.exists(b, { signal })) ? 0 : b.size)));
          opts.onEvent?.({
            type: 'phase',
            phase: missing.some((n) => n > 0) ? 'download' : 'write',
            total: carried.reduce((a, b) => a + b.size, 0),
            images: plan.inventory.images.map((i) => ({ reference: i.reference, size: i.totalSize })),
          });
        },
        // The writer's signal, not ours: it also fires when another blob fails, stopping this download.
        fill: async (desc, sink, fillSignal) => {
          const fetched = walk.fetchedNow(desc.digest);
          if (!fetched) return await fillBlob(desc, sink, { store, origin: blobs.get(desc.digest), signal: fillSignal, onEvent, onDownloaded });
          // A config fetched with the manifests: already in memory.
          const image = blobs.get(desc.digest)?.image ?? '';
          onEvent({ type: 'blob-start', image, digest: desc.digest, size: desc.size });
          await sink([fetched], 0);
          onEvent({ type: 'blob-progress', image, digest: desc.digest, bytes: desc.size });
          onDownloaded(desc.size);
          onEvent({ type: 'blob-done', image, digest: desc.digest, size: desc.size, how: 'copied' });
        },
      });
    } else {
      await walk.settle();
      // Volumes are written (and hashed) in one sequential pass: download everything first.
      const cached = await Promise.all([...blobs.values()].map(async ({ desc }) => ((await target.exists(desc, { signal })) ? 0 : desc.size)));
      opts.onEvent?.({ type: 'phase', phase: 'download', total: cached.reduce((a, n) => a + n, 0), images: lock.images.map((i) => ({ reference: i.reference, size: i.totalSize })) });
      const done = new Map<string, Promise<void>>();
      await Promise.all(
        [...images.map((i) => ({ repo: i.repo, root: i.root, reference: i.img.reference, select: i.select })), ...copiedCharts.map((c) => ({ repo: c.repo, root: c.root, reference: c.chart.reference, select: undefined }))].map(({ repo, root, reference, select }) =>
          // Source and destination are both the cache for manifests; blobs come from the registry.
          copyGraph(store, target, root, {
            limiter,
            done,
            signal,
            image: reference,
            onEvent,
            selectChildren: select ? (parent, children) => (parent.digest === root.digest ? select(children) : children) : undefined,
            transferBlob: (desc, onBytes) =>
              store.ingest(desc, repo, {
                signal,
                onBytes: (n, resumed) => {
                  if (!resumed) onDownloaded(n);
                  onBytes(n);
                },
              }),
          }),
        ),
      );
      opts.onEvent?.({ type: 'phase', phase: 'write' });
      let phase: 'write' | 'parity' = 'write';
      result = await writeBundle({
        ...write,
        source: store,
        split: opts.split,
        onProgress: (p) => {
          if (p.phase === 'parity' && phase !== 'parity') {
            phase = 'parity';
            opts.onEvent?.({ type: 'phase', phase: 'parity' });
          }
          opts.onEvent?.({ type: 'write-progress', written: p.written, total: p.total });
        },
      });
    }
    // Manifests and configs reach the cache in the background; a failure to write them fails the pack.
    await walk.settle();
  } finally {
    // Never leave a write running (and its temp file behind) when the pack fails.
    await walk.settle().catch(() => {});
  }
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
  const walk = new ManifestWalk(store, limiter, signal);
  for (const img of lock.images) {
    const repo = ctx.open(parseReference(img.reference));
    const root: Descriptor = { mediaType: img.mediaType, digest: img.digest, size: img.size };
    const chosen = img.platforms ? new Set(img.platforms.map((p) => p.digest)) : undefined;
    await walk.walk(repo, root, chosen ? (c) => c.filter((x) => chosen.has(x.digest)) : undefined, img.reference);
    await walk.settle();
    // The walk put every manifest and every config planning reads for a platform into the cache.
    const bundleRoot = img.bundled ? await storeReducedIndex(store, img, await walk.read(root), chosen!, signal) : root;
    roots.push({ reference: bundleName(img.reference), root: bundleRoot });
  }
  const charts = lock.charts ?? [];
  const cm = charts.length > 0 ? await chartModules() : undefined;
  const http = ctx.http ?? new ChartHttpClient();
  try {
    for (const chart of charts) {
      if (cm!.isPassThrough(chart)) {
        const src = cm!.parseChartSource(chart.source, `chart ${chart.name}`);
        if (src.kind !== 'oci') throw new IntegrityError(`chart ${chart.name}: expected an oci:// source`, { code: 'LOCK_INVALID' });
        const repo = ctx.open({ registry: src.ref.registry, repository: src.ref.repository });
        const root = cm!.chartRoot(chart);
        await walk.walk(repo, root, undefined, chart.reference);
        await walk.settle();
        roots.push({ reference: chart.reference, root });
      } else {
        roots.push({ reference: chart.reference, root: await cm!.stageChart(chart, { http, open: ctx.open, baseDir: ctx.baseDir, store, signal }) });
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

/**
 * Walks image graphs from their roots: every manifest, and every config small enough to be read
 * for its platform, is fetched once (verified), kept in memory for planning, and written to the
 * cache in the background; every other blob is noted with where to fetch it.
 */
class ManifestWalk {
  /** digest → where to fetch it, for every blob that is not a manifest. */
  readonly blobs = new Map<string, BlobOrigin>();
  readonly #store: FileStore;
  readonly #limiter: Limiter;
  readonly #signal: AbortSignal | undefined;
  readonly #memory = new Map<string, Buffer>();
  /** Configs fetched from a registry in this walk (not found in the cache). */
  readonly #fetched = new Set<string>();
  readonly #writes: Promise<void>[] = [];

  constructor(store: FileStore, limiter: Limiter, signal: AbortSignal | undefined) {
    this.#store = store;
    this.#limiter = limiter;
    this.#signal = signal;
  }

  async walk(repo: SourceRepository, desc: Descriptor, select: ((children: Descriptor[]) => Descriptor[]) | undefined, image: string): Promise<void> {
    const bytes = await this.#load(repo, desc, `manifest ${desc.digest}`);
    const parsed = parseManifest(bytes, desc.mediaType, `manifest ${desc.digest}`);
    let children = childrenOf(parsed);
    if (parsed.kind === 'index' && select) children = select(children);
    await Promise.all(
      children.map(async (c) => {
        if (isManifestDescriptor(c)) return await this.walk(repo, c, undefined, image);
        if (this.blobs.has(c.digest)) return;
        this.blobs.set(c.digest, { desc: c, repo, image });
        // Planning reads configs for platforms: fetched now, with the manifests.
        if (CONFIG_MEDIA_TYPES.includes(c.mediaType) && c.size <= MAX_MANIFEST_BYTES && !(await this.#store.exists(c, { signal: this.#signal }))) {
          await this.#load(repo, c, `config ${c.digest} of ${image}`);
          this.#fetched.add(c.digest);
        }
      }),
    );
  }

  /** The bytes of a config this walk fetched from a registry, if it did. */
  fetchedNow(digest: string): Buffer | undefined {
    return this.#fetched.has(digest) ? this.#memory.get(digest) : undefined;
  }

  /** A manifest (or config) walked: from memory, else from the cache. */
  async read(desc: Descriptor): Promise<Buffer> {
    return this.#memory.get(desc.digest) ?? (await readAllLimited(await this.#store.fetch(desc, { signal: this.#signal }), MAX_MANIFEST_BYTES, `manifest ${desc.digest}`));
  }

  /** What planning reads: walked bytes from memory, the rest from the cache; noted blobs count as present. */
  source(): ReadOnlyStorage {
    return {
      exists: async (d, o) => this.blobs.has(d.digest) || this.#memory.has(d.digest) || (await this.#store.exists(d, o)),
      fetch: async (d, o) => {
        const bytes = this.#memory.get(d.digest);
        return bytes ? Readable.from([bytes], { objectMode: false }) : await this.#store.fetch(d, o);
      },
    };
  }

  /** Wait for every background write to the cache; then the first failure is thrown. */
  async settle(): Promise<void> {
    const failed = (await Promise.allSettled(this.#writes.splice(0))).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async #load(repo: SourceRepository, desc: Descriptor, what: string): Promise<Buffer> {
    const known = this.#memory.get(desc.digest);
    if (known) return known;
    const signal = this.#signal;
    const bytes = await this.#limiter.run(async () => {
      if (await this.#store.exists(desc, { signal })) return await readAllLimited(await this.#store.fetch(desc, { signal }), MAX_MANIFEST_BYTES, what);
      // Verified by the registry client (and again by the store as it writes them).
      const fetched = await readAllLimited(await repo.fetch(desc, { signal }), MAX_MANIFEST_BYTES, what);
      const write = this.#store.write(desc, fetched, { signal });
      write.catch(() => {}); // surfaced by settle()
      this.#writes.push(write);
      return fetched;
    }, signal);
    this.#memory.set(desc.digest, bytes);
    return bytes;
  }
}

/**
 * The chart modules (chart archives, dependencies, artifacts: yaml, semver, tar), loaded only for
 * a lock that has charts: most packs carry images only, and start-up is part of their time.
 */
async function chartModules() {
  const [source, stage] = await Promise.all([import('../helm/chart-source.ts'), import('../helm/stage-charts.ts')]);
  return { parseChartSource: source.parseChartSource, chartRoot: stage.chartRoot, isPassThrough: stage.isPassThrough, stageChart: stage.stageChart };
}

/** Where a blob comes from: the repository of the first image found to use it. */
interface BlobOrigin {
  desc: Descriptor;
  repo: SourceRepository;
  image: string;
}

/** Whole-blob attempts on network errors; each resumes from what the cache kept. */
const BLOB_ATTEMPTS = 3;

/**
 * Put one blob into the bundle: fed from the cache when it is there (a damaged copy is fetched
 * again), else downloaded into the cache and the bundle at once, resuming a partial download.
 */
async function fillBlob(
  desc: Descriptor,
  sink: ChunkSink,
  ctx: { store: FileStore; origin: BlobOrigin | undefined; signal: AbortSignal | undefined; onEvent: (e: CopyEvent) => void; onDownloaded: (n: number) => void },
): Promise<void> {
  const { store, origin, signal, onEvent, onDownloaded } = ctx;
  if (!origin) {
    // Built into the cache by this run (a chart artifact): nowhere else to fetch it from.
    await store.feed(desc, sink, { signal });
    return;
  }
  const image = origin.image;
  let started = false;
  for (let attempt = 1; ; attempt++) {
    let sent = 0;
    let fetched = 0;
    const onBytes = (n: number, resumed?: boolean): void => {
      if (!resumed) fetched += n;
      if (!started) {
        started = true;
        onEvent({ type: 'blob-start', image, digest: desc.digest, size: desc.size });
      }
      sent += n;
      onEvent({ type: 'blob-progress', image, digest: desc.digest, bytes: n });
    };
    try {
      await store.ingest(desc, origin.repo, { signal, onBytes, also: sink });
      onDownloaded(fetched);
      break;
    } catch (e) {
      onDownloaded(fetched);
      // Take back the progress of the failed attempt so totals stay truthful.
      if (sent > 0) onEvent({ type: 'blob-progress', image, digest: desc.digest, bytes: -sent });
      if (attempt >= BLOB_ATTEMPTS || !(e instanceof NetworkError) || signal?.aborted) throw e;
    }
  }
  onEvent({ type: 'blob-done', image, digest: desc.digest, size: desc.size, how: started ? 'copied' : 'exists' });
}

/** The platform-filtered index the lock pinned, built from the original and stored in the cache. */
async function storeReducedIndex(store: FileStore, img: Lock['images'][number], original: Buffer, chosen: Set<string>, signal: AbortSignal | undefined): Promise<Descriptor> {
  const reduced = reduceIndex(original, chosen);
  const bundleRoot: Descriptor = { mediaType: img.mediaType, digest: img.bundled!.digest, size: img.bundled!.size };
  if (childrenOf(parseManifest(reduced, img.mediaType, img.reference)).length !== chosen.size) {
    throw new IntegrityError(`${img.reference}: the index no longer lists every locked platform`, { code: 'LOCK_MISMATCH', hint: 'run `airlock lock` again' });
  }
  // write verifies size and digest: a reduced index that differs from the lock's is refused.
  await store.write(bundleRoot, reduced, { signal });
  return bundleRoot;
}

/** The name an image carries in the bundle's index.json: by tag when it has one, else by digest. */
export function bundleName(reference: string): string {
  const ref = parseReference(reference);
  return formatReference(ref.tag !== undefined ? { ...ref, digest: undefined } : ref);
}
