// Small capability interfaces for content (after oras-go content/storage.go). The registry client,
// the local blob store and the bundle reader implement them; copyGraph moves content between any two.
import type { Readable } from 'node:stream';
import type { Descriptor } from '../core/manifest.ts';

export interface OpOptions {
  signal?: AbortSignal | undefined;
}

export interface Fetcher {
  /**
   * A stream of exactly the descriptor's bytes. Implementations verify while streaming: the stream
   * errors with an IntegrityError on a size or digest mismatch, never ends early without error.
   * Missing content rejects with a NotFoundError (or a RegistryError with status 404).
   */
  fetch(desc: Descriptor, opts?: OpOptions): Promise<Readable>;
}

export interface ReadOnlyStorage extends Fetcher {
  exists(desc: Descriptor, opts?: OpOptions): Promise<boolean>;
  /** Names the storage in errors: a repository, a bundle's path, the cache's folder. */
  readonly label?: string;
}

export interface Pusher {
  /**
   * Store content under its descriptor, verifying size and digest while streaming; nothing
   * half-written is ever visible. Content that already exists counts as success.
   */
  push(desc: Descriptor, content: Readable, opts?: OpOptions): Promise<void>;
}

export interface Storage extends ReadOnlyStorage, Pusher {}

/** Resolves a tag or digest (within a repository already chosen) to a descriptor. */
export interface TagResolver {
  resolve(reference: string, opts?: OpOptions): Promise<Descriptor>;
}

/** Optional: push a manifest and name it with a tag in one step (PUT /manifests/<tag>). */
export interface ReferencePusher {
  pushReference(desc: Descriptor, content: Uint8Array, reference: string, opts?: OpOptions): Promise<void>;
}

/** Receives a blob's bytes in order; `position` is the offset of `chunks[0]` in the blob. */
export type ChunkSink = (chunks: Buffer[], position: number) => Promise<void>;

/** Optional: hand a blob's verified bytes to a sink (a local store's fast path into a bundle). */
export interface Feeder {
  feed(desc: Descriptor, sink: ChunkSink, opts?: OpOptions): Promise<void>;
}

export function isFeeder(x: object): x is Feeder {
  return typeof (x as Partial<Feeder>).feed === 'function';
}

/** Optional: raw, unverified bytes from an offset on — for resuming an interrupted download. */
export interface RangeFetcher {
  fetchFrom(desc: Descriptor, offset: number, opts?: OpOptions): Promise<Readable>;
}

/**
 * Receives a blob's bytes as they arrive. The chunk's memory is reused once the call returns, so
 * keep nothing of it (copy what must outlive the call). A returned promise makes the source wait
 * until it settles; a throw or rejection ends the transfer with that error.
 */
export type TransientSink = (chunk: Buffer) => void | Promise<void>;

/** A download whose first answer has arrived, its bytes not yet taken. */
export interface PumpedBody {
  /** Hand every byte (from the offset asked for to the end) to `sink`; resolves when all arrived. Call once. */
  pump(sink: TransientSink): Promise<void>;
  /** Stop: the connection is closed and pump() rejects. */
  cancel(): void;
}

/**
 * Optional: raw, unverified bytes from an offset on, pumped into a sink through reused buffers (the
 * registry's fast path for downloads: no stream, no Buffer per read). A missing blob or refusing
 * source rejects `openFrom` itself.
 */
export interface RangePumper {
  openFrom(desc: Descriptor, offset: number, opts?: OpOptions): Promise<PumpedBody>;
}

export function isRangePumper(x: object): x is RangePumper {
  return typeof (x as Partial<RangePumper>).openFrom === 'function';
}

/** Optional: make a blob that exists elsewhere on the same registry appear here without upload. */
export interface Mounter {
  /** True when mounted; false when the registry asked for an upload instead. */
  mount(desc: Descriptor, fromRepository: string, opts?: OpOptions): Promise<boolean>;
}

export function isReferencePusher(x: object): x is ReferencePusher {
  return typeof (x as Partial<ReferencePusher>).pushReference === 'function';
}

export function isRangeFetcher(x: object): x is RangeFetcher {
  return typeof (x as Partial<RangeFetcher>).fetchFrom === 'function';
}

export function isMounter(x: object): x is Mounter {
  return typeof (x as Partial<Mounter>).mount === 'function';
}
