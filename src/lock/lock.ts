// lock: resolve every image of the spec to a digest, choose the platforms, and record sizes.
import { AbortedError, AirlockError, NotFoundError, IntegrityError, throwIfAborted } from '../core/errors.ts';
import { digestOf, type Digest } from '../core/digest.ts';
import { reduceIndex } from '../core/index-reduction.ts';
import { parseManifest, type Descriptor } from '../core/manifest.ts';
import { ManifestCache, walkGraph } from '../content/graph.ts';
import { formatPlatform, platformMatches } from '../core/platform.ts';
import { formatReference, type Reference } from '../core/reference.ts';
import type { OpOptions, RangeFetcher, ReadOnlyStorage } from '../content/types.ts';
import type { Lock, LockedImage, LockedPlatform } from '../spec/lock.ts';
import type { Spec } from '../spec/spec.ts';
import { mapLimit } from '../util/limiter.ts';
import { ChartHttpClient } from '../helm/http-client.ts';
import type { LockedChart, LockedFile } from '../spec/lock.ts';
import { findReferrers } from './referrers.ts';

/** What lock and pack need of a source repository (the registry client's RemoteRepository). */
export interface SourceRepository extends ReadOnlyStorage, Partial<RangeFetcher> {
  fetchManifest(reference: string, opts?: OpOptions): Promise<{ descriptor: Descriptor; bytes: Buffer }>;
  /** Needed for oci:// charts asked for by a version range (their versions are tags). */
  listTags?(opts?: OpOptions): Promise<string[]>;
  /** A HEAD for a tag: how lock looks for cosign's tags (fetchManifest when absent). */
  resolve?(reference: string, opts?: OpOptions): Promise<Descriptor>;
  /** The OCI referrers API (undefined: the registry has none); without it, lock reads the referrers tag schema. */
  listReferrers?(digest: Digest, opts?: OpOptions): Promise<Descriptor[] | undefined>;
}
export type OpenRepository = (ref: Reference) => SourceRepository;

export interface LockOptions {
  open: OpenRepository;
  /** For charts from https:// repositories (same TLS settings as the registries); a default one when absent. */
  http?: ChartHttpClient | undefined;
  /** The folder of airlock.yaml: chart paths are relative to it (default: the current folder). */
  baseDir?: string | undefined;
  concurrency?: number;
  signal?: AbortSignal | undefined;
  onImage?: (image: LockedImage) => void;
  onChart?: (chart: LockedChart) => void;
  /** Told for each image whose index the spec's platforms reduce (INDEX_REDUCED): its digest changes. */
  onWarning?: (w: { code: 'INDEX_REDUCED'; message: string }) => void;
  /** false: do not look for what refers to the images (as `referrers: false` in the spec). */
  referrers?: boolean | undefined;
  /** The blob cache: files downloaded for `files:` are kept there, so pack need not download them again. */
  cacheDir?: string | undefined;
  onFile?: (file: LockedFile) => void;
}

/** Resolve every image and chart in the spec. Fails on the first one that does not exist, naming it. */
export async function lockSpec(spec: Spec, opts: LockOptions): Promise<Lock> {
  const images = await mapLimit(spec.images, opts.concurrency ?? 4, async (ref) => {
    const img = await lockImage(ref, spec, opts);
    opts.onImage?.(img);
    return img;
  }, opts.signal);
  const lock: Lock = { name: spec.name, version: spec.version, platforms: spec.platforms?.map(formatPlatform), images };
  if (spec.charts.length > 0) {
    const http = opts.http ?? new ChartHttpClient();
    try {
      // Loaded only for a spec with charts (yaml, semver, tar: start-up time every image-only lock would pay).
      const { lockCharts } = await import('../helm/lock-charts.ts');
      lock.charts = await lockCharts(spec.charts, { http, open: opts.open, baseDir: opts.baseDir ?? process.cwd(), signal: opts.signal }, opts.onChart);
    } finally {
      if (!opts.http) await http.close();
    }
  }
  if (spec.files && spec.files.length > 0) lock.files = await lockSpecFiles(spec.files, opts);
  return lock;
}

/** The spec's files, pinned (files/lock-files.ts; loaded only for a spec that has files). */
async function lockSpecFiles(files: NonNullable<Spec['files']>, opts: LockOptions): Promise<LockedFile[]> {
  const http = opts.http ?? new ChartHttpClient();
  try {
    const [{ lockFiles }, { FileStore }] = await Promise.all([import('../files/lock-files.ts'), import('../content/file-store.ts')]);
    const store = opts.cacheDir !== undefined ? new FileStore(opts.cacheDir) : undefined;
    return await lockFiles(files, { http, baseDir: opts.baseDir ?? process.cwd(), store, signal: opts.signal }, opts.onFile);
  } finally {
    if (!opts.http) await http.close();
  }
}

