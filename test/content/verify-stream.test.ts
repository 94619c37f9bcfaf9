import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { IntegrityError } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import { VerifyStream, readAllLimited, type VerifyTarget } from '../../src/content/verify-stream.ts';

const WHAT = 'blob sha256:… of 127.0.0.1/app';

/** Pipe chunks through a VerifyStream; resolves to what came out. */
async function through(chunks: Buffer[], target: VerifyTarget, prefix?: ConstructorParameters<typeof VerifyStream>[2]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    new VerifyStream(target, WHAT, prefix),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

function split(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let last = 0;
  for (const p of [...points, data.length]) {
    parts.push(data.subarray(last, p));
    last = p;
  }
  return parts.filter((p) => p.length > 0);
}

const data = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(100));
const target: VerifyTarget = { digest: digestOf(data), size: data.length };

describe('VerifyStream', () => {
  test('exact content passes through unchanged, in any chunking', async () => {
    assert.deepEqual(await through([data], target), data);
    assert.deepEqual(await through(split(data, [1, 7, 512, 3000]), target), data);
  });

  test('empty content with the empty digest passes', async () => {
    assert.deepEqual(await through([], { digest: digestOf(''), size: 0 }), Buffer.alloc(0));
  });

  test('sha512 targets are verified with sha512', async () => {
    assert.deepEqual(await through([data], { digest: digestOf(data, 'sha512'), size: data.length }), data);
  });

  test('short content fails at the end: truncated, with counts', async () => {
    await assert.rejects(through([data.subarray(0, 100)], target), (e: unknown) => {
      assert.ok(e instanceof IntegrityError);
      assert.equal(e.code, 'SIZE_MISMATCH');
      assert.equal(e.message, `${WHAT}: truncated, got 100 of ${data.length} bytes`);
      return true;
    });
  });

  test('long content fails as soon as it passes the size, without reading the rest', async () => {
    let produced = 0;
    const endless = Readable.from(
      (function* () {
        for (;;) {
          produced++;
          yield Buffer.alloc(1024, 1);
        }
      })(),
    );
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    await assert.rejects(pipeline(endless, new VerifyStream({ digest: digestOf('x'), size: 4096 }, WHAT), sink), {
      name: 'IntegrityError',
      code: 'SIZE_MISMATCH',
      message: `${WHAT}: more than the expected 4096 bytes`,
    });
    assert.ok(produced < 64, `stopped early (read ${produced} chunks)`);
  });

  test('the right size with the wrong bytes fails with both digests', async () => {
    const wrong = Buffer.from(data);
    wrong[500] = 0;
    await assert.rejects(through([wrong], target), (e: unknown) => {
      assert.ok(e instanceof IntegrityError);
      assert.equal(e.code, 'DIGEST_MISMATCH');
      assert.equal(e.message, `${WHAT}: digest mismatch, expected ${target.digest}, got ${digestOf(wrong)}`);
      return true;
    });
  });

  test('resume: a digester fed with the first bytes verifies the rest', async () => {
    const hash = createHash('sha256').update(data.subarray(0, 1000));
    const rest = await through([data.subarray(1000)], target, { hash, bytes: 1000 });
    assert.deepEqual(rest, data.subarray(1000));
  });

  test('resume: a prefix that differs from the real start fails the digest', async () => {
    const hash = createHash('sha256').update(Buffer.alloc(1000));
    await assert.rejects(through([data.subarray(1000)], target, { hash, bytes: 1000 }), { code: 'DIGEST_MISMATCH' });
  });

  test('resume: prefix and rest together shorter or longer than the size fail', async () => {
    const short = createHash('sha256').update(data.subarray(0, 1000));
    await assert.rejects(through([data.subarray(1000, 2000)], target, { hash: short, bytes: 1000 }), {
      message: `${WHAT}: truncated, got 2000 of ${data.length} bytes`,
    });
    const long = createHash('sha256').update(data.subarray(0, 1000));
    await assert.rejects(through([data.subarray(999)], target, { hash: long, bytes: 1000 }), { code: 'SIZE_MISMATCH', message: /more than/ });
  });

  test('resume: a prefix already past the size fails even with nothing after it', async () => {
    const hash = createHash('sha256').update(data);
    await assert.rejects(through([], { digest: digestOf(data.subarray(0, 10)), size: 10 }, { hash, bytes: data.length }), {
      code: 'SIZE_MISMATCH',
      message: `${WHAT}: more than the expected 10 bytes`,
    });
  });

  test('property: any chunking of the exact bytes passes; truncation, extension or one changed byte fails', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 2000 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.nat(),
        fc.constantFrom('cut', 'extend', 'flip'),
        async (bytes, cuts, at, how) => {
          const buf = Buffer.from(bytes);
          const t: VerifyTarget = { digest: digestOf(buf), size: buf.length };
          assert.deepEqual(await through(split(buf, cuts), t), buf);
          const i = at % buf.length;
          const bad =
            how === 'cut' ? buf.subarray(0, i) : how === 'extend' ? Buffer.concat([buf, Buffer.from([i % 256])]) : Buffer.from(buf.map((b, j) => (j === i ? b ^ 0xff : b)));
          await assert.rejects(
            through(split(bad, cuts), t),
            (e: unknown) => e instanceof IntegrityError && e.code === (how === 'flip' ? 'DIGEST_MISMATCH' : 'SIZE_MISMATCH') && e.message.startsWith(`${WHAT}: `),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('readAllLimited', () => {
  test('joins chunks of Buffers and Uint8Arrays', async () => {
    const got = await readAllLimited(Readable.from([Buffer.from('ab'), new Uint8Array([99, 100])]), 10, 'manifest');
    assert.equal(got.toString(), 'abcd');
  });

  test('exactly the limit is fine; one byte more is refused naming the content', async () => {
    assert.equal((await readAllLimited(Readable.from([Buffer.alloc(5), Buffer.alloc(5)]), 10, 'm')).length, 10);
    await assert.rejects(readAllLimited(Readable.from([Buffer.alloc(5), Buffer.alloc(6)]), 10, 'manifest of app:1'), {
      name: 'IntegrityError',
      code: 'MANIFEST_TOO_LARGE',
      message: 'manifest of app:1: larger than the 10-byte limit',
    });
  });
});
