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
import { Readable } from 'node:stream';
import { NotFoundError, IntegrityError, RegistryError } from '../core/errors.ts';
import { formatReference, parseReference, type Reference } from '../core/reference.ts';
import { isManifestDescriptor, MAX_MANIFEST_BYTES, type Descriptor } from '../core/manifest.ts';
import { isMounter, isReferencePusher, type ReadOnlyStorage, type Storage, type TagResolver } from '../content/types.ts';
import { readAllLimited } from '../content/verify-stream.ts';
// The bundle's modules one by one, not its index: that one loads the writer, parity and more.
import { openBundle, type Bundle } from '../bundle/read.ts';
import { findMissingBlobs, incompleteError, type MissingBlob } from '../bundle/completeness.ts';
import { signatureStatus, type SignatureStatus } from '../bundle/sign.ts';
import type { InventoryBlob } from '../bundle/format.ts';
import type { VerifyingKey } from '../sign/keys.ts';
import { blame, copyGraph, type CopyEvent, type SiblingUploads } from '../copy.ts';
import { mapAll, type Target } from '../rewrite/mapping.ts';
import { Limiter, mapLimit } from '../util/limiter.ts';
// Not helm/artifact.ts: that one builds chart manifests and loads yaml and semver to do it.
import { ARTIFACT_ANNOTATION, CHART_ARTIFACT } from '../helm/artifact-mark.ts';
import { referrerMark } from '../core/referrers.ts';
import { updateReferrersTags, type ReferrersTagUpdate } from './referrers-tags.ts';
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
  onEvent?: (e: CopyEvent | { type: 'image-done'; image: string; target: string; digest: string } | { type: 'warning'; code: string; message: string }) => void;
  /** The bundle is open and checked, nothing sent yet: what it holds (to announce what will be pushed). */
  onChecked?: ((bundle: Bundle) => void) | undefined;
}

export interface PushedImage {
  /** A Helm chart (pullable with `helm pull oci://…`), a file of `files:` (`oras pull`), an image, or what refers to one (a signature, attestation, SBOM). */
  kind: 'image' | 'chart' | 'file' | 'referrer';
  source: string;
  target: string;
  digest: string;
  blobs: { copied: number; exists: number; mounted: number };
  bytes: number;
  /**
   * The bundle carries this image's index reduced to some platforms, and its upstream index beside
   * it: which one the target now holds under the tag (`original`, so pins to the upstream digest
   * resolve; `reduced` when the registry refused an index whose other platforms are absent). The
   * reduced index is there by its digest either way.
   */
  index?: { original: string; reduced: string; kept: 'original' | 'reduced' };
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
  /** Referrers tag schema indexes written, in a target without the referrers API (see referrers-tags.ts). */
  referrersTags?: ReferrersTagUpdate[];
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
    const originals = originalIndexes(bundle, missing);
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
      const stat: PushedImage = { kind: img.root.annotations?.[ARTIFACT_ANNOTATION] === CHART_ARTIFACT ? 'chart' : img.root.annotations?.[ARTIFACT_ANNOTATION] === FILE_ARTIFACT ? 'file' : referrerMark(img.root) ? 'referrer' : 'image', source: img.reference, target: formatReference(dst.tag === undefined ? { ...dst, digest: img.root.digest } : { ...dst, digest: undefined }), digest: img.root.digest, blobs: { copied: 0, exists: 0, mounted: 0 }, bytes: 0 };
      stats.set(img.reference, stat);
      if (!done.has(repoKey)) done.set(repoKey, new Map());
      const original = originals.get(img.reference);
      await copyGraph(source, opts.open(dst), img.root, {
        limiter,
        done: done.get(repoKey)!,
        signal: opts.signal,
        image: img.reference,
        // A reduced index goes by its digest: the tag is offered to the upstream index first (below).
        tag: original ? undefined : (dst.tag ?? img.root.digest),
        siblings: { repository: dst.repository, uploads },
        onEvent: (e) => {
          if (e.type === 'blob-done') {
            stat.blobs[e.how]++;
            if (e.how === 'copied') stat.bytes += e.size;
          }
          opts.onEvent?.(e);
        },
      });
      if (original) {
        const kept = await offerOriginal(bundle, opts.open(dst), img.root, original, dst.tag, opts.signal);
        stat.index = { original: original.digest, reduced: img.root.digest, kept };
        if (kept === 'original') {
          stat.digest = original.digest;
          if (dst.tag === undefined) stat.target = formatReference({ ...dst, digest: original.digest });
        } else {
          opts.onEvent?.({ type: 'warning', code: 'INDEX_ORIGINAL_REFUSED', message: refusedMessage(stat, original.digest, bundle.path) });
        }
      }
      opts.onEvent?.({ type: 'image-done', image: img.reference, target: stat.target, digest: stat.digest });
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
    const referrersTags: ReferrersTagUpdate[] = [];
    await mapLimit([...byRepo.values()], 2 * (opts.concurrency ?? 8), async (group) => {
      for (const img of pushOrder(group)) await pushOne(img);
      const dst = mapping.get(formatReference(parseReference(group[0]!.reference)))!;
      referrersTags.push(...(await updateReferrersTags(group, bundle, opts.open(dst), `${dst.registry}/${dst.repository}`, { signal: opts.signal, onWarning: (w) => opts.onEvent?.({ type: 'warning', ...w }) })));
    }, opts.signal);
    // The tag schema's index is written by updateReferrersTags, when the target needs one.
    const pushed = images.filter((i) => stats.has(i.reference)).map((i) => stats.get(i.reference)!);
    const d = bundle.inventory.delta;
    return {
      images: pushed,
      bytes: pushed.reduce((a, p) => a + p.bytes, 0),
      bundle: { path: bundle.path, inventory: bundle.inventoryDigest, name: bundle.bundleInfo.name, version: bundle.bundleInfo.version },
      ...(signature ? { signature } : {}),
      ...(d && relied ? { delta: { base: d.base, relied: d.blobs.length, mounted: relied.mounted } } : {}),
      ...(referrersTags.length > 0 ? { referrersTags: referrersTags.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0)) } : {}),
    };
  } finally {
    await bundle.close();
  }
}