async function lockImage(ref: Reference, spec: Spec, opts: LockOptions): Promise<LockedImage> {
  throwIfAborted(opts.signal);
  const name = formatReference(ref);
  const repo = opts.open(ref);
  const { descriptor, bytes } = await repo.fetchManifest(ref.digest ?? ref.tag ?? 'latest', { signal: opts.signal });
  if (ref.digest !== undefined && descriptor.digest !== ref.digest) {
    throw new IntegrityError(`${name}: registry returned ${descriptor.digest} for a pinned digest`, { code: 'DIGEST_MISMATCH' });
  }
  const parsed = parseManifest(bytes, descriptor.mediaType, name);
  const image: LockedImage = { reference: name, digest: descriptor.digest, mediaType: parsed.mediaType, size: descriptor.size, totalSize: 0 };
  let chosen: Set<string> | undefined;
  if (parsed.kind === 'index') {
    const children = parsed.value.manifests;
    const wanted = selectPlatforms(children, spec);
    if (wanted.length === 0) {
      const have = children.map((c) => (c.platform ? formatPlatform(c.platform) : 'unknown')).join(', ');
      throw new NotFoundError(`${name} has no manifest for ${spec.platforms!.map(formatPlatform).join(', ')} (it has: ${have || 'none'})`, {
        code: 'PLATFORM_NOT_FOUND',
        hint: 'change platforms in airlock.yaml',
      });
    }
    image.platforms = wanted.map((c): LockedPlatform => ({ platform: c.platform ? formatPlatform(c.platform) : 'unknown', digest: c.digest, size: c.size }));
    if (wanted.length < children.length) chosen = new Set(wanted.map((c) => c.digest));
  }
  // What the image is made of: its graph through the chosen platforms, each manifest read once.
  const manifests = new ManifestCache();
  manifests.put(descriptor, bytes);
  const sizes = new Map<string, number>();
  await walkGraph(manifests.wrap(repo), descriptor, {
    signal: opts.signal,
    image: name,
    selectChildren: chosen ? (parent, children) => (parent.digest === descriptor.digest ? children.filter((c) => chosen.has(c.digest)) : children) : undefined,
    visit: (d) => {
      if (sizes.has(d.digest)) return false;
      sizes.set(d.digest, d.size);
      return true;
    },
  });
  if (chosen) {
    // The bundle carries the index reduced to the chosen platforms, not the upstream one.
    const reduced = reduceIndex(bytes, chosen);
    image.bundled = { digest: digestOf(reduced), size: reduced.length };
    // The original index is carried too (serve and export answer for its digest): it counts.
    sizes.set(image.bundled.digest, image.bundled.size);
    opts.onWarning?.({ code: 'INDEX_REDUCED', message: reducedIndexWarning(image, parsed.kind === 'index' ? parsed.value.manifests : []) });
  }
  image.totalSize = [...sizes.values()].reduce((a, b) => a + b, 0);
  if (opts.referrers !== false && spec.referrers !== false) {
    // Signatures and attestations name the upstream root or a platform manifest kept.
    const subjects = [descriptor.digest, ...(image.platforms ?? []).map((p) => p.digest)];
    const referrers = await findReferrers(repo, subjects, { signal: opts.signal, what: name }).catch((e: unknown) => {
      if (e instanceof AirlockError && !(e instanceof AbortedError)) e.message = `looking for the signatures, attestations and SBOMs of ${name}: ${e.message} (\`referrers: false\` in the spec, or lock --no-referrers, leaves them out)`;
      throw e;
    });
    if (referrers.length > 0) image.referrers = referrers;
  }
  return image;
}

/** What a pin to the upstream digest of a reduced index meets on the other side. */
function reducedIndexWarning(image: LockedImage, children: readonly Descriptor[]): string {
  const listed = new Set(children.filter((c) => c.platform && !(c.platform.os === 'unknown' && c.platform.architecture === 'unknown')).map((c) => formatPlatform(c.platform!)));
  const kept = [...new Set((image.platforms ?? []).map((p) => p.platform))].join(', ');
  return (
    `${image.reference}: the index lists ${listed.size} platform${listed.size === 1 ? '' : 's'}, the bundle carries ${kept} (reduced index ${image.bundled!.digest}); ` +
    `references pinned to the upstream digest ${image.digest} resolve through airlock serve and export, and after push where the registry keeps the original index ` +
    '(else post-render and rewrite with --bundle map them to the reduced one)'
  );
}

function selectPlatforms(children: Descriptor[], spec: Spec): Descriptor[] {
  const wanted = spec.platforms;
  if (!wanted) return children;
  return children.filter((c) => c.platform !== undefined && wanted.some((w) => platformMatches(c.platform!, w)));
}

// Where pack and verify find it too (core: verify need not load the lock's registry code).
export { reduceIndex };
