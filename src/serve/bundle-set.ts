// Several bundles (a base and its updates) read as one content store: the union of their blobs,
// and their images with later bundles winning a name both carry. An update may be a delta (pack
// --since): its manifests are its own, the blobs it relies on come from its base, which must be in
// the set. A split bundle is given as its volumes (or their shared name) and read in place. Every image graph is walked once
// when the set opens (manifests are small positioned reads, checked against their digests), so
// serving and exporting never parse a manifest again to know what belongs to what; a set whose
// images lack a blob does not open (exit 5, each missing blob named). Blobs stay in the tars and
// are read by position; nothing is unpacked. What serve sends is checked against its digest, each
// blob once per process (blob-verifier.ts). Tools the bundles carry (pack --with-tools) are offered
// for download the same way, checked against the sha256 their inventory lists; a tool several
// bundles carry is the one of the last bundle given, as for tags. The files they carry (`files:`)
// are offered by name the same way: each is its artifact's layer, a blob, checked like every blob.
import { Readable } from 'node:stream';
import { IntegrityError, NotFoundError, throwIfAborted } from '../core/errors.ts';
import { digestAlgorithm, digestOf, type Digest } from '../core/digest.ts';
import { MAX_MANIFEST_BYTES, MediaType, type Descriptor } from '../core/manifest.ts';
import { ManifestCache, readManifest, walkGraph } from '../content/graph.ts';
import { parseReference, type Reference } from '../core/reference.ts';
import type { OpOptions, ReadOnlyStorage } from '../content/types.ts';
import { blobPath, groupBundlePaths, openBundle, type Bundle, type BundleEntry } from '../bundle/index.ts';
import type { PositionedReader } from '../bundle/source.ts';
import { compareStrings, type InventoryFile, type InventoryTool } from '../bundle/format.ts';
import { fileNameProblem } from '../files/artifact.ts';
import { incompleteError, MissingBlobs } from '../bundle/completeness.ts';
import { BlobVerifier, type BlobCheckEvent } from './blob-verifier.ts';

export type { BlobCheckEvent };

export interface SetImage {
  /** The name as the bundle carries it, e.g. `docker.io/library/nginx:1.27`. */
  name: string;
  reference: Reference;
  root: Descriptor;
  /** Path of the bundle this image (its tag) comes from. */
  bundle: string;
  /** Every digest of the graph, root included: manifests, configs, layers. */
  digests: ReadonlySet<string>;
  /**
   * The image's index is reduced to some platforms: the upstream index it was cut from, which the
   * bundle carries (InventoryImage.original). Its tag answers with it, and so does its digest.
   */
  original?: Descriptor | undefined;
}

/** What is known about one manifest without reading it again. */
export interface ManifestInfo {
  digest: Digest;
  /** The document's own mediaType, else the one of the descriptor that pointed at it. */
  mediaType: string;
  size: number;
  kind: 'index' | 'manifest';
  /** Platform children of an index (for clients that cannot take an index). */
  children: Descriptor[];
  subject?: Digest | undefined;
  /** The config's media type (image manifests only). */
  config?: string | undefined;
  /** `artifactType`, else the config's media type: what the referrers API lists. */
  artifactType?: string | undefined;
  annotations?: Record<string, string> | undefined;
}

const IMAGE_CONFIG_MEDIA_TYPES: readonly string[] = [MediaType.ociConfig, MediaType.dockerConfig];

/** Bytes `position`…`position + length` of a bundle's tar (the reader belongs to the bundle; it may span volumes). */
export interface FileRange {
  fh: PositionedReader;
  position: number;
  length: number;
  /**
   * Awaited before the last chunk is sent (absent: the blob is verified already). It rejects when
   * the blob does not match its digest: the response must then be cut, never completed.
   */
  verdict?: (() => Promise<void>) | undefined;
}

export interface BlobLocation {
  bundle: Bundle;
  entry: BundleEntry;
}

/** A tool one of the bundles carries, where its bytes sit. */
export interface SetTool extends BlobLocation {
  tool: InventoryTool;
}

/** A file one of the bundles carries (`files:`), where its bytes (its artifact's layer, a blob) sit. */
export interface SetFile extends BlobLocation {
  file: InventoryFile;
}

export interface OpenBundleSetOptions {
  signal?: AbortSignal | undefined;
  /** Hears each blob checked by verifyBlob (once per blob). */
  onBlobCheck?: ((e: BlobCheckEvent) => void) | undefined;
  /** Worker threads hashing large blobs for verifyBlob (default: one per core but one, up to 4). */
  verifyThreads?: number | undefined;
}

