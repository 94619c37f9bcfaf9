// The one graph walker (oras-go content.Successors + the manifest cache of its copy): a manifest's
// successors are read once, through a cache that keeps verified manifest bytes up to a size limit,
// and every walk over images — copy, pack, plan, verify, serve, lock — goes through walkGraph.
import { Readable } from 'node:stream';
import { throwIfAborted } from '../core/errors.ts';
import { verifyBytes } from '../core/digest.ts';
import { childrenOf, isManifestDescriptor, MAX_MANIFEST_BYTES, parseManifest, type Descriptor, type ParsedManifest } from '../core/manifest.ts';
import { readAllLimited } from './verify-stream.ts';
import type { Fetcher, OpOptions, ReadOnlyStorage } from './types.ts';

/** A manifest (or index) read whole, verified against its descriptor, and parsed. */
export interface ManifestNode {
  bytes: Buffer;
  parsed: ParsedManifest;
}

/** Default memory a ManifestCache may hold: thousands of manifests, never a layer. */
export const DEFAULT_MANIFEST_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * Manifests (and other small documents read through it, such as image configs) by digest,
 * verified, up to `maxBytes` in all; the least recently used go first. Reads of one digest that
 * overlap are one read. Content is addressed by digest, so one cache serves every source of a
 * run: `wrap` gives each source a storage view that reads through it.
 */
export class ManifestCache {
  readonly maxBytes: number;
  readonly #nodes = new Map<string, { bytes: Buffer; parsed?: ParsedManifest }>();
  readonly #reading = new Map<string, Promise<Buffer>>();
  #bytes = 0;

  constructor(options: { maxBytes?: number } = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MANIFEST_CACHE_BYTES;
  }

  /** Bytes held now. */
  get size(): number {
    return this.#bytes;
  }

  /** `inner` as a storage whose manifest reads go through this cache. */
  wrap(inner: ReadOnlyStorage): CachedStorage {
    return inner instanceof CachedStorage && inner.cache === this ? inner : new CachedStorage(inner, this);
  }

  /** The bytes held for `digest`, if any (no read). */
  peek(digest: string): Buffer | undefined {
    return this.#touch(digest)?.bytes;
  }

  /** The document's bytes, verified: from memory, else read from `src` (at most MAX_MANIFEST_BYTES). */
  async bytes(src: Fetcher, desc: Descriptor, opts: OpOptions & { what?: string } = {}): Promise<Buffer> {
    const held = this.#touch(desc.digest);
    if (held) return held.bytes;
    let reading = this.#reading.get(desc.digest);
    if (!reading) {
      reading = readVerified(src, desc, opts);
      this.#reading.set(desc.digest, reading);
      reading.then(
        (bytes) => {
          this.#reading.delete(desc.digest);
          this.put(desc, bytes);
        },
        () => this.#reading.delete(desc.digest),
      );
    }
    return await reading;
  }

  /** The manifest read from `src` and parsed (once while it stays cached). */
  async read(src: Fetcher, desc: Descriptor, opts: OpOptions & { what?: string } = {}): Promise<ManifestNode> {
    const bytes = await this.bytes(src, desc, opts);
    const held = this.#nodes.get(desc.digest);
    if (held?.parsed) return { bytes, parsed: held.parsed };
    const parsed = parseManifest(bytes, desc.mediaType, opts.what ?? `manifest ${desc.digest}`);
    if (held) held.parsed = parsed;
    return { bytes, parsed };
  }

  /** Hold bytes already verified against `desc` (a caller that fetched them another way). */
  put(desc: Descriptor, bytes: Buffer): void {
    if (this.#nodes.has(desc.digest) || bytes.length > this.maxBytes) return;
    this.#nodes.set(desc.digest, { bytes });
    this.#bytes += bytes.length;
    for (const [digest, node] of this.#nodes) {
      if (this.#bytes <= this.maxBytes) break;
      this.#nodes.delete(digest);
      this.#bytes -= node.bytes.length;
    }
  }

  #touch(digest: string): { bytes: Buffer; parsed?: ParsedManifest } | undefined {
    const node = this.#nodes.get(digest);
    if (node) {
      // Most recently used last: eviction takes from the front.
      this.#nodes.delete(digest);
      this.#nodes.set(digest, node);
    }
    return node;
  }
}

/** A storage wrapper: manifests read through it are kept in (and served from) a ManifestCache. */
export class CachedStorage implements ReadOnlyStorage {
  readonly inner: ReadOnlyStorage;
  readonly cache: ManifestCache;

  constructor(inner: ReadOnlyStorage, cache: ManifestCache = new ManifestCache()) {
    this.inner = inner;
    this.cache = cache;
  }

