// The --chunk-size syntax and what a run learns from 413s: table tests.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChunkPolicy, DEFAULT_CHUNK_SIZE, chunkSizeOption, parseChunkSize } from '../../src/registry/transfer-chunks.ts';
import { rangeEnd } from '../../src/registry/blob-upload-chunked.ts';
import { UsageError } from '../../src/core/errors.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('chunk sizes', () => {
  test('sizes with binary and decimal units', () => {
    const cases: Array<[string, number]> = [
      ['8MiB', 8 * MiB],
      ['8M', 8 * MiB],
      ['512KiB', 512 * KiB],
      ['512k', 512 * KiB],
      ['10MB', 10_000_000],
      ['1GiB', 1024 * MiB],
      ['1048576', MiB],
      [' 2 MiB ', 2 * MiB],
      ['1.5M', 1.5 * MiB],
    ];
    for (const [text, bytes] of cases) assert.equal(parseChunkSize(text), bytes, text);
    assert.equal(chunkSizeOption(undefined), undefined);
    assert.equal(chunkSizeOption(MiB), MiB);
  });

  test('what is not a size, or outside 64 KiB to 1 GiB, is refused with the reason', () => {
    const cases: Array<[string | number, RegExp]> = [
      ['8 parsecs', /chunk size: "8 parsecs" is not a size/],
      ['-1M', /is not a size/],
      ['', /is not a size/],
      ['1k', /chunk size must be from 64\.0 KiB to 1\.0 GiB, got 1\.0 KiB/],
      ['2GiB', /must be from 64\.0 KiB to 1\.0 GiB, got 2\.0 GiB/],
      [100, /got 100 B/],
      [Number.NaN, /got NaN/],
    ];
    for (const [value, message] of cases) {
      assert.throws(
        () => chunkSizeOption(value),
        (e: unknown) => e instanceof UsageError && e.code === 'CHUNK_SIZE_INVALID' && message.test(e.message),
        String(value),
      );
    }
  });

  test('a 413 teaches a power of two, halved on each further 413, per registry, down to 64 KiB', () => {
    const p = new ChunkPolicy(undefined);
    assert.equal(p.sizeFor('a'), undefined);
    assert.deepEqual(p.refused('a', 100 * MiB), { size: DEFAULT_CHUNK_SIZE, first: true });
    assert.deepEqual(p.refused('a', 8 * MiB), { size: 4 * MiB, first: false });
    assert.deepEqual(p.refused('a', 4 * MiB), { size: 2 * MiB, first: false });
    assert.equal(p.sizeFor('a'), 2 * MiB);
    // A late 413 for a larger body (an upload that began before) teaches nothing new.
    assert.deepEqual(p.refused('a', 5 * MiB), { size: 2 * MiB, first: false });
    assert.equal(p.sizeFor('b'), undefined);
    assert.deepEqual(p.refused('b', 5_000_000), { size: 2 * MiB, first: true });
    assert.deepEqual(p.refused('c', 128 * KiB), { size: 64 * KiB, first: true });
    assert.deepEqual(p.refused('c', 64 * KiB), { size: undefined, first: false });
    // A registry's OCI-Chunk-Min-Length is a floor too.
    assert.deepEqual(p.refused('d', 4 * MiB, 3 * MiB), { size: undefined, first: true });
  });

  test('a configured size holds until a 413 teaches a smaller one', () => {
    const p = new ChunkPolicy(16 * MiB);
    assert.equal(p.sizeFor('a'), 16 * MiB);
    assert.deepEqual(p.refused('a', 16 * MiB), { size: 8 * MiB, first: true });
    assert.equal(p.sizeFor('a'), 8 * MiB);
    assert.equal(p.sizeFor('b'), 16 * MiB);
  });

  test('Range answers of upload sessions', () => {
    assert.equal(rangeEnd('0-1023'), 1023);
    assert.equal(rangeEnd('bytes=0-99'), 99);
    assert.equal(rangeEnd('0-0'), 0);
    assert.equal(rangeEnd(undefined), undefined);
    assert.equal(rangeEnd('5-10'), undefined);
    assert.equal(rangeEnd('0-x'), undefined);
  });
});
