// A pass-through stream that checks size and digest as bytes flow (oras-go NewVerifyReader):
// more bytes than declared fail at once, fewer or a wrong digest fail at the end. Every sink and
// every source wraps its bytes in one.
import { Transform, type TransformCallback } from 'node:stream';
import { AbortedError, IntegrityError } from '../core/errors.ts';
import { createDigester, digestAlgorithm, type Digest } from '../core/digest.ts';
import type { Hash } from 'node:crypto';

export interface VerifyTarget {
  digest: Digest;
  size: number;
}

export class VerifyStream extends Transform {
  readonly #expected: VerifyTarget;
  readonly #what: string;
  readonly #hash: Hash;
  #seen = 0;

  /**
   * @param what names the content in errors, e.g. "blob sha256:… of docker.io/library/nginx".
   * @param prefix a digester already fed with bytes before this stream (for resumed downloads).
   */
  constructor(expected: VerifyTarget, what: string, prefix?: { hash: Hash; bytes: number }) {
    super();
    this.#expected = expected;
    this.#what = what;
    this.#hash = prefix?.hash ?? createDigester(digestAlgorithm(expected.digest));
    this.#seen = prefix?.bytes ?? 0;
    // With a prefix this stream carries only the tail of the content: not the whole blob.
    if (!prefix) markSelfVerifying(this, expected);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#expected.size) {
      cb(new IntegrityError(`${this.#what}: more than the expected ${this.#expected.size} bytes`, { code: 'SIZE_MISMATCH' }));
      return;
    }
    this.#hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    // A resume prefix alone can already exceed the size when no chunk follows.
    if (this.#seen > this.#expected.size) {
      cb(new IntegrityError(`${this.#what}: more than the expected ${this.#expected.size} bytes`, { code: 'SIZE_MISMATCH' }));
      return;
    }
    if (this.#seen !== this.#expected.size) {
      cb(new IntegrityError(`${this.#what}: truncated, got ${this.#seen} of ${this.#expected.size} bytes`, { code: 'SIZE_MISMATCH' }));
      return;
    }
    const actual = `${digestAlgorithm(this.#expected.digest)}:${this.#hash.digest('hex')}`;
    if (actual !== this.#expected.digest) {
      cb(new IntegrityError(`${this.#what}: digest mismatch, expected ${this.#expected.digest}, got ${actual}`, { code: 'DIGEST_MISMATCH' }));
      return;
    }
    cb();
  }
}

/**
 * Streams that verify themselves: they end only when their bytes matched the digest and size,
 * and fail with an IntegrityError otherwise. A sink handed one (an upload) need not hash the same
 * bytes a second time; it must still wait for the stream's end before it reports success.
 */
const selfVerifying = new WeakMap<object, VerifyTarget>();

export function markSelfVerifying<T extends object>(stream: T, target: VerifyTarget): T {
  selfVerifying.set(stream, { digest: target.digest, size: target.size });
  return stream;
}

/** Does `stream` verify its whole content against exactly this digest and size? */
export function isSelfVerifying(stream: object, target: VerifyTarget): boolean {
  const t = selfVerifying.get(stream);
  return t !== undefined && t.digest === target.digest && t.size === target.size;
}

/** Destroy `stream` with an AbortedError when `signal` fires (now, if it already has); forgets the signal once the stream closes. */
export function destroyOnAbort(stream: { destroy(e: Error): unknown; once(event: 'close', fn: () => void): unknown }, signal: AbortSignal | undefined): void {
  if (!signal) return;
  const onAbort = (): void => {
    stream.destroy(new AbortedError('interrupted', { cause: signal.reason }));
  };
  if (signal.aborted) onAbort();
  else {
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
}

/** Read a small stream (a manifest) into memory, refusing more than `limit` bytes. */
export async function readAllLimited(stream: AsyncIterable<Buffer | Uint8Array>, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of stream) {
    total += c.length;
    if (total > limit) throw new IntegrityError(`${what}: larger than the ${limit}-byte limit`, { code: 'MANIFEST_TOO_LARGE' });
    chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  }
  return Buffer.concat(chunks, total);
}