export class BundleSet implements ReadOnlyStorage {
  readonly bundles: readonly Bundle[];
  /** Images by name; a name in several bundles is the one of the last bundle given. */
  readonly images: readonly SetImage[];
  /**
   * Images an update replaced (same name, other root): no longer tagged, still pullable by
   * digest, as from a registry where the tag moved.
   */
  readonly shadowed: readonly SetImage[];
  readonly #manifests: ReadonlyMap<string, ManifestInfo>;
  readonly #blobs = new Map<string, BlobLocation>();
  /** By platform and name. */
  readonly #tools = new Map<string, SetTool>();
  /** By name; a name several bundles carry is the one of the last bundle given. */
  readonly #files = new Map<string, SetFile>();
  readonly #verifier: BlobVerifier;

  /** Use openBundleSet. */
  constructor(bundles: Bundle[], images: SetImage[], shadowed: SetImage[], manifests: Map<string, ManifestInfo>, opts: Pick<OpenBundleSetOptions, 'onBlobCheck' | 'verifyThreads'> = {}) {
    this.bundles = bundles;
    this.images = images;
    this.shadowed = shadowed;
    this.#manifests = manifests;
    this.#verifier = new BlobVerifier(bundles, { onCheck: opts.onBlobCheck, threads: opts.verifyThreads });
    for (const b of bundles) {
      for (const [name, entry] of b.entries) {
        if (!name.startsWith('blobs/')) continue;
        const parts = name.split('/');
        if (parts.length !== 3) continue;
        const digest = `${parts[1]}:${parts[2]}`;
        if (!this.#blobs.has(digest)) this.#blobs.set(digest, { bundle: b, entry });
      }
      for (const tool of b.inventory.tools ?? []) {
        const entry = b.entries.get(tool.path);
        // One the tar lacks, or of another size, is not offered (verify names it).
        if (entry?.size === tool.size) this.#tools.set(toolKey(tool.platform, tool.name), { bundle: b, entry, tool });
      }
    }
    // After every bundle's blobs: a delta's file may be a blob of its base.
    for (const b of bundles) {
      for (const file of b.inventory.files ?? []) {
        const loc = this.#blobs.get(file.digest);
        // One whose bytes are in no bundle (or of another size), or with a name that is not safe, is not offered (verify names it).
        if (loc?.entry.size === file.size && fileNameProblem(file.name) === undefined) this.#files.set(file.name, { ...loc, file });
      }
    }
  }

  /** The files the bundles carry, sorted by name. */
  files(): SetFile[] {
    return [...this.#files.values()].sort((a, b) => compareStrings(a.file.name, b.file.name));
  }

  /** The file `name`, if a bundle carries it. */
  file(name: string): SetFile | undefined {
    return this.#files.get(name);
  }

  /** The tools the bundles carry, sorted by platform and name. */
  tools(): SetTool[] {
    return [...this.#tools.values()].sort((a, b) => compareStrings(a.tool.path, b.tool.path));
  }

  /** The tool `name` of `platform` (`linux/amd64`), if a bundle carries it. */
  tool(platform: string, name: string): SetTool | undefined {
    return this.#tools.get(toolKey(platform, name));
  }

  /** Why a tool is no longer offered: its bytes were found not to match its inventory's sha256. */
  toolDamage(t: SetTool): IntegrityError | undefined {
    return this.#verifier.damage(toolCheckKey(t));
  }

  isToolVerified(t: SetTool): boolean {
    return this.#verifier.isVerified(toolCheckKey(t));
  }

  /** Like verifyBlob, for a carried tool: its bytes against the sha256 its bundle's inventory lists, once per process. */
  async verifyTool(t: SetTool): Promise<void> {
    await this.#verifier.verify(t.tool.digest, t.bundle, t.entry, { key: toolCheckKey(t), label: t.tool.path });
  }

  /** Where a blob's bytes sit, in whichever bundle has them. */
  locate(digest: string): BlobLocation | undefined {
    return this.#blobs.get(digest);
  }

  manifest(digest: string): ManifestInfo | undefined {
    return this.#manifests.get(digest);
  }

  /**
   * Bytes of a blob range; the caller knows the digest and size (Content-Length) already. With a
   * `verdict` (see FileRange), the last chunk waits for it and the stream fails instead if it rejects.
   */
  readRange(loc: BlobLocation, start = 0, length = loc.entry.size, verdict?: () => Promise<void>): Readable {
    const raw = loc.bundle.readRange({ offset: loc.entry.offset + start, size: length });
    return verdict ? Readable.from(holdLastChunk(raw, verdict), { objectMode: false }) : raw;
  }

  /** The same range as readRange, for callers that do their own positioned reads. */
  fileRange(loc: BlobLocation, start = 0, length = loc.entry.size, verdict?: () => Promise<void>): FileRange {
    return { fh: loc.bundle.fileHandle(), position: loc.entry.offset + start, length, ...(verdict ? { verdict } : {}) };
  }

  /** The blob's bytes hashed to its digest already (in this process). */
  isVerified(digest: string): boolean {
    return this.#verifier.isVerified(digest);
  }

  /** Why a blob is no longer served: its bytes were found not to match its digest. */
  blobDamage(digest: string): IntegrityError | undefined {
    return this.#verifier.damage(digest);
  }

  /**
   * Resolves once the blob's bytes in the bundle hashed to its digest: hashed once per process,
   * concurrent callers share that one check; rejects with an IntegrityError, then and ever after,
   * when they do not match.
   */
  async verifyBlob(digest: string): Promise<void> {
    const loc = this.#blobs.get(digest);
    if (!loc) throw new NotFoundError(`blob ${digest} is in none of the bundles`, { code: 'BLOB_UNKNOWN' });
    await this.#verifier.verify(digest, loc.bundle, loc.entry);
  }

  /** A manifest's exact bytes (small, size-limited), checked against its digest on every read. */
  async readManifest(digest: string): Promise<Buffer> {
    const loc = this.#blobs.get(digest);
    if (!loc) throw new NotFoundError(`manifest ${digest} is in none of the bundles`, { code: 'MANIFEST_UNKNOWN' });
    const bytes = await loc.bundle.readEntry(blobPath(digest as Digest), MAX_MANIFEST_BYTES);
    const actual = digestOf(bytes, digestAlgorithm(digest as Digest));
    if (actual !== digest) {
      throw new IntegrityError(`manifest ${digest} in ${loc.bundle.describe(loc.entry.offset, loc.entry.size)}: digest mismatch, got ${actual}`, { code: 'DIGEST_MISMATCH' });
    }
    return bytes;
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    return this.#blobs.get(desc.digest)?.entry.size === desc.size;
  }

  /** Verified stream of a blob (Fetcher contract), from the first bundle that holds it. */
  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    const loc = this.#blobs.get(desc.digest);
    if (!loc) throw new NotFoundError(`blob ${desc.digest} is in none of the bundles`, { code: 'BLOB_UNKNOWN' });
    return await loc.bundle.fetch(desc, opts);
  }

  /**
   * Is this a container image (something containerd can unpack and run): an image manifest with
   * an image config, or an index holding one. Charts, signatures and SBOMs are not.
   */
  isContainerImage(digest: string): boolean {
    const info = this.#manifests.get(digest);
    if (!info) return false;
    if (info.kind === 'manifest') return info.config !== undefined && IMAGE_CONFIG_MEDIA_TYPES.includes(info.config);
    return info.children.some((c) => c.digest !== digest && this.isContainerImage(c.digest));
  }

  async close(): Promise<void> {
    // Hash workers read the bundles' descriptors: they stop before the files close.
    await this.#verifier.close().catch(() => {});
    await Promise.allSettled(this.bundles.map((b) => b.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Open bundles as one set. Each is scanned and each image graph walked; a manifest missing from
 * every bundle, or whose bytes do not match its digest, fails here rather than at the first pull.
 */
export async function openBundleSet(paths: readonly string[], opts: OpenBundleSetOptions = {}): Promise<BundleSet> {
  const bundles: Bundle[] = [];
  try {
    // b.tar.001 b.tar.002 … (a shell's b.tar.*) are one bundle.
    for (const files of await groupBundlePaths(paths)) {
      throwIfAborted(opts.signal);
      bundles.push(await openBundle(files, { signal: opts.signal }));
    }
    for (const b of bundles) {
      const delta = b.inventory.delta;
      if (!delta) continue;
      const missing = delta.blobs.filter((r) => !bundles.some((x) => x.blobEntry(r.digest)?.size === r.size));
      if (missing.length > 0) {
        const bytes = missing.reduce((a, r) => a + r.size, 0);
        throw new NotFoundError(
          `${b.path} is a delta of ${delta.base.name} ${delta.base.version} (inventory ${delta.base.inventory}): ${missing.length} blob${missing.length === 1 ? '' : 's'} (${bytes} bytes) it relies on ${missing.length === 1 ? 'is' : 'are'} in none of the bundles given, e.g. ${missing[0]!.digest} of ${missing[0]!.images.join(', ')}`,
          { code: 'DELTA_BASE_MISSING', hint: `give its base bundle too (${delta.base.name} ${delta.base.version}), before it: BASE.tar ${b.path}` },
        );
      }
    }
    const byName = new Map<string, { bundle: Bundle; root: Descriptor }>();
    const replaced: { name: string; bundle: Bundle; root: Descriptor }[] = [];
    for (const b of bundles) {
      for (const img of b.images()) {
        const earlier = byName.get(img.reference);
        if (earlier && earlier.root.digest !== img.root.digest) replaced.push({ name: img.reference, ...earlier });
        byName.set(img.reference, { bundle: b, root: img.root });
      }
    }

    const manifests = new Map<string, ManifestInfo>();
    const locate = (digest: string): Bundle | undefined => bundles.find((b) => b.blobEntry(digest) !== undefined);
    // Manifests are positioned reads from whichever bundle holds them; the walk verifies each.
    const entries = new ManifestCache().wrap({
      label: bundles.map((b) => b.path).join(', '),
      exists: async (d) => locate(d.digest) !== undefined,
      fetch: async (d) => Readable.from([await locate(d.digest)!.readEntry(blobPath(d.digest), MAX_MANIFEST_BYTES)]),
    });
    // Every blob of every image is looked for before anything is served or written.
    const missing = new MissingBlobs();
    const walk = async (root: Descriptor, image: string): Promise<ReadonlySet<string>> => {
      const digests = new Set<string>();
      await walkGraph(entries, root, {
        signal: opts.signal,
        image,
        visit: (d) => {
          if (digests.has(d.digest)) return false;
          digests.add(d.digest);
          const held = locate(d.digest)?.blobEntry(d.digest);
          if (held?.size === d.size) return true;
          missing.add(d, image, held?.size);
          return false;
        },
        leave: (d, { parsed }) => {
          const v = parsed.value;
          manifests.set(d.digest, {
            digest: d.digest,
            mediaType: parsed.mediaType,
            size: d.size,
            kind: parsed.kind,
            children: parsed.kind === 'index' ? parsed.value.manifests : [],
            subject: v.subject?.digest,
            config: parsed.kind === 'manifest' ? parsed.value.config.mediaType : undefined,
            artifactType: v.artifactType ?? (parsed.kind === 'manifest' ? parsed.value.config.mediaType : undefined),
            annotations: v.annotations,
          });
        },
      });
      return digests;
    };

    // The upstream index of a reduced one: read (checked) and known like the walked manifests.
    const withOriginal = async (img: SetImage, bundle: Bundle): Promise<SetImage> => {
      const o = bundle.inventory.images.find((i) => i.reference === img.name)?.original;
      if (!o) return img;
      const desc: Descriptor = { mediaType: img.root.mediaType, digest: o.digest, size: o.size };
      const held = bundle.blobEntry(o.digest);
      if (held?.size !== o.size) {
        missing.add(desc, img.name, held?.size);
        return img;
      }
      const node = await readManifest(entries, desc, { signal: opts.signal, what: `original index ${o.digest} of ${img.name}` });
      manifests.set(o.digest, { digest: o.digest, mediaType: node.parsed.mediaType, size: o.size, kind: node.parsed.kind, children: node.parsed.kind === 'index' ? node.parsed.value.manifests : [], annotations: node.parsed.value.annotations });
      return { ...img, original: desc, digests: new Set([...img.digests, o.digest]) };
    };
    const images: SetImage[] = [];
    for (const [name, { bundle, root }] of byName) {
      images.push(await withOriginal({ name, reference: parseReference(name), root, bundle: bundle.path, digests: await walk(root, name) }, bundle));
    }
    images.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const shadowed: SetImage[] = [];
    for (const r of replaced) {
      shadowed.push(await withOriginal({ name: r.name, reference: parseReference(r.name), root: r.root, bundle: r.bundle.path, digests: await walk(r.root, r.name) }, r.bundle));
    }
    if (missing.size > 0) {
      throw incompleteError(
        bundles.map((b) => b.path),
        missing.list(),
        'nothing was served or exported',
        bundles.some((b) => b.inventory.delta)
          ? 'an update (pack --since) takes what it lacks from its base, given before it (BASE.tar UPDATE.tar); else the bundle is damaged or cut short: copy it again (`airlock verify BUNDLE` lists every problem)'
          : undefined,
      );
    }
    return new BundleSet(bundles, images, shadowed, manifests, opts);
  } catch (e) {
    await Promise.allSettled(bundles.map((b) => b.close()));
    throw e;
  }
}

function toolKey(platform: string, name: string): string {
  return `${platform}\0${name}`;
}

/** A tool's check is remembered apart from any blob: the same bytes elsewhere prove nothing here. */
function toolCheckKey(t: SetTool): string {
  return `tool\0${t.bundle.path}\0${t.tool.path}`;
}

/** `raw`'s chunks, the last one only once `verdict` resolved: a failed verdict fails the stream before its end. */
async function* holdLastChunk(raw: Readable, verdict: () => Promise<void>): AsyncGenerator<Buffer> {
  let held: Buffer | undefined;
  for await (const chunk of raw) {
    if (held) yield held;
    held = chunk as Buffer;
  }
  await verdict();
  if (held) yield held;
}
