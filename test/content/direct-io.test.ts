// The pack cache is written around the page cache (O_DIRECT) on local disks: exact bytes and sizes
// whatever the blob's size against the 4 KiB alignment, nothing of it left in the page cache, a
// resumable prefix without padding after an interruption, and buffered writes where direct I/O
// means nothing (tmpfs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FileStore } from '../../src/content/file-store.ts';
import { directWorthwhile, SLOT_BYTES, takeSlot, giveSlot } from '../../src/content/direct-io.ts';
import { NetworkError } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import type { Descriptor } from '../../src/core/manifest.ts';

const LAYER = 'application/vnd.oci.image.layer.v1.tar';

function blob(size: number): { desc: Descriptor; bytes: Buffer } {
  const bytes = randomBytes(size);
  return { desc: { mediaType: LAYER, digest: digestOf(bytes), size }, bytes };
}

/** A ranged source handing out the bytes in uneven chunks (7 KiB + 1), optionally breaking once. */
function source(bytes: Buffer, breakAt?: number) {
  let broken = false;
  const calls: number[] = [];
  const stream = (offset: number): Readable => {
    const stop = breakAt !== undefined && !broken ? breakAt : bytes.length;
    broken ||= breakAt !== undefined;
    async function* gen(): AsyncGenerator<Buffer> {
      for (let at = offset; at < stop; at += 7169) yield bytes.subarray(at, Math.min(at + 7169, stop));
      if (stop < bytes.length) throw new NetworkError('connection reset (simulated)');
    }
    return Readable.from(gen(), { objectMode: false });
  };
  return {
    calls,
    src: {
      fetch: async () => stream(0),
      fetchFrom: async (_d: Descriptor, offset: number) => {
        calls.push(offset);
        return stream(offset);
      },
    },
  };
}

/** Bytes of `file` in the page cache (util-linux fincore). */
function cachedBytes(file: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES', file], { encoding: 'utf8' }).trim());
}

function hasFincore(): boolean {
  try {
    execFileSync('fincore', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const SIZES = [0, 1, 4095, 4096, 4097, SLOT_BYTES - 1, SLOT_BYTES, SLOT_BYTES + 1, 2 * SLOT_BYTES + 12_345];

describe('direct-io: the cache written around the page cache', () => {
  let dir: string;
  let disk = false;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-direct-'));
    disk = await directWorthwhile(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('pooled slots are whole, separate, and page-aligned enough for O_DIRECT', () => {
    const a = takeSlot();
    const b = takeSlot();
    assert.equal(a.length, SLOT_BYTES);
    assert.equal(b.length, SLOT_BYTES);
    a.fill(1);
    b.fill(2);
    assert.equal(a[SLOT_BYTES - 1], 1, 'slots do not overlap');
    assert.equal(a.byteOffset % 4096, 0);
    giveSlot(a);
    giveSlot(b);
  });

  test('every size around the alignment is stored exactly, and the sink sees exactly the bytes', async () => {
    const store = new FileStore(join(dir, 'sizes'));
    for (const size of SIZES) {
      const { desc, bytes } = blob(size);
      const seen: Buffer[] = [];
      await store.ingest(desc, source(bytes).src, {
        also: async (chunks, position) => {
          assert.equal(position, seen.reduce((n, c) => n + c.length, 0), `size ${size}: in order`);
          for (const c of chunks) seen.push(Buffer.from(c));
        },
      });
      const stored = await readFile(store.path(desc));
      assert.equal(stored.length, size, `size ${size}: file size`);
      assert.ok(stored.equals(bytes), `size ${size}: file bytes`);
      assert.ok(Buffer.concat(seen).equals(bytes), `size ${size}: sink bytes`);
    }
  });

  test('on a local disk, a downloaded blob does not stay in the page cache', async (t) => {
    if (!disk) return t.skip(`${dir} is not on ext4/xfs/btrfs`);
    // scripts/setup.sh installs it (util-linux-extra); a machine set up otherwise may lack it.
    if (!hasFincore()) return t.skip('fincore (util-linux-extra) is not installed');
    const store = new FileStore(join(dir, 'cold'));
    const { desc, bytes } = blob(4 * SLOT_BYTES + 100);
    await store.ingest(desc, source(bytes).src);
    // At most the last page, written again when the file was cut to size.
    assert.ok(cachedBytes(store.path(desc)) <= 8192, `${cachedBytes(store.path(desc))} bytes cached`);
    assert.ok((await readFile(store.path(desc))).equals(bytes));
  });

  test('an interrupted download keeps an unpadded prefix, and the next ingest resumes from it', async () => {
    const store = new FileStore(join(dir, 'resume'));
    const { desc, bytes } = blob(3 * SLOT_BYTES + 777);
    const { calls, src } = source(bytes, SLOT_BYTES + 5000);
    await assert.rejects(store.ingest(desc, src), { name: 'NetworkError', message: /connection reset \(simulated\)/ });
    const kept = (await stat(`${store.path(desc)}.${process.pid}.partial`)).size;
    assert.ok(kept > 0 && kept <= SLOT_BYTES + 5000, `kept ${kept}`);
    assert.ok((await readFile(`${store.path(desc)}.${process.pid}.partial`)).equals(bytes.subarray(0, kept)), 'a prefix of the blob, no zeros after it');
    await store.ingest(desc, src);
    assert.deepEqual(calls, [0, kept]);
    assert.ok((await readFile(store.path(desc))).equals(bytes));
  });

  test('on tmpfs the cache is written buffered, with the same result', async (t) => {
    if (!existsSync('/dev/shm')) return t.skip('no /dev/shm');
    const shm = await mkdtemp('/dev/shm/airlock-direct-');
    try {
      assert.equal(await directWorthwhile(shm), false);
      const store = new FileStore(shm);
      for (const size of [4097, SLOT_BYTES + 1]) {
        const { desc, bytes } = blob(size);
        await store.ingest(desc, source(bytes).src);
        assert.ok((await readFile(store.path(desc))).equals(bytes), `size ${size}`);
      }
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });
});