/**
 * The upstream index of each image the bundle carries reduced (InventoryImage.original), by image;
 * one the bundle lacks is added to `missing` (nothing is pushed then).
 */
function originalIndexes(bundle: Bundle, missing: MissingBlob[]): Map<string, Descriptor> {
  const out = new Map<string, Descriptor>();
  const roots = new Map(bundle.images().map((i) => [i.reference, i.root]));
  for (const img of bundle.inventory.images) {
    const o = img.original;
    const root = roots.get(img.reference);
    if (!o || !root) continue;
    const held = bundle.blobEntry(o.digest)?.size;
    if (held !== o.size) missing.push({ digest: o.digest, size: o.size, ...(held !== undefined ? { found: held } : {}), images: [img.reference] });
    else out.set(img.reference, { mediaType: root.mediaType, digest: o.digest, size: o.size });
  }
  return out;
}

/**
 * Offer the upstream index under the tag (or by its digest when the image has no tag): a pin to
 * its digest then resolves. A registry that checks an index's children refuses it, since the
 * platforms the bundle leaves out are absent (docker-registry 2.8: 400 MANIFEST_BLOB_UNKNOWN):
 * then the tag gets the reduced index. Anything else (auth, network, 5xx) fails the push.
 */
async function offerOriginal(bundle: Bundle, repo: PushRepository, reduced: Descriptor, original: Descriptor, tag: string | undefined, signal: AbortSignal | undefined): Promise<'original' | 'reduced'> {
  const bytes = async (d: Descriptor): Promise<Buffer> => await readAllLimited(await bundle.fetch(d, { signal }), MAX_MANIFEST_BYTES, `index ${d.digest}`);
  const put = async (d: Descriptor, reference: string): Promise<void> => {
    if (isReferencePusher(repo)) await repo.pushReference(d, await bytes(d), reference, { signal });
    else await repo.push(d, Readable.from([await bytes(d)]), { signal });
  };
  try {
    await put(original, tag ?? original.digest);
    return 'original';
  } catch (e) {
    if (!refusesIndex(e)) throw blame(e, 'destination', repo);
  }
  try {
    if (tag !== undefined) await put(reduced, tag);
  } catch (e) {
    throw blame(e, 'destination', repo);
  }
  return 'reduced';
}

/** The registry answered that it will not store this index (not: who you are, try later, or a failure of its own). */
function refusesIndex(e: unknown): boolean {
  return e instanceof RegistryError && e.status >= 400 && e.status < 500 && ![401, 403, 408, 429].includes(e.status);
}

function refusedMessage(stat: PushedImage, original: string, bundlePath: string): string {
  return (
    `${stat.target}: the registry refused the upstream index ${original} (it lists platforms the bundle does not carry), so the tag holds the reduced index ${stat.digest}; ` +
    `references pinned to ${original} resolve only once mapped: airlock post-render (or rewrite) --bundle ${bundlePath} --registry … maps them`
  );
}

/**
 * A repository's entries in the order they go: images (and charts) first, then what refers to them
 * (a registry may check a subject; a client that finds a signature looks for its image), and not
 * the referrers tag schema's index, which updateReferrersTags writes where the target needs it.
 */
function pushOrder<T extends { root: Descriptor }>(group: readonly T[]): T[] {
  const marks = group.map((img) => referrerMark(img.root));
  return [...group.filter((_, i) => !marks[i]), ...group.filter((_, i) => marks[i] && marks[i].kind !== 'referrers-index')];
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
