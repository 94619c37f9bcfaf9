import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { IntegrityError, UsageError } from '../../src/core/errors.ts';
import {
  type Digest,
  createDigester,
  digestAlgorithm,
  digestEncoded,
  digestOf,
  isDigest,
  parseDigest,
  verifyBytes,
} from '../../src/core/digest.ts';

// Known answers: the digests of the empty string (FIPS 180-4 test vectors).
const EMPTY256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const EMPTY512 =
  'sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e';
// The OCI empty descriptor's content `{}`.
const EMPTY_JSON = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

describe('parseDigest', () => {
  for (const good of [EMPTY256, EMPTY512, `sha256:${'0'.repeat(64)}`, `sha512:${'a'.repeat(128)}`]) {
    test(`accepts ${good.slice(0, 20)}…`, () => {
      assert.equal(parseDigest(good), good);
      assert.equal(isDigest(good), true);
    });
  }

  const bad: [string, RegExp][] = [
    ['', /expected sha256:<64 hex> or sha512:<128 hex>/],
    ['e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', /expected sha256/],
    ['sha256', /expected sha256/],
    ['sha256:', /sha256 needs 64 lowercase hex/],
    [`sha256:${'f'.repeat(63)}`, /sha256 needs 64 lowercase hex/],
    [`sha256:${'f'.repeat(65)}`, /sha256 needs 64 lowercase hex/],
    [`sha256:${'F'.repeat(64)}`, /sha256 needs 64 lowercase hex/],
    [`sha256:${'g'.repeat(64)}`, /sha256 needs 64 lowercase hex/],
    [`sha256:${'f'.repeat(128)}`, /sha256 needs 64 lowercase hex/],
    [`sha512:${'f'.repeat(64)}`, /sha512 needs 128 lowercase hex/],
    [`SHA256:${'f'.repeat(64)}`, /expected sha256/],
    [`sha384:${'f'.repeat(96)}`, /expected sha256/],
    [`md5:${'f'.repeat(32)}`, /expected sha256/],
    [` sha256:${'f'.repeat(64)}`, /expected sha256/],
    [`sha256:${'f'.repeat(64)} `, /sha256 needs/],
    [`sha256:${'f'.repeat(64)}\n`, /sha256 needs/],
    [`sha256+b64:${'f'.repeat(64)}`, /expected sha256/],
  ];
  for (const [input, why] of bad) {
    test(`refuses ${JSON.stringify(input).slice(0, 40)}`, () => {
      assert.equal(isDigest(input), false);
      assert.throws(
        () => parseDigest(input, 'digest in airlock.lock'),
        (e: unknown) => {
          assert.ok(e instanceof UsageError);
          assert.equal(e.code, 'DIGEST_INVALID');
          assert.match(e.message, why);
          assert.ok(e.message.includes(`invalid digest in airlock.lock "${input}"`), e.message);
          return true;
        },
      );
    });
  }
});

describe('digest helpers', () => {
  test('digestOf computes sha256 by default and sha512 on request', () => {
    assert.equal(digestOf(new Uint8Array()), EMPTY256);
    assert.equal(digestOf(''), EMPTY256);
    assert.equal(digestOf(Buffer.alloc(0), 'sha512'), EMPTY512);
    assert.equal(digestOf('{}'), EMPTY_JSON);
  });

  test('algorithm and encoded parts', () => {
    assert.equal(digestAlgorithm(EMPTY512 as Digest), 'sha512');
    assert.equal(digestEncoded(EMPTY256 as Digest), EMPTY256.slice(7));
  });

  test('createDigester streams to the same digest as digestOf', () => {
    const h = createDigester('sha512');
    h.update('a');
    h.update('bc');
    assert.equal(`sha512:${h.digest('hex')}`, digestOf('abc', 'sha512'));
  });
});

describe('verifyBytes', () => {
  const bytes = Buffer.from('hello, airlock\n');
  const digest = digestOf(bytes);

  test('passes exact bytes, with or without a size', () => {
    verifyBytes(bytes, { digest, size: bytes.length }, 'config');
    verifyBytes(bytes, { digest }, 'config');
    verifyBytes(bytes, { digest: digestOf(bytes, 'sha512'), size: bytes.length }, 'config');
  });

  test('a wrong size fails first, naming the content and both sizes', () => {
    assert.throws(
      () => verifyBytes(bytes, { digest, size: bytes.length + 1 }, 'config of nginx'),
      (e: unknown) =>
        e instanceof IntegrityError &&
        e.code === 'SIZE_MISMATCH' &&
        e.exitCode === 5 &&
        e.message === `config of nginx: expected ${bytes.length + 1} bytes, got ${bytes.length}`,
    );
  });

  test('a wrong digest fails, naming expected and actual digests', () => {
    const other = digestOf('something else');
    assert.throws(
      () => verifyBytes(bytes, { digest: other, size: bytes.length }, 'manifest'),
      (e: unknown) =>
        e instanceof IntegrityError &&
        e.code === 'DIGEST_MISMATCH' &&
        e.message.includes(`expected ${other}`) &&
        e.message.includes(`got ${digest}`),
    );
  });

  test('property: digestOf output always parses, verifies, and any one-byte change is caught', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.constantFrom('sha256' as const, 'sha512' as const),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (data, alg, at, delta) => {
          const d = digestOf(data, alg);
          assert.equal(parseDigest(d), d);
          verifyBytes(data, { digest: d, size: data.length }, 'blob');
          const changed = Uint8Array.from(data);
          const i = at % changed.length;
          changed[i] = (changed[i]! + delta) % 256;
          assert.throws(() => verifyBytes(changed, { digest: d, size: data.length }, 'blob'), { code: 'DIGEST_MISMATCH' });
        },
      ),
      { numRuns: 500 },
    );
  });
});
