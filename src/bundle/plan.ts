// Planning a bundle (before a byte is written): walk each image graph from its root in the source,
// collect every blob once, work out platforms and sizes, and build the inventory and index.json.
import { IntegrityError, NotFoundError, UsageError } from '../core/errors.ts';
import { isManifestDescriptor, MAX_MANIFEST_BYTES, type Descriptor, type Index } from '../core/manifest.ts';
import { MediaType } from '../core/media-types.ts';
import { formatPlatform } from '../core/platform.ts';
import { parseReference } from '../core/reference.ts';
import type { ReadOnlyStorage } from '../content/types.ts';
import { ManifestCache, readManifest, walkGraph, type CachedStorage } from '../content/graph.ts';
import { mapLimit } from '../util/limiter.ts';
import { referrerMark } from '../core/referrers.ts';
import { digestOf, type Digest } from '../core/digest.ts';
import {
  canonicalJson,
  compareStrings,
  computeTotals,
  CONTAINERD_NAME_ANNOTATION,
  INVENTORY_SCHEMA_VERSION,
  REF_NAME_ANNOTATION,
  type Inventory,
  type InventoryBlob,
  type InventoryImage,
  type InventoryPlatform,
  type InventoryTool,
} from './format.ts';
import { inventoryFiles } from './files.ts';

export interface BundleImageInput {
  /** Full reference string, e.g. `docker.io/library/nginx:1.27`: the image's name in the bundle. */
  reference: string;
  /** The root manifest or index; every descriptor below it must be in the source. */
  root: Descriptor;
  /** Where this image's content comes from, when not from the bundle's one source (pack: its registry). */
  source?: ReadOnlyStorage | undefined;
  /**
   * `root` is an index reduced to some platforms: the upstream index it was cut from, carried as a
   * blob of the image (read from the source, never walked; see InventoryImage.original).
   */
  original?: Descriptor | undefined;
}

/** What a delta is packed against: the base bundle's identity and every blob it holds (or relies on). */
export interface DeltaBase {
  /** Digest of the base's airlock/inventory.json. */
  inventory: Digest;
  name: string;
  version: string;
  /** digest → size of every blob the base's images are made of. */
  blobs: ReadonlyMap<string, number>;
}

export interface PlanOptions {
  signal?: AbortSignal | undefined;
  /** Pack a delta: blobs (other than manifests) the base has are relied on, not carried. */
  base?: DeltaBase | undefined;
  /** The lock the bundle is packed from: pinned in the inventory. */
  lock?: { name: string; version: string; text: string } | undefined;
  /** Images walked at once (network sources); default 1, one after another. */
  concurrency?: number | undefined;
  /** Check that every blob is in the source before planning succeeds (default true); pack fetches them later. */
  checkBlobs?: boolean | undefined;
  /** Where manifests read while planning are kept (share it with what copies the bundle next). */
  manifests?: ManifestCache | undefined;
  /** Executables the bundle carries (tools.ts), listed in the inventory; a delta carries its own too. */
  tools?: readonly InventoryTool[] | undefined;
}

export interface BundlePlan {
  /** Images sorted by reference. */
  images: BundleImageInput[];
  inventory: Inventory;
  index: Index;
  /** index.json's exact bytes. */
  indexBytes: Buffer;
  /** Every blob carried, once, sorted by digest. */
  blobs: Descriptor[];
  /** Manifest bytes read while walking (small, size-limited), written from memory. */
  manifests: Map<string, Buffer>;
  /** The tools carried, sorted by path (as the inventory lists them). */
  tools: InventoryTool[];
}

/** Image configs: read (when small) to name a single-manifest image's platform. */
export const CONFIG_MEDIA_TYPES: readonly string[] = [MediaType.ociConfig, MediaType.dockerConfig];
/** Image configs are read only to name the platform of a single-manifest image. */
const MAX_CONFIG_BYTES = MAX_MANIFEST_BYTES;

