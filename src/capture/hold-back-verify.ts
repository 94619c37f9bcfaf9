// A blob relayed from an upstream registry to a node: its bytes flow on as they arrive (the node
// need not wait for a whole layer), are hashed on the way, and the last chunk is held back until
// the whole blob matched its digest and size. Wrong bytes end the stream with an IntegrityError
// before that chunk goes out, so the node sees a short body and a cut connection: never the bad
// blob complete. Memory: one chunk, whatever the blob's size.
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../core/errors.ts';
import { createDigester, digestAlgorithm, type Digest } from '../core/digest.ts';
import type { Hash } from 'node:crypto';

export class HoldBackVerify extends Transform {
  readonly #digest: Digest;
  readonly #size: number;
  readonly #what: string;
  readonly #hash: Hash;
  #seen = 0;
  #held: Buffer | undefined;

  constructor(expected: { digest: Digest; size: number }, what: string) {
    super();
    this.#digest = expected.digest;
    this.#size = expected.size;
    this.#what = what;
    this.#hash = createDigester(digestAlgorithm(expected.digest));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#size) {
      cb(new IntegrityError(`${this.#what}: more than the expected ${this.#size} bytes`, { code: 'SIZE_MISMATCH' }));
      return;
    }
    this.#hash.update(chunk);
    const out = this.#held;
    this.#held = chunk;
    cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#seen !== this.#size) {
      cb(new IntegrityError(`${this.#what}: truncated, got ${this.#seen} of ${this.#size} bytes`, { code: 'SIZE_MISMATCH' }));
      return;
    }
    const actual = `${digestAlgorithm(this.#digest)}:${this.#hash.digest('hex')}`;
    if (actual !== this.#digest) {
      cb(new IntegrityError(`${this.#what}: digest mismatch, expected ${this.#digest}, got ${actual}`, { code: 'DIGEST_MISMATCH' }));
      return;
    }
    const last = this.#held;
    this.#held = undefined;
    cb(null, last);
  }
}
