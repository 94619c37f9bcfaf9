// A pass-through stream that checks size and digest as bytes flow (oras-go NewVerifyReader):
// more bytes than declared fail at once, fewer or a wrong digest fail at the end. Every sink and
// every source wraps its bytes in one.
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../core/errors.ts';
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