export async function planBundle(input: BundleImageInput[], source: ReadOnlyStorage, options: PlanOptions | AbortSignal = {}): Promise<BundlePlan> {
  const opts: PlanOptions = options instanceof AbortSignal ? { signal: options } : options;
  const signal = opts.signal;
  const images = [...input].sort((a, b) => compareStrings(a.reference, b.reference));
  for (let i = 1; i < images.length; i++) {
    if (images[i]!.reference === images[i - 1]!.reference) {
      throw new UsageError(`image ${images[i]!.reference} is listed twice for the bundle`, { code: 'BUNDLE_DUPLICATE_IMAGE' });
    }
  }
  for (const img of images) parseReference(img.reference);

  const cache = opts.manifests ?? new ManifestCache();
  const manifests = new Map<string, Buffer>();
  const blobs = new Map<string, { desc: Descriptor; mediaType: string; images: Set<string> }>();
  const concurrency = opts.concurrency ?? 1;
  // Images may be walked at once: everything gathered across them is order-independent (sorted
  // at the end), and each image's own entry goes to its place.
  const invImages = await mapLimit(images, concurrency, (img) => planImage(img, cache.wrap(img.source ?? source), { opts, manifests, blobs, concurrent: concurrency > 1 }), signal);
  const sorted = [...blobs.values()].sort((a, b) => compareStrings(a.desc.digest, b.desc.digest));
  const toInventory = (b: (typeof sorted)[number]): InventoryBlob => ({
    digest: b.desc.digest,
    size: b.desc.size,
    mediaType: b.mediaType,
    images: [...b.images].sort(compareStrings),
  });
  // Manifests are always carried: they are small, and with them a delta can be walked, verified
  // and pushed (tags moved) without its base at hand.
  const base = opts.base;
  const relied = base
    ? sorted.filter((b) => {
        const size = base.blobs.get(b.desc.digest);
        if (size === undefined || isManifestDescriptor(b.desc)) return false;
        if (size !== b.desc.size) throw new IntegrityError(`${b.desc.digest} is ${b.desc.size} bytes here but ${size} bytes in the base ${base.name} ${base.version}`, { code: 'SIZE_MISMATCH' });
        return true;
      })
    : [];
  const reliedSet = new Set(relied.map((b) => b.desc.digest));
  const carried = sorted.filter((b) => !reliedSet.has(b.desc.digest));
  const invBlobs = carried.map(toInventory);
  const invRelied = relied.map(toInventory);
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map((img) => ({
      ...img.root,
      annotations: { ...img.root.annotations, [REF_NAME_ANNOTATION]: img.reference, [CONTAINERD_NAME_ANNOTATION]: img.reference },
    })),
  };
  const indexBytes = Buffer.from(canonicalJson(index, false));
  const inventory: Inventory = {
    schemaVersion: INVENTORY_SCHEMA_VERSION,
    images: invImages,
    blobs: invBlobs,
    totals: computeTotals(invImages, invBlobs, invRelied),
    index: { digest: digestOf(indexBytes), size: indexBytes.length },
  };
  if (opts.lock) inventory.lock = { name: opts.lock.name, version: opts.lock.version, digest: digestOf(opts.lock.text), size: Buffer.byteLength(opts.lock.text) };
  if (base) inventory.delta = { base: { inventory: base.inventory, name: base.name, version: base.version }, blobs: invRelied };
  const files = inventoryFiles(images, manifests);
  // Absent without files, like tools: such a bundle is what it always was.
  if (files.length > 0) inventory.files = files;
  const tools = [...(opts.tools ?? [])].sort((a, b) => compareStrings(a.path, b.path));
  // Absent, not empty, without tools: a bundle that carries none is what it always was.
  if (tools.length > 0) inventory.tools = tools.map((t) => ({ platform: t.platform, name: t.name, path: t.path, digest: t.digest, size: t.size }));
  return { images, inventory, index, indexBytes, blobs: carried.map((b) => b.desc), manifests, tools };
}

interface PlanShared {
  opts: PlanOptions;
  /** Every manifest's bytes, by digest, for the writer. */
  manifests: Map<string, Buffer>;
  blobs: Map<string, { desc: Descriptor; mediaType: string; images: Set<string> }>;
  concurrent: boolean;
}

/** One image's walk: its blobs noted in `shared.blobs`, its platforms and size in its inventory entry. */
async function planImage(img: BundleImageInput, src: CachedStorage, shared: PlanShared): Promise<InventoryImage> {
  const { opts, blobs } = shared;
  const signal = opts.signal;
  const mine = new Map<string, Descriptor>();
  const platforms: InventoryPlatform[] = [];
  try {
    await walkGraph(src, img.root, {
      signal,
      image: img.reference,
      concurrent: shared.concurrent,
      visit: async (d) => {
        const seen = mine.get(d.digest);
        if (seen) {
          if (seen.size !== d.size) throw sizeConflict(d, seen, img.reference);
          return false;
        }
        mine.set(d.digest, d);
        const known = blobs.get(d.digest);
        if (known) {
          if (known.desc.size !== d.size) throw sizeConflict(d, known.desc, img.reference);
          if (compareStrings(d.mediaType, known.mediaType) < 0) known.mediaType = d.mediaType;
          known.images.add(img.reference);
        } else {
          blobs.set(d.digest, { desc: { mediaType: d.mediaType, digest: d.digest, size: d.size }, mediaType: d.mediaType, images: new Set([img.reference]) });
        }
        if (isManifestDescriptor(d)) return true;
        // What a delta relies on need not be at hand: the base has it.
        if (opts.base?.blobs.get(d.digest) === d.size || opts.checkBlobs === false) return false;
        if (!(await src.exists(d, { signal }))) throw missing(d, img.reference);
        return false;
      },
      leave: (d, node) => {
        shared.manifests.set(d.digest, node.bytes);
        if (node.parsed.kind !== 'index') return;
        for (const c of node.parsed.value.manifests) {
          if (c.platform && !(c.platform.os === 'unknown' && c.platform.architecture === 'unknown') && !isManifestIndex(c)) {
            platforms.push({ platform: formatPlatform(c.platform), digest: c.digest });
          }
        }
      },
    });
    const root = await readManifest(src, img.root, { signal });
    if (root.parsed.kind === 'manifest') {
      const p = await configPlatform(src, root.parsed.value.config, img.reference, signal);
      if (p) platforms.push({ platform: p, digest: img.root.digest });
    }
    if (img.original) await planOriginal(img, img.original, src, shared, mine);
  } catch (e) {
    // A manifest or config the source lacks: say which image needs it.
    const notFound = e instanceof NotFoundError || (e as { status?: number }).status === 404;
    if (notFound && !(e as Error).message.includes(img.reference)) {
      throw new NotFoundError(`${(e as Error).message}, needed by ${img.reference}`, { code: 'BLOB_UNKNOWN', cause: e, hint: 'run `airlock pack` again to download what is missing' });
    }
    throw e;
  }
  platforms.sort((a, b) => compareStrings(a.platform, b.platform) || compareStrings(a.digest, b.digest));
  return {
    reference: img.reference,
    digest: img.root.digest,
    mediaType: img.root.mediaType,
    size: img.root.size,
    platforms: dedupePlatforms(platforms),
    totalSize: [...mine.values()].reduce((a, d) => a + d.size, 0),
    ...(img.original ? { original: { digest: img.original.digest, size: img.original.size } } : {}),
    ...referrerOf(img.root),
  };
}

