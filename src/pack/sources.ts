// What pack reads from: each image's registry seen through the blob cache, and the bundle inputs a
// lock turns into (images by their pinned or platform-reduced root, charts copied or staged).
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { IntegrityError, UsageError } from '../core/errors.ts';
import { childrenOf, MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from '../core/manifest.ts';
import { formatReference, parseReference } from '../core/reference.ts';
import type { FileStore } from '../content/file-store.ts';
import type { OpOptions, ReadOnlyStorage } from '../content/types.ts';
import { readAllLimited } from '../content/verify-stream.ts';
import { readManifest } from '../content/graph.ts';
import type { BundleImageInput } from '../bundle/plan.ts';
import { reduceIndex, type OpenRepository, type SourceRepository } from '../lock/lock.ts';
import type { Lock } from '../spec/lock.ts';
import { ChartHttpClient } from '../helm/http-client.ts';
import { referrerInputs } from './referrer-inputs.ts';

/**
 * Background writes of documents into the cache: reads need not wait for them, but the pack
 * fails if one fails, and none is left running when the pack ends.
 */
export class CacheWrites {
  readonly #pending = new Set<Promise<void>>();
  #failure: unknown;

  add(write: Promise<void>): void {
    this.#pending.add(write);
    write.then(
      () => this.#pending.delete(write),
      (e: unknown) => {
        this.#pending.delete(write);
        this.#failure ??= e;
      },
    );
  }

  /** Wait for every write; then the first failure is thrown. */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/**
 * A registry repository seen through the pack cache: what the cache holds is read from there; a
 * document (manifest, config) it lacks is fetched (verified by the registry client), kept in the
 * cache, and counted as downloaded. Layers are not read through here: pack ingests them.
 */
export class ThroughCache implements ReadOnlyStorage {
  readonly store: FileStore;
  readonly repo: SourceRepository;
  readonly #writes: CacheWrites;
  readonly #onDownloaded: (n: number) => void;

  constructor(store: FileStore, repo: SourceRepository, writes: CacheWrites, onDownloaded: (n: number) => void) {
    this.store = store;
    this.repo = repo;
    this.#writes = writes;
    this.#onDownloaded = onDownloaded;
  }

  get label(): string | undefined {
    return this.repo.label;
  }

  async exists(desc: Descriptor, opts?: OpOptions): Promise<boolean> {
    return (await this.store.exists(desc, opts)) || (await this.repo.exists(desc, opts));
  }

  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    if (await this.store.exists(desc, opts)) return await this.store.fetch(desc, opts);
    if (desc.size > MAX_MANIFEST_BYTES) return await this.repo.fetch(desc, opts);
    const bytes = await readAllLimited(await this.repo.fetch(desc, opts), MAX_MANIFEST_BYTES, `${desc.mediaType} ${desc.digest}`);
    this.#onDownloaded(bytes.length);
    // store.write checks size and digest again before the bytes become a cache entry.
    this.#writes.add(this.store.write(desc, bytes, opts));
    return Readable.from([bytes]);
  }
}

export interface InputContext {
  store: FileStore;
  open: OpenRepository;
  http: ChartHttpClient | undefined;
  /** The folder of airlock.yaml: local chart paths are relative to it. */
  specPath: string;
  writes: CacheWrites;
  onDownloaded: (n: number) => void;
  signal: AbortSignal | undefined;
  /** false: leave out what the lock lists as referring to the images (pack --no-referrers, `referrers: false`). */
  referrers?: boolean | undefined;
}

/**
 * What the bundle carries for a lock, each with where it comes from: every image by its pinned
 * root (a platform-reduced index built into the cache), charts a registry serves as airlock carries
 * them copied like images, every other chart staged into the cache as a Helm OCI artifact.
 */
export async function bundleInputs(lock: Lock, ctx: InputContext): Promise<BundleImageInput[]> {
  const through = (repo: SourceRepository): ThroughCache => new ThroughCache(ctx.store, repo, ctx.writes, ctx.onDownloaded);
  const inputs: BundleImageInput[] = [];
  for (const img of lock.images) {
    const source = through(ctx.open(parseReference(img.reference)));
    const root: Descriptor = { mediaType: img.mediaType, digest: img.digest, size: img.size };
    // A reduced index carries the upstream one beside it: pins to its digest keep resolving.
    inputs.push({ reference: bundleName(img.reference), root: img.bundled ? await storeReducedIndex(source, img, root, ctx.signal) : root, source, ...(img.bundled ? { original: root } : {}) });
  }
  if (ctx.referrers !== false) inputs.push(...referrerInputs(lock, inputs, (ref) => through(ctx.open(ref))));
  if (lock.files && lock.files.length > 0) {
    // Loaded only for a lock that has files.
    const { stageFiles } = await import('../files/stage-files.ts');
    inputs.push(...(await stageFiles(lock.files, { store: ctx.store, http: ctx.http, baseDir: dirname(ctx.specPath), signal: ctx.signal, onDownloaded: ctx.onDownloaded })));
  }
  const charts = lock.charts ?? [];
  if (charts.length === 0) return inputs;
  // Loaded only for a lock that has charts (yaml, semver, tar): most packs carry images only.
  const [cs, stage] = await Promise.all([import('../helm/chart-source.ts'), import('../helm/stage-charts.ts')]);
  const http = ctx.http ?? new ChartHttpClient();
  try {
    for (const chart of charts) {
      if (stage.isPassThrough(chart)) {
        const src = cs.parseChartSource(chart.source, `chart ${chart.name}`);
        if (src.kind !== 'oci') throw new UsageError(`chart ${chart.name}: expected an oci:// source`, { code: 'LOCK_INVALID' });
        inputs.push({ reference: chart.reference, root: stage.chartRoot(chart), source: through(ctx.open({ registry: src.ref.registry, repository: src.ref.repository })) });
      } else {
        const root = await stage.stageChart(chart, { http, open: ctx.open, baseDir: dirname(ctx.specPath), store: ctx.store, signal: ctx.signal });
        inputs.push({ reference: chart.reference, root, source: ctx.store });
      }
    }
  } finally {
    if (!ctx.http) await http.close();
  }
  return inputs;
}

/** The platform-filtered index the lock pinned, built from the original and stored in the cache. */
async function storeReducedIndex(source: ThroughCache, img: Lock['images'][number], original: Descriptor, signal: AbortSignal | undefined): Promise<Descriptor> {
  const chosen = new Set((img.platforms ?? []).map((p) => p.digest));
  const reduced = reduceIndex((await readManifest(source, original, { signal, what: img.reference })).bytes, chosen);
  const bundleRoot: Descriptor = { mediaType: img.mediaType, digest: img.bundled!.digest, size: img.bundled!.size };
  if (childrenOf(parseManifest(reduced, img.mediaType, img.reference)).length !== chosen.size) {
    throw new IntegrityError(`${img.reference}: the index no longer lists every locked platform`, { code: 'LOCK_MISMATCH', hint: 'run `airlock lock` again' });
  }
  // write verifies size and digest: a reduced index that differs from the lock's is refused.
  await source.store.write(bundleRoot, reduced, { signal });
  return bundleRoot;
}

/** The name an image carries in the bundle's index.json: by tag when it has one, else by digest. */
function bundleName(reference: string): string {
  const ref = parseReference(reference);
  return formatReference(ref.tag !== undefined ? { ...ref, digest: undefined } : ref);
}
