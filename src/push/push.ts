// push: every image and chart of a bundle into a target registry, manifest bytes untouched so every
// digest (index included) is preserved; a chart lands where `helm pull oci://REGISTRY/PREFIX/charts/NAME`
// finds it. Blobs and manifests already there are skipped; a blob pushed to one repository is
// mounted into the next; killed and rerun, it completes. A file of `files:` lands, as an OCI
// artifact, at REGISTRY/PREFIX/files/NAME:TAG.
//
// Before the first write: a signed bundle is checked against the key given; index.json must name
// exactly the images the inventory pins; every blob each image needs must be in the bundle (else
// exit 5, each missing blob named with its images); a delta's relied-on blobs must all be in the
// registry already (HEAD in each target repository; one found in a sibling repository is mounted)
// — else the error lists every missing blob and nothing is sent. A split bundle is read in place.
// Blobs are read verified (bundle.fetchForUpload): one whose bytes do not match its digest fails
// its upload before the registry commits it (exit 5, naming the blob and the images using it).
import type { Readable } from 'node:stream';
import { NotFoundError, IntegrityError } from '../core/errors.ts';
import { formatReference, parseReference, type Reference } from '../core/reference.ts';
import { isManifestDescriptor, type Descriptor } from '../core/manifest.ts';
import { isMounter, type ReadOnlyStorage, type Storage, type TagResolver } from '../content/types.ts';
// The bundle's modules one by one, not its index: that one loads the writer, parity and more.
import { openBundle, type Bundle } from '../bundle/read.ts';
import { findMissingBlobs, incompleteError } from '../bundle/completeness.ts';
import { signatureStatus, type SignatureStatus } from '../bundle/sign.ts';
import type { InventoryBlob } from '../bundle/format.ts';
import type { VerifyingKey } from '../sign/keys.ts';
import { copyGraph, type CopyEvent, type SiblingUploads } from '../copy.ts';
import { mapAll, type Target } from '../rewrite/mapping.ts';
import { Limiter, mapLimit } from '../util/limiter.ts';
// Not helm/artifact.ts: that one builds chart manifests and loads yaml and semver to do it.
import { ARTIFACT_ANNOTATION, CHART_ARTIFACT } from '../helm/artifact-mark.ts';
import { FILE_ARTIFACT } from '../files/artifact.ts';

export interface PushRepository extends Storage, Partial<TagResolver> {}
export type OpenTarget = (ref: Reference) => PushRepository;

export interface PushOptions {
  /** The bundle's file, or a split bundle's shared name, any of its volumes, or all of them. */
  bundlePath: string | readonly string[];
  /** Refuse (before sending anything) unless the bundle is signed by this key. */
  key?: VerifyingKey | undefined;
  target: Target;
  open: OpenTarget;
  concurrency?: number;
  signal?: AbortSignal | undefined;
  onEvent?: (e: CopyEvent | { type: 'image-done'; image: string; target: string; digest: string }) => void;
  /** The bundle is open and checked, nothing sent yet: what it holds (to announce what will be pushed). */
  onChecked?: ((bundle: Bundle) => void) | undefined;
}

export interface PushedImage {
  /** A Helm chart (pullable with `helm pull oci://…`), a file of `files:` (`oras pull`), or an image. */
  kind: 'image' | 'chart' | 'file';
  source: string;
  target: string;
  digest: string;
  blobs: { copied: number; exists: number; mounted: number };
  bytes: number;
}

export interface PushResult {
  images: PushedImage[];
  bytes: number;
  /** The bundle pushed: its path, identity, name and version. */
  bundle: { path: string; inventory: string; name: string; version: string };
  /** A signed bundle: the key given that verified it, or (no key given) only the key it claims. */
  signature?: SignatureStatus;
  /** A delta: its base and how many relied-on blobs were found in the registry (and mounted). */
  delta?: { base: { inventory: string; name: string; version: string }; relied: number; mounted: number };
}

