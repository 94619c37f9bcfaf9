import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FileStore } from '../../src/content/file-store.ts';
import { ExitCode, IntegrityError, NetworkError } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import type { Descriptor } from '../../src/core/manifest.ts';
import type { Fetcher, RangeFetcher } from '../../src/content/types.ts';
import { readAllLimited } from '../../src/content/verify-stream.ts';

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

function blob(size: number): { desc: Descriptor; bytes: Buffer } {
  const bytes = randomBytes(size);
  return { desc: { mediaType: LAYER, digest: digestOf(bytes), size }, bytes };
}

/** The failure `chunked` simulates, as the store must pass it on. */
const SIMULATED_RESET = { name: 'NetworkError', message: 'connection reset by peer (simulated)' };

/** Stream `bytes` in 64 KiB chunks; with `failAt`, error with a NetworkError after that many bytes. */
function chunked(bytes: Buffer, failAt?: number): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    for (let off = 0; off < bytes.length; off += 65536) {
      const end = Math.min(off + 65536, bytes.length, failAt ?? Infinity);
      if (end > off) yield bytes.subarray(off, end);
      if (failAt !== undefined && end >= failAt) throw new NetworkError('connection reset by peer (simulated)');
      await new Promise((r) => setImmediate(r));
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

/** A source like a registry: fetch (whole) and fetchFrom (ranges), with call logs. */
function source(bytes: Buffer, opts: { failFirstAt?: number; ranges?: boolean } = {}) {
  const calls: string[] = [];
  let failed = false;
  // The first request of either kind breaks at failFirstAt, when given.
  const body = (offset: number): Readable => {
    if (opts.failFirstAt !== undefined && !failed) {
      failed = true;
      return chunked(bytes.subarray(offset), opts.failFirstAt - offset);
    }
    return chunked(bytes.subarray(offset));
  };
  const fetch: Fetcher['fetch'] = async () => {
    calls.push('fetch');
    return body(0);
  };
  const fetchFrom: RangeFetcher['fetchFrom'] = async (_d, offset) => {
    calls.push(`fetchFrom ${offset}`);
    return body(offset);
  };
  return { calls, src: opts.ranges === false ? { fetch } : { fetch, fetchFrom } };
}

describe('FileStore', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-filestore-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const freshStore = async (): Promise<FileStore> => new FileStore(await mkdtemp(join(dir, 's-')));
  const files = async (s: FileStore, d: Descriptor): Promise<string[]> =>
    readdir(join(s.path(d), '..')).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw e;
    });

  test('push stores the blob at blobs/<alg>/<hex>; fetch and exists see it', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(300_000);
    assert.equal(await s.exists(desc), false);
    await s.push(desc, chunked(bytes));
    assert.equal(s.path(desc), join(s.root, 'blobs', 'sha256', desc.digest.slice(7)));
    assert.deepEqual(await readFile(s.path(desc)), bytes);
    assert.equal(await s.exists(desc), true);
    assert.equal(await s.exists({ ...desc, size: desc.size + 1 }), false, 'a wrong size is not the same content');
    assert.deepEqual(await readAllLimited(await s.fetch(desc), 1e6, 't'), bytes);
    assert.deepEqual(await files(s, desc), [desc.digest.slice(7)], 'no temp files left');
  });

  test('push of content that does not match its digest fails and leaves nothing', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(200_000);
    const wrong = Buffer.from(bytes);
    wrong[150_000]! ^= 0xff;
    await assert.rejects(s.push(desc, chunked(wrong)), (e: unknown) => e instanceof IntegrityError && /digest mismatch/.test(e.message));
    await assert.rejects(s.push(desc, chunked(bytes.subarray(0, 1000))), (e: unknown) => e instanceof IntegrityError && /truncated/.test(e.message));
    assert.equal(await s.exists(desc), false);
    assert.deepEqual(await files(s, desc), [], 'no blob and no temp file');
  });

  test('push of content already present succeeds without reading the input', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(1000);
    await s.push(desc, chunked(bytes));
    const input = chunked(Buffer.alloc(1000));
    await s.push(desc, input);
    assert.equal(input.destroyed, true);
    assert.deepEqual(await readFile(s.path(desc)), bytes);
  });

  test('fetch: a missing blob is NotFound; a blob damaged on disk fails the stream', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(100_000);
    await assert.rejects(s.fetch(desc), { name: 'NotFoundError', code: 'BLOB_UNKNOWN', exitCode: ExitCode.notFound, message: new RegExp(`blob ${desc.digest} is not in the store`) });
    await s.push(desc, chunked(bytes));
    const damaged = Buffer.from(bytes);
    damaged[5]! ^= 1;
    await writeFile(s.path(desc), damaged);
    await assert.rejects(readAllLimited(await s.fetch(desc), 1e6, 't'), (e: unknown) => e instanceof IntegrityError && e.message.includes(desc.digest));
    await writeFile(s.path(desc), bytes.subarray(0, 10));
    await assert.rejects(s.fetch(desc), (e: unknown) => e instanceof IntegrityError && /10 bytes on disk, expected 100000/.test(e.message));
  });

  test('ingest resumes an interrupted download from its partial file', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(1_000_000);
    const { calls, src } = source(bytes, { failFirstAt: 400_000 });
    let reported = 0;
    await assert.rejects(s.ingest(desc, src, { onBytes: (n) => (reported += n) }), SIMULATED_RESET);
    // Named by this process: another process sharing the cache never writes into it.
    const partial = `${s.path(desc)}.${process.pid}.partial`;
    const kept = (await stat(partial)).size;
    // What was still buffered in the pipeline when the connection broke is lost; the rest is kept.
    assert.ok(kept > 0 && kept <= 400_000, `partial holds ${kept} bytes`);
    assert.deepEqual(await readFile(partial), bytes.subarray(0, kept), 'the partial is a prefix of the blob');
    assert.equal(await s.exists(desc), false);

    reported = 0;
    await s.ingest(desc, src, { onBytes: (n) => (reported += n) });
    // Raw ranges from the start too: the store hashes every byte itself, once.
    assert.deepEqual(calls, ['fetchFrom 0', `fetchFrom ${kept}`], 'the second attempt asks only for the rest');
    assert.equal(reported, desc.size, 'progress of the resumed call adds up to the blob size');
    assert.deepEqual(await readFile(s.path(desc)), bytes);
    await assert.rejects(stat(partial), { code: 'ENOENT' });
  });

  test('ingest starts over when the source cannot fetch ranges', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(500_000);
    const { calls, src } = source(bytes, { failFirstAt: 200_000, ranges: false });
    await assert.rejects(s.ingest(desc, src), SIMULATED_RESET);
    await s.ingest(desc, src);
    assert.deepEqual(calls, ['fetch', 'fetch']);
    assert.deepEqual(await readFile(s.path(desc)), bytes);
  });

  test('ingest: a .partial holding wrong bytes fails verification, is removed, and the next ingest succeeds', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(300_000);
    const partial = `${s.path(desc)}.partial`;
    await mkdir(join(partial, '..'), { recursive: true });
    await writeFile(partial, randomBytes(100_000));
    const { src } = source(bytes);
    await assert.rejects(s.ingest(desc, src), (e: unknown) => e instanceof IntegrityError && /digest mismatch/.test(e.message));
    await assert.rejects(stat(partial), { code: 'ENOENT' });
    await s.ingest(desc, src);
    assert.deepEqual(await readFile(s.path(desc)), bytes);
  });

  test('ingest: a complete .partial is verified and moved into place without fetching; a refused range starts over', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(200_000);
    const partial = `${s.path(desc)}.partial`;
    await mkdir(join(partial, '..'), { recursive: true });
    await writeFile(partial, bytes);
    const { calls, src } = source(bytes);
    await s.ingest(desc, src);
    assert.deepEqual(calls, [], 'nothing fetched');
    assert.deepEqual(await readFile(s.path(desc)), bytes);

    // What an earlier run left is found by the next run's store (a store reads its folder once).
    const other = blob(200_000);
    await writeFile(`${s.path(other.desc)}.partial`, other.bytes.subarray(0, 50_000));
    const fetched: string[] = [];
    const later = new FileStore(s.root);
    await later.ingest(other.desc, {
      fetch: async () => {
        fetched.push('fetch');
        return chunked(other.bytes);
      },
      fetchFrom: async () => {
        fetched.push('fetchFrom');
        throw new IntegrityError('HTTP 416: range not satisfiable (simulated)');
      },
    });
    assert.deepEqual(fetched, ['fetchFrom', 'fetch']);
    assert.deepEqual(await readFile(later.path(other.desc)), other.bytes);
  });

  test('concurrent ingests of one digest share a single download', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(800_000);
    const { calls, src } = source(bytes);
    await Promise.all([s.ingest(desc, src), s.ingest(desc, src), new FileStore(s.root).ingest(desc, src)]);
    assert.deepEqual(calls, ['fetchFrom 0']);
    assert.deepEqual(await readFile(s.path(desc)), bytes);
  });

  test('an aborted ingest rejects with AbortedError and keeps its partial bytes for later', async () => {
    const s = await freshStore();
    // Several write batches (1 MiB each), so the abort lands mid-blob.
    const { desc, bytes } = blob(8_000_000);
    const ac = new AbortController();
    let seen = 0;
    const { src } = source(bytes);
    await assert.rejects(
      s.ingest(desc, src, {
        signal: ac.signal,
        onBytes: (n) => {
          seen += n;
          if (seen >= 500_000) ac.abort();
        },
      }),
      { name: 'AbortedError', code: 'ABORTED', exitCode: ExitCode.interrupted },
    );
    const kept = (await stat(`${s.path(desc)}.${process.pid}.partial`)).size;
    assert.ok(kept > 0 && kept < desc.size, `partial has ${kept} bytes`);
    await s.ingest(desc, src);
    assert.deepEqual(await readFile(s.path(desc)), bytes);
  });

  /** A sink that rebuilds the blob from positioned chunks (a restart overwrites). */
  function collector(size: number) {
    const got = Buffer.alloc(size);
    const sink = async (chunks: Buffer[], position: number): Promise<void> => {
      for (const c of chunks) {
        c.copy(got, position);
        position += c.length;
      }
    };
    return { got, sink };
  }

  test('ingest with `also`: the sink gets every byte in order, a resumed prefix included', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(3_000_000);
    const { src } = source(bytes, { failFirstAt: 1_500_000 });
    await assert.rejects(s.ingest(desc, src, { also: collector(desc.size).sink }), SIMULATED_RESET);
    const c = collector(desc.size);
    let resumed = 0;
    await s.ingest(desc, src, { also: c.sink, onBytes: (n, r) => (resumed += r ? n : 0) });
    assert.ok(resumed > 0, 'the second call resumed');
    assert.deepEqual(c.got, bytes);
    assert.deepEqual(await readFile(s.path(desc)), bytes);
  });

  test('ingest with `also` of a stored blob feeds it from disk; a damaged copy is fetched again', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(2_500_000);
    const { calls, src } = source(bytes);
    await s.ingest(desc, src);
    const c = collector(desc.size);
    await s.ingest(desc, src, { also: c.sink });
    assert.deepEqual(calls, ['fetchFrom 0'], 'fed from the store, not fetched');
    assert.deepEqual(c.got, bytes);

    const damaged = Buffer.from(bytes);
    damaged[2_000_000]! ^= 1;
    await writeFile(s.path(desc), damaged);
    const again = collector(desc.size);
    await s.ingest(desc, src, { also: again.sink });
    assert.deepEqual(calls, ['fetchFrom 0', 'fetchFrom 0'], 'the damaged copy is fetched again');
    assert.deepEqual(again.got, bytes, 'the sink ends up with the right bytes');
    assert.deepEqual(await readFile(s.path(desc)), bytes, 'and so does the store');
  });

  test('feed: verified bytes in order; a damaged blob fails, named, and is removed from the store', async () => {
    const s = await freshStore();
    const { desc, bytes } = blob(1_500_000);
    await s.ingest(desc, source(bytes).src);
    const c = collector(desc.size);
    await s.feed(desc, c.sink);
    assert.deepEqual(c.got, bytes);
    const damaged = Buffer.from(bytes);
    damaged[10]! ^= 1;
    await writeFile(s.path(desc), damaged);
    await assert.rejects(s.feed(desc, collector(desc.size).sink), (e: unknown) => e instanceof IntegrityError && e.message.includes(desc.digest) && /fetches it again/.test(e.hint ?? ''));
    assert.equal(await s.exists(desc), false);
    await assert.rejects(s.feed(desc, c.sink), { name: 'NotFoundError', code: 'BLOB_UNKNOWN', exitCode: ExitCode.notFound });
  });
});
