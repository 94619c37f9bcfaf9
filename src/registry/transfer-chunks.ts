// Chunked uploads (distribution spec "pushing a blob in chunks"): the `--chunk-size` setting and
// its syntax, and what a run learns about each registry's body-size limit. A registry (or a
// reverse proxy in front of it) that answers 413 to a monolithic upload gets chunks from then on,
// halved on every further 413, for every later blob of the run: each registry is taught once.
import { formatBytes } from '../core/bytes.ts';
import { UsageError } from '../core/errors.ts';

/**
 * The first chunk size tried after a 413. 8 MiB keeps memory at 8 MiB per upload in flight (a
 * chunk is held until the registry acknowledges it, so a broken request is sent again without
 * going back to the source) and a round trip per 8 MiB costs nothing measurable; a tighter limit
 * (nginx's default client_max_body_size is 1 MiB) is found by halving, four 413s at most.
 */
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

/** No registry limit is this tight; below it, chunked uploads would be request overhead only. */
export const MIN_CHUNK_SIZE = 64 * 1024;

/** Held in memory per upload in flight: a chunk larger than this would be a memory hazard. */
export const MAX_CHUNK_SIZE = 1024 * 1024 * 1024;

/**
 * `8MiB`, `512KiB`, `1M`, `10MB`, `1048576`: bytes; K/M/G and KiB/MiB/GiB are powers of 1024,
 * KB/MB/GB of 1000; a bare number is bytes.
 */
export function parseChunkSize(text: string, what = 'chunk size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(i?b)?|(b))?\s*$/i.exec(text);
  if (!m) {
    throw new UsageError(`${what}: "${text}" is not a size`, { code: 'CHUNK_SIZE_INVALID', hint: 'use bytes with an optional unit, e.g. 8MiB, 512KiB or 10MB' });
  }
  const power = ' kmg'.indexOf((m[2] ?? ' ').toLowerCase());
  const decimal = m[3] !== undefined && m[3].toLowerCase() === 'b';
  return checkChunkSize(Math.floor(Number(m[1]) * (decimal ? 1000 : 1024) ** Math.max(0, power)), what);
}

/** A chunk size in bytes, checked: from 64 KiB to 1 GiB. */
export function checkChunkSize(bytes: number, what = 'chunk size'): number {
  if (!Number.isSafeInteger(bytes) || bytes < MIN_CHUNK_SIZE || bytes > MAX_CHUNK_SIZE) {
    throw new UsageError(`${what} must be from ${formatBytes(MIN_CHUNK_SIZE)} to ${formatBytes(MAX_CHUNK_SIZE)}, got ${Number.isFinite(bytes) ? formatBytes(bytes) : String(bytes)}`, {
      code: 'CHUNK_SIZE_INVALID',
    });
  }
  return bytes;
}

/** A caller's setting (bytes, or text such as `8MiB`), checked; undefined stays undefined (monolithic until a 413). */
export function chunkSizeOption(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? parseChunkSize(value) : checkChunkSize(value);
}

/**
 * How blobs are uploaded to each registry of one client: monolithically (one PUT) unless a chunk
 * size was set or a registry refused a body as too large. Shared by every repository of a client.
 */
export class ChunkPolicy {
  readonly #configured: number | undefined;
  /** Registry → the chunk size its 413s taught (smaller than any configured one). */
  readonly #learned = new Map<string, number>();

  constructor(configured: number | undefined) {
    this.#configured = configured;
  }

  /** The chunk size for `registry`; undefined means one monolithic PUT per blob. */
  sizeFor(registry: string): number | undefined {
    return this.#learned.get(registry) ?? this.#configured;
  }

  /**
   * `registry` refused a body of `refusedBytes` with 413: the next chunk size to try, or undefined
   * when none is left (the body was already at most MIN_CHUNK_SIZE, or under the registry's
   * minimum chunk length). `first` tells whether this is the first lesson for that registry.
   */
  refused(registry: string, refusedBytes: number, minChunk = 0): { size: number | undefined; first: boolean } {
    const known = this.#learned.get(registry);
    const first = known === undefined;
    // A monolithic body much larger than the default starts at the default; a chunk is halved,
    // down to a power of two (limits are set in round sizes: nginx's 1m is 1 MiB, accepted whole).
    const candidate = Math.min(DEFAULT_CHUNK_SIZE, 2 ** Math.floor(Math.log2(Math.max(1, refusedBytes / 2))), known ?? Infinity);
    const floor = Math.max(MIN_CHUNK_SIZE, minChunk);
    if (refusedBytes <= floor || candidate < floor) return { size: undefined, first };
    if (known === undefined || candidate < known) this.#learned.set(registry, candidate);
    return { size: this.#learned.get(registry), first };
  }
}