  get label(): string | undefined {
    return this.inner.label;
  }

  async exists(desc: Descriptor, opts?: OpOptions): Promise<boolean> {
    return this.cache.peek(desc.digest) !== undefined || (await this.inner.exists(desc, opts));
  }

  async fetch(desc: Descriptor, opts?: OpOptions): Promise<Readable> {
    const held = this.cache.peek(desc.digest);
    return held ? Readable.from([held], { objectMode: false }) : await this.inner.fetch(desc, opts);
  }

  read(desc: Descriptor, opts?: OpOptions & { what?: string }): Promise<ManifestNode> {
    return this.cache.read(this.inner, desc, opts);
  }

  bytes(desc: Descriptor, opts?: OpOptions & { what?: string }): Promise<Buffer> {
    return this.cache.bytes(this.inner, desc, opts);
  }
}

async function readVerified(src: Fetcher, desc: Descriptor, opts: OpOptions & { what?: string }): Promise<Buffer> {
  const what = opts.what ?? `manifest ${desc.digest}`;
  const bytes = await readAllLimited(await src.fetch(desc, { signal: opts.signal }), MAX_MANIFEST_BYTES, what);
  // Fetchers verify while streaming; a manifest decides what else is trusted, so check it here too.
  verifyBytes(bytes, desc, what);
  return bytes;
}

/** A manifest's bytes and parsed form, through `src`'s cache when it is a ManifestCache. */
export async function readManifest(src: Fetcher, desc: Descriptor, opts: OpOptions & { what?: string } = {}): Promise<ManifestNode> {
  if (src instanceof CachedStorage) return await src.read(desc, opts);
  const bytes = await readVerified(src, desc, opts);
  return { bytes, parsed: parseManifest(bytes, desc.mediaType, opts.what ?? `manifest ${desc.digest}`) };
}

/** What a descriptor points at: an index's manifests, a manifest's config and layers; nothing for a blob. */
export async function successors(src: Fetcher, desc: Descriptor, opts: OpOptions = {}): Promise<Descriptor[]> {
  return isManifestDescriptor(desc) ? childrenOf((await readManifest(src, desc, opts)).parsed) : [];
}

export interface WalkOptions extends OpOptions {
  /**
   * Called for every descriptor reached, the root first, before its children; `parent` is
   * undefined for the root. Return true to descend into a manifest's children (ignored for blobs):
   * a visitor that has seen a digest before returns false.
   */
  visit(desc: Descriptor, parent: Descriptor | undefined): boolean | Promise<boolean>;
  /** Called for a manifest descended into, after all its children were walked (copy pushes it then). */
  leave?(desc: Descriptor, node: ManifestNode): void | Promise<void>;
  /** Narrow an index's children (platform filtering); an image manifest's children are always all walked. */
  selectChildren?(parent: Descriptor, children: Descriptor[]): Descriptor[];
  /** Walk a manifest's children at the same time (network sources) rather than one by one in document order. */
  concurrent?: boolean;
  /**
   * A manifest that cannot be read or parsed: with this, it is reported here and its children are
   * skipped (verify lists every problem); without, the walk rejects with the error.
   */
  onReadError?(desc: Descriptor, error: Error, parent: Descriptor | undefined): void;
  /** Names the walk's root in read errors, e.g. the image's reference. */
  image?: string;
}

/** Walk the graph under `root` in `src`, reading each manifest descended into through readManifest. */
export async function walkGraph(src: Fetcher, root: Descriptor, opts: WalkOptions): Promise<void> {
  await walkNode(src, root, undefined, opts);
}

async function walkNode(src: Fetcher, desc: Descriptor, parent: Descriptor | undefined, opts: WalkOptions): Promise<void> {
  throwIfAborted(opts.signal);
  if (!(await opts.visit(desc, parent)) || !isManifestDescriptor(desc)) return;
  let node: ManifestNode;
  try {
    node = await readManifest(src, desc, { signal: opts.signal, what: `manifest ${desc.digest}${opts.image ? ` of ${opts.image}` : ''}` });
  } catch (e) {
    if (!opts.onReadError || opts.signal?.aborted) throw e;
    opts.onReadError(desc, e as Error, parent);
    return;
  }
  let children = childrenOf(node.parsed);
  if (node.parsed.kind === 'index' && opts.selectChildren) children = opts.selectChildren(desc, children);
  if (opts.concurrent) {
    const results = await Promise.allSettled(children.map((c) => walkNode(src, c, desc, opts)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } else {
    for (const c of children) await walkNode(src, c, desc, opts);
  }
  await opts.leave?.(desc, node);
}