export async function pushBundle(opts: PushOptions): Promise<PushResult> {
  const bundle = await openBundle(opts.bundlePath, { signal: opts.signal });
  try {
    const signature = signatureStatus(bundle, opts.key);
    checkIndexAgainstInventory(bundle);
    const images = bundle.images();
    // Map everything first: a conflict is reported before a single byte is sent.
    const mapping = mapAll(images.map((i) => parseReference(i.reference)), opts.target);
    const limiter = new Limiter(opts.concurrency ?? 8);
    // What a delta lacks is checked in the registry below; anything else missing fails here.
    const elsewhere = new Map((bundle.inventory.delta?.blobs ?? []).map((b) => [b.digest as string, b.size]));
    const { missing, usedBy } = await findMissingBlobs(bundle, images, { elsewhere, signal: opts.signal });
    if (missing.length > 0) throw incompleteError([bundle.path], missing, 'nothing was pushed');
    const relied = bundle.inventory.delta ? await checkRelied(bundle, bundle.inventory.delta.blobs, mapping, opts, limiter) : undefined;
    opts.onChecked?.(bundle);
    // Per target repository, what it already received in this run; across repositories, which
    // blob is being uploaded where, so siblings mount it instead of uploading it again.
    const done = new Map<string, Map<string, Promise<void>>>();
    const uploads: SiblingUploads['uploads'] = new Map();
    const stats = new Map<string, PushedImage>();
    // Blobs only go into uploads, which send each chunk before reading on: they may be read into
    // reused buffers. Manifests are read whole and kept, so they come the ordinary way.
    const source: ReadOnlyStorage = {
      exists: (desc, o) => bundle.exists(desc, o),
      fetch: async (desc, o) => nameUsers(await (isManifestDescriptor(desc) ? bundle.fetch(desc, o) : bundle.fetchForUpload(desc, o)), usedBy.get(desc.digest)),
    };

    const pushOne = async (img: { reference: string; root: Descriptor }): Promise<PushedImage> => {
      const src = formatReference(parseReference(img.reference));
      const dst = mapping.get(src)!;
      const repoKey = `${dst.registry}/${dst.repository}`;
      const stat: PushedImage = { kind: img.root.annotations?.[ARTIFACT_ANNOTATION] === CHART_ARTIFACT ? 'chart' : img.root.annotations?.[ARTIFACT_ANNOTATION] === FILE_ARTIFACT ? 'file' : 'image', source: img.reference, target: formatReference(dst.tag === undefined ? { ...dst, digest: img.root.digest } : { ...dst, digest: undefined }), digest: img.root.digest, blobs: { copied: 0, exists: 0, mounted: 0 }, bytes: 0 };
      stats.set(img.reference, stat);
      if (!done.has(repoKey)) done.set(repoKey, new Map());
      await copyGraph(source, opts.open(dst), img.root, {
        limiter,
        done: done.get(repoKey)!,
        signal: opts.signal,
        image: img.reference,
        tag: dst.tag ?? img.root.digest,
        siblings: { repository: dst.repository, uploads },
        onEvent: (e) => {
          if (e.type === 'blob-done') {
            stat.blobs[e.how]++;
            if (e.how === 'copied') stat.bytes += e.size;
          }
          opts.onEvent?.(e);
        },
      });
      opts.onEvent?.({ type: 'image-done', image: img.reference, target: stat.target, digest: img.root.digest });
      return stat;
    };

    // Images in the same target repository go one after another (their blobs overlap most);
    // different repositories run in parallel under the shared blob limiter.
    const byRepo = new Map<string, typeof images>();
    for (const img of images) {
      const dst = mapping.get(formatReference(parseReference(img.reference)))!;
      const key = `${dst.registry}/${dst.repository}`;
      byRepo.set(key, [...(byRepo.get(key) ?? []), img]);
    }
    // A bounded number of repositories at once (twice the transfers: enough to keep them busy),
    // so a thousand images do not all hold their copy's state at the same time.
    await mapLimit([...byRepo.values()], 2 * (opts.concurrency ?? 8), async (group) => {
      for (const img of group) await pushOne(img);
    }, opts.signal);
    const pushed = images.map((i) => stats.get(i.reference)!);
    const d = bundle.inventory.delta;
    return {
      images: pushed,
      bytes: pushed.reduce((a, p) => a + p.bytes, 0),
      bundle: { path: bundle.path, inventory: bundle.inventoryDigest, name: bundle.bundleInfo.name, version: bundle.bundleInfo.version },
      ...(signature ? { signature } : {}),
      ...(d && relied ? { delta: { base: d.base, relied: d.blobs.length, mounted: relied.mounted } } : {}),
    };
  } finally {
    await bundle.close();
  }
}

/**
 * A blob that fails its check names the images that use it (the stream only knows the blob). The
 * listener goes first, so the error carries the names by the time the upload sees it.
 */
function nameUsers<T extends Readable>(stream: T, images: readonly string[] | undefined): T {
  if (images && images.length > 0) {
    stream.once('error', (e) => {
      if (e instanceof IntegrityError) e.message += `; ${images.length === 1 ? 'it belongs to' : 'images using it:'} ${images.join(', ')}`;
    });
  }
  return stream;
}