/**
 * The upstream index of a reduced one: read (verified) from the source and carried like the image's
 * other manifests, written from memory; not walked, since the platforms only it lists are absent.
 */
async function planOriginal(img: BundleImageInput, original: Descriptor, src: CachedStorage, shared: PlanShared, mine: Map<string, Descriptor>): Promise<void> {
  if (!isManifestIndex(original) || original.mediaType !== img.root.mediaType || original.digest === img.root.digest) {
    throw new IntegrityError(`${img.reference}: the original index ${original.digest} must be an index of the reduced one's media type (${img.root.mediaType})`, { code: 'BUNDLE_INCONSISTENT' });
  }
  const bytes = await src.bytes(original, { signal: shared.opts.signal, what: `original index ${original.digest} of ${img.reference}` });
  const desc: Descriptor = { mediaType: original.mediaType, digest: original.digest, size: original.size };
  const seen = mine.get(desc.digest);
  if (seen && seen.size !== desc.size) throw sizeConflict(desc, seen, img.reference);
  mine.set(desc.digest, desc);
  const known = shared.blobs.get(desc.digest);
  if (known) {
    if (known.desc.size !== desc.size) throw sizeConflict(desc, known.desc, img.reference);
    known.images.add(img.reference);
  } else {
    shared.blobs.set(desc.digest, { desc, mediaType: desc.mediaType, images: new Set([img.reference]) });
  }
  shared.manifests.set(desc.digest, bytes);
}

/** A referrer's entry says what it refers to (index.json's annotations, see core/referrers.ts). */
function referrerOf(root: Descriptor): Pick<InventoryImage, 'referrer'> {
  const mark = referrerMark(root);
  if (!mark) return {};
  return { referrer: { subject: mark.subject, kind: mark.kind, ...(root.artifactType !== undefined ? { artifactType: root.artifactType } : {}) } };
}

function isManifestIndex(d: Descriptor): boolean {
  return d.mediaType === MediaType.ociIndex || d.mediaType === MediaType.dockerManifestList;
}

function dedupePlatforms(list: InventoryPlatform[]): InventoryPlatform[] {
  return list.filter((p, i) => i === 0 || p.platform !== list[i - 1]!.platform || p.digest !== list[i - 1]!.digest);
}

/** os/arch[/variant] from an image config, when the config is a known, small JSON document. */
async function configPlatform(source: CachedStorage, config: Descriptor, image: string, signal: AbortSignal | undefined): Promise<string | undefined> {
  if (!CONFIG_MEDIA_TYPES.includes(config.mediaType) || config.size > MAX_CONFIG_BYTES) return undefined;
  const bytes = await source.bytes(config, { signal, what: `config ${config.digest} of ${image}` });
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new IntegrityError(`config ${config.digest} of ${image} is not valid JSON`, { code: 'CONFIG_INVALID', cause: e });
  }
  const o = doc as { os?: unknown; architecture?: unknown; variant?: unknown } | null;
  if (typeof o?.os !== 'string' || typeof o.architecture !== 'string' || !o.os || !o.architecture) return undefined;
  return formatPlatform({ os: o.os, architecture: o.architecture, variant: typeof o.variant === 'string' ? o.variant : undefined });
}

function missing(d: Descriptor, image: string, cause?: unknown): NotFoundError {
  return new NotFoundError(`blob ${d.digest} (${d.mediaType}, ${d.size} bytes) of ${image} is not in the pack cache`, {
    code: 'BLOB_UNKNOWN',
    cause,
    hint: 'run `airlock pack` again to download what is missing',
  });
}

function sizeConflict(d: Descriptor, other: Descriptor, image: string): IntegrityError {
  return new IntegrityError(`${d.digest} of ${image} is referenced with two sizes: ${d.size} and ${other.size}`, { code: 'SIZE_MISMATCH' });
}
