// Content digests (OCI image spec, descriptor.md#digests): `algorithm:encoded`.
// sha256 and sha512 are the registered algorithms; both are accepted everywhere.
import { createHash, type Hash } from 'node:crypto';
import { IntegrityError, UsageError } from './errors.ts';

export type DigestAlgorithm = 'sha256' | 'sha512';
/** A validated digest string, e.g. `sha256:6c3c…`. Produced only by parseDigest/digestOf. */
export type Digest = `${DigestAlgorithm}:${string}`;

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const HEX = /^[a-f0-9]+$/;

export function isDigestAlgorithm(s: string): s is DigestAlgorithm {
  return s === 'sha256' || s === 'sha512';
}

/** Parse and validate a digest; throws UsageError naming `what` (e.g. "digest in airlock.lock"). */
export function parseDigest(input: string, what = 'digest'): Digest {
  const i = input.indexOf(':');
  const algorithm = i < 0 ? '' : input.slice(0, i);
  const encoded = i < 0 ? '' : input.slice(i + 1);
  if (!isDigestAlgorithm(algorithm)) {
    throw new UsageError(`invalid ${what} "${input}": expected sha256:<64 hex> or sha512:<128 hex>`, {
      code: 'DIGEST_INVALID',
    });
  }
  if (encoded.length !== ENCODED_LENGTH[algorithm] || !HEX.test(encoded)) {
    throw new UsageError(
      `invalid ${what} "${input}": ${algorithm} needs ${ENCODED_LENGTH[algorithm]} lowercase hex characters`,
      { code: 'DIGEST_INVALID' },
    );
  }
  return input as Digest;
}

export function isDigest(input: string): input is Digest {
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

export function digestAlgorithm(d: Digest): DigestAlgorithm {
  return d.slice(0, d.indexOf(':')) as DigestAlgorithm;
}

export function digestEncoded(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

export function createDigester(algorithm: DigestAlgorithm = 'sha256'): Hash {
  return createHash(algorithm);
}

/** Digest of bytes held in memory (manifests, configs — never whole layers). */
export function digestOf(bytes: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Throw IntegrityError unless `bytes` has exactly `expected` digest and (if given) size. */
export function verifyBytes(bytes: Uint8Array, expected: { digest: Digest; size?: number }, what: string): void {
  if (expected.size !== undefined && bytes.byteLength !== expected.size) {
    throw new IntegrityError(`${what}: expected ${expected.size} bytes, got ${bytes.byteLength}`, {
      code: 'SIZE_MISMATCH',
    });
  }
  const actual = digestOf(bytes, digestAlgorithm(expected.digest));
  if (actual !== expected.digest) {
    throw new IntegrityError(`${what}: digest mismatch, expected ${expected.digest}, got ${actual}`, {
      code: 'DIGEST_MISMATCH',
    });
  }
}