/** push follows index.json; the inventory is what a signature pins: they must name the same images. */
function checkIndexAgainstInventory(bundle: Bundle): void {
  const inv = new Map(bundle.inventory.images.map((i) => [i.reference, i]));
  const idx = bundle.images();
  const bad: string[] = [];
  for (const i of idx) {
    const x = inv.get(i.reference);
    if (!x) bad.push(`${i.reference} is in index.json but not in the inventory`);
    else if (x.digest !== i.root.digest || x.size !== i.root.size) bad.push(`index.json has ${i.reference}@${i.root.digest}, the inventory ${x.digest}`);
  }
  if (idx.length !== inv.size) for (const r of inv.keys()) if (!idx.some((i) => i.reference === r)) bad.push(`${r} is in the inventory but not in index.json`);
  if (bad.length > 0) {
    throw new IntegrityError(`${bundle.path}: index.json and the inventory disagree: ${bad.join('; ')}`, { code: 'BUNDLE_INCONSISTENT', hint: `run \`airlock verify ${bundle.path}\`; do not push this bundle` });
  }
}

/**
 * Every blob a delta relies on must be in the target repository of each image that uses it: HEAD
 * each; one that is only in another repository of the registry is mounted — but only after every
 * check passed, so a missing blob fails the push before anything is written.
 */
async function checkRelied(
  bundle: Bundle,
  relied: readonly InventoryBlob[],
  mapping: Map<string, Reference>,
  opts: PushOptions,
  limiter: Limiter,
): Promise<{ mounted: number }> {
  const repoOf = (image: string): Reference => mapping.get(formatReference(parseReference(image)))!;
  const repos = new Map<string, Reference>();
  for (const r of mapping.values()) repos.set(r.repository, r);
  const where = new Map<string, Set<string>>(); // digest → repositories holding it
  const needs: { blob: InventoryBlob; desc: Descriptor; repo: Reference; images: string[] }[] = [];
  for (const blob of relied) {
    const desc: Descriptor = { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
    const byRepo = new Map<string, { repo: Reference; images: string[] }>();
    for (const image of blob.images) {
      const repo = repoOf(image);
      const e = byRepo.get(repo.repository) ?? { repo, images: [] };
      e.images.push(image);
      byRepo.set(repo.repository, e);
    }
    for (const e of byRepo.values()) needs.push({ blob, desc, ...e });
  }
  const present = await mapLimit(needs, limiter.limit, async (n) => {
    const ok = await opts.open(n.repo).exists(n.desc, { signal: opts.signal });
    if (ok) where.set(n.desc.digest, new Set([...(where.get(n.desc.digest) ?? []), n.repo.repository]));
    return ok;
  }, opts.signal);
  // A blob in none of the repositories that need it may still be in another one of this registry.
  const absent = needs.filter((_, i) => !present[i]);
  for (const n of absent) {
    if (where.has(n.desc.digest)) continue;
    for (const r of repos.values()) {
      if (r.repository === n.repo.repository) continue;
      if (await limiter.run(() => opts.open(r).exists(n.desc, { signal: opts.signal }), opts.signal)) {
        where.set(n.desc.digest, new Set([r.repository]));
        break;
      }
    }
  }
  const missing = absent.filter((n) => !where.has(n.desc.digest));
  if (missing.length > 0) {
    const base = bundle.inventory.delta!.base;
    const bytes = missing.reduce((a, n) => a + n.blob.size, 0);
    const lines = missing.map((n) => `${n.desc.digest} (${n.blob.mediaType}, ${n.blob.size} bytes) for ${n.images.join(', ')}: not in ${n.repo.registry}/${n.repo.repository}`);
    throw new NotFoundError(
      `${bundle.path} is a delta of ${base.name} ${base.version} (inventory ${base.inventory}); the registry lacks ${missing.length} blob${missing.length === 1 ? '' : 's'} (${bytes} bytes) it relies on, so nothing was pushed:\n  ${lines.join('\n  ')}`,
      { code: 'DELTA_BASE_MISSING', hint: `push the base bundle (${base.name} ${base.version}) to the same target first, then this delta` },
    );
  }
  let mounted = 0;
  for (const n of absent) {
    const from = [...where.get(n.desc.digest)!][0]!;
    const dst = opts.open(n.repo);
    if (!isMounter(dst) || !(await dst.mount(n.desc, from, { signal: opts.signal }))) {
      throw new NotFoundError(`${n.desc.digest} is in ${n.repo.registry}/${from} but the registry would not mount it into ${n.repo.repository}, and the delta does not carry it`, {
        code: 'DELTA_BASE_MISSING',
        hint: 'push the base bundle to this target again, or pack a full bundle (not a delta)',
      });
    }
    mounted++;
  }
  return { mounted };
}
