// Small capability interfaces for content (after oras-go content/storage.go). The registry client,
// the local blob store, the bundle reader and the memory store implement them; copyGraph moves
// content between any two. test/content/storage-contract.ts checks every rule below against each.
//
// Errors, as a caller tells them apart: not found is an AirlockError whose exitCode is 3
// (ExitCode.notFound: a NotFoundError, or a RegistryError for a 404); wrong bytes an IntegrityError;
// an abort an AbortedError. Messages name the content's digest (or the tag asked for).
import type { Readable } from 'node:stream';
import type { Descriptor } from '../core/manifest.ts';

export interface OpOptions {
  /** Already aborted: the call rejects with an AbortedError. Fired later: the call, or the stream it returned, fails with one. */
  signal?: AbortSignal | undefined;
}

export interface Fetcher {
  /**
   * A stream of exactly the descriptor's bytes; it ends only once all of them matched the digest.
   * Bytes that do not match (damaged content, or a descriptor with the wrong size) end in an
   * IntegrityError: fetch rejects with it, or the stream errors with it — never a clean end, never
   * an early one. Missing content rejects with a not-found error (exitCode 3). A signal that fires
   * after fetch resolved destroys the stream with an AbortedError, even if its bytes were buffered.
   */
  fetch(desc: Descriptor, opts?: OpOptions): Promise<Readable>;
}

export interface ReadOnlyStorage extends Fetcher {
  /**
   * True when the content is stored, false when it is not (never a not-found error). Whether a
   * descriptor with the right digest and a wrong size "exists" is left open (registries answer by
   * digest); fetching it fails as above.
   */
  exists(desc: Descriptor, opts?: OpOptions): Promise<boolean>;
  /** Names the storage in errors: a repository, a bundle's path, the cache's folder. */
  readonly label?: string;
}

export interface Pusher {
  /**
   * Store content under its descriptor, verifying size and digest while streaming. Wrong, short or
   * long content rejects with an IntegrityError; a content stream that fails rejects with the
   * stream's own error; an abort with an AbortedError. After any failure nothing is visible:
   * exists() is false and fetch() not found (a registry may keep an unfinished upload session; it
   * purges those itself). Content that already exists counts as success (the input may go unread).
   */
  push(desc: Descriptor, content: Readable, opts?: OpOptions): Promise<void>;
}

export interface Storage extends ReadOnlyStorage, Pusher {}

/**
 * Resolves a tag or digest (within a repository already chosen) to a descriptor. An unknown one
 * rejects with a not-found error (exitCode 3); a malformed tag with a UsageError.
 */
export interface TagResolver {
  resolve(reference: string, opts?: OpOptions): Promise<Descriptor>;
}

/**
 * Optional: push a manifest and name it with a tag in one step (PUT /manifests/<tag>); an existing
 * tag moves. Bytes that do not match the descriptor reject with an IntegrityError, creating nothing.
 */
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
