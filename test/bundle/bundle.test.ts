import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FileStore } from '../../src/content/file-store.ts';
import { ExitCode, IntegrityError, NotFoundError, UsageError } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import { MediaType, type Descriptor } from '../../src/core/manifest.ts';
import type { ChunkSink, ReadOnlyStorage } from '../../src/content/types.ts';
import { readAllLimited } from '../../src/content/verify-stream.ts';
import { inspectBundle, openBundle, verifyBundle, writeBundle, type BundleImageInput, type Inventory, type WriteBundleOptions } from '../../src/bundle/index.ts';
import { blobBytes, blobStream, buildImage, buildIndex, layersOf, type BlobData, type BuiltImage } from '../helpers/images.ts';
import { within } from '../helpers/wait.ts';
import { rewriteTar } from '../helpers/tamper.ts';

const exec = promisify(execFile);

const BASE = 'docker.io/library/base:1';
const APP = 'registry.example.com/team/app:2.0';
const TOOL = 'quay.io/org/tool:v3';
const S512 = 'docker.io/library/sha512:1';
const LOCK_TEXT = '# airlock.lock — exact text, kept byte for byte\nimages: []'; // no trailing newline on purpose

/** An image whose layer is addressed by sha512: its blob name needs a PAX header. */
function sha512Image(layer: Buffer): BuiltImage {
  const l: BlobData = { descriptor: { mediaType: MediaType.ociLayerGzip, digest: digestOf(layer, 'sha512'), size: layer.length }, bytes: layer };
  const configBytes = Buffer.from(JSON.stringify({ architecture: 's390x', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const c: BlobData = { descriptor: { mediaType: MediaType.ociConfig, digest: digestOf(configBytes), size: configBytes.length }, bytes: configBytes };
  const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: c.descriptor, layers: [l.descriptor] }));
  const root: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(m), size: m.length };
  return { root, blobs: [l, c, { descriptor: root, bytes: m }], platforms: ['linux/s390x'] };
}

function sha256File(path: string): Promise<string> {
  return readFile(path).then((b) => createHash('sha256').update(b).digest('hex'));
}

describe('bundle', () => {
  let dir: string;
  let store: FileStore;
  let images: Record<string, BuiltImage>;
  let inputs: BundleImageInput[];
  let good: string;
  const opts = (out: string, more: Partial<WriteBundleOptions> = {}): WriteBundleOptions => ({
    out,
    images: inputs,
    source: store,
    lockText: LOCK_TEXT,
    name: 'demo',
    version: '1.2.3',
    toolVersion: '0.1.0',
    ...more,
  });
  const uniqueBlobs = (...imgs: BuiltImage[]): Map<string, number> => new Map(imgs.flatMap((i) => i.blobs.map((b) => [b.descriptor.digest, b.descriptor.size] as const)));
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-bundle-'));
    store = new FileStore(join(dir, 'cache'));
    const base = buildImage({ layers: [{ files: { 'etc/os-release': 'ID=base\n' } }] });
    const amd = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'app/run': 'amd64\n' } }], labels: { app: '2.0' } });
    const arm = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'app/run': 'arm64\n' } }], platform: 'linux/arm64/v8' });
    images = {
      [BASE]: base,
      [APP]: buildIndex([amd, arm]),
      [TOOL]: buildImage({ format: 'docker', layers: [{ random: { bytes: 3 * 1024 * 1024, seed: 7 } }] }),
      [S512]: sha512Image(blobBytes(layersOf(base)[0]!)),
    };
    for (const img of Object.values(images)) for (const b of img.blobs) await store.push(b.descriptor, blobStream(b));
    inputs = Object.entries(images).map(([reference, img]) => ({ reference, root: img.root }));
    good = join(dir, 'good.tar');
    await writeBundle(opts(good));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the tar holds metadata first, then every blob once, sorted by digest', async () => {
    const b = await openBundle(good);
    try {
      const names = [...b.entries.keys()];
      assert.deepEqual(names.slice(0, 5), ['airlock/bundle.json', 'airlock/inventory.json', 'airlock/airlock.lock', 'oci-layout', 'index.json']);
      const expected = [...uniqueBlobs(...Object.values(images)).keys()].sort().map((d) => `blobs/${d.replace(':', '/')}`);
      assert.deepEqual(names.slice(5), expected);
      assert.equal(b.lockText, LOCK_TEXT);
      assert.deepEqual(b.bundleInfo, { formatVersion: 1, tool: { name: 'airlock', version: '0.1.0' }, name: 'demo', version: '1.2.3' });
      assert.deepEqual(
        b.images(),
        Object.keys(images)
          .sort()
          .map((reference) => ({ reference, root: images[reference]!.root })),
      );
      for (const m of b.index.manifests) {
        assert.equal(m.annotations?.['org.opencontainers.image.ref.name'], m.annotations?.['io.containerd.image.name']);
      }
      // Every blob reads back exactly, verified, from its place in the tar.
      for (const img of Object.values(images)) {
        for (const blob of img.blobs) {
          assert.equal(await b.exists(blob.descriptor), true);
          assert.deepEqual(await readAllLimited(await b.fetch(blob.descriptor), 8 * 1024 * 1024, 't'), blobBytes(blob));
        }
      }
      const absent: Descriptor = { mediaType: MediaType.ociLayerGzip, digest: digestOf('absent'), size: 6 };
      assert.equal(await b.exists(absent), false);
      await assert.rejects(b.fetch(absent), { name: 'NotFoundError', code: 'BLOB_UNKNOWN', exitCode: ExitCode.notFound, message: new RegExp(`blob ${absent.digest} is not in the bundle`) });
    } finally {
      await b.close();
    }
    // GNU tar agrees on the names, including the sha512 one that needs PAX.
    const { stdout } = await exec('tar', ['-tf', good]);
    assert.ok(stdout.split('\n').some((l) => /^blobs\/sha512\/[0-9a-f]{128}$/.test(l)));
  });

  test('same inputs give the same bytes, whatever the order of the images', async () => {
    const again = join(dir, 'other', 'again.tar');
    const r = await writeBundle(opts(again, { images: [...inputs].reverse() }));
    assert.equal(await sha256File(again), await sha256File(good));
    assert.equal(r.size, (await stat(again)).size);
    assert.equal(r.path, again);
  });

  test('the inventory: per-image sizes and platforms, per-blob users, totals with sharing', async () => {
    const { inventory } = await openBundle(good).then(async (b) => {
      await b.close();
      return b;
    });
    assert.deepEqual(
      inventory.images.map((i) => [i.reference, i.digest, i.totalSize, i.platforms.map((p) => p.platform)]),
      Object.keys(images)
        .sort()
        .map((r) => [r, images[r]!.root.digest, sum(uniqueBlobs(images[r]!)), images[r]!.platforms]),
    );
    const all = uniqueBlobs(...Object.values(images));
    const imageBytes = Object.values(images).reduce((a, i) => a + sum(uniqueBlobs(i)), 0);
    assert.deepEqual(inventory.totals, { images: 4, blobs: all.size, bytes: sum(all), imageBytes, sharedBytes: imageBytes - sum(all) });
    assert.ok(inventory.totals.sharedBytes > 0, 'the base layer is shared by two images');
    const baseLayer = layersOf(images[BASE]!)[0]!.descriptor.digest;
    assert.deepEqual(inventory.blobs.find((b) => b.digest === baseLayer)?.images, [BASE, APP].sort());
  });

  test('inspect reports the inventory numbers, reading only the start of the file', async () => {
    const info = await inspectBundle(good);
    const all = uniqueBlobs(...Object.values(images));
    assert.equal(info.name, 'demo');
    assert.equal(info.version, '1.2.3');
    assert.equal(info.toolVersion, '0.1.0');
    assert.equal(info.fileSize, (await stat(good)).size);
    assert.deepEqual(info.totals, { images: 4, blobs: all.size, bytes: sum(all), sharedBytes: info.totals.sharedBytes });
    const app = info.images.find((i) => i.reference === APP)!;
    assert.deepEqual(app.platforms, ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(app.size, sum(uniqueBlobs(images[APP]!)));
    assert.equal(app.digest, images[APP]!.root.digest);
    assert.equal(info.verified, false, 'inspect says it did not verify the bundle');
  });

  test('the bundle is about as big as its unique blobs', async () => {
    const { size } = await stat(good);
    const b = await openBundle(good);
    const unique = b.inventory.totals.bytes;
    const metadata = ['airlock/bundle.json', 'airlock/inventory.json', 'airlock/airlock.lock', 'oci-layout', 'index.json'].reduce((a, n) => a + b.entries.get(n)!.size, 0);
    const entries = b.entries.size + 2; // plus the two directories
    await b.close();
    assert.ok(size > unique);
    // Per entry one header, at most one padding block, one PAX header block pair for the sha512 name; two end blocks.
    assert.ok(size - unique - metadata <= entries * 1024 + 1024 + 1024, `overhead ${size - unique - metadata} bytes`);
  });

  test('verify: a clean bundle is OK, on the main thread and on worker threads', async () => {
    const all = uniqueBlobs(...Object.values(images));
    let last = { done: -1, total: -1 };
    for (const threads of [0, 2]) {
      const r = await verifyBundle(good, { threads, onProgress: (p) => (last = p) });
      assert.deepEqual(r, { ok: true, blobs: all.size, bytes: sum(all), problems: [] });
      assert.deepEqual(last, { done: sum(all), total: sum(all) });
    }
  });

  test('verify names a blob with a flipped byte and every image that uses it', async () => {
    const bad = join(dir, 'flipped.tar');
    await copyFile(good, bad);
    const shared = layersOf(images[BASE]!)[0]!.descriptor;
    const b = await openBundle(bad);
    const e = b.blobEntry(shared.digest)!;
    await b.close();
    const fh = await open(bad, 'r+');
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, e.offset + 20);
    one[0]! ^= 0x10;
    await fh.write(one, 0, 1, e.offset + 20);
    await fh.close();
    for (const threads of [0, 2]) {
      const r = await verifyBundle(bad, { threads });
      assert.equal(r.ok, false);
      assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
      const p = r.problems[0]!;
      assert.equal(p.digest, shared.digest);
      assert.equal(p.entry, `blobs/sha256/${shared.digest.slice(7)}`);
      assert.deepEqual(p.images, [BASE, APP].sort());
      assert.match(p.message, /digest mismatch/);
    }
  });

  test('verify of a truncated bundle throws IntegrityError naming the entry cut short', async () => {
    const cut = join(dir, 'cut.tar');
    await copyFile(good, cut);
    const b = await openBundle(cut);
    const [name, last] = [...b.entries].at(-1)!;
    await b.close();
    await truncate(cut, last.offset + Math.floor(last.size / 2));
    await assert.rejects(verifyBundle(cut), (e: unknown) => e instanceof IntegrityError && e.message.includes(`"${name}"`) && /truncated/.test(e.message));
  });

  test('verify reports a blob missing from the tar, with the images that need it', async () => {
    const missing = layersOf(images[TOOL]!)[0]!.descriptor.digest;
    const out = join(dir, 'missing.tar');
    await rewriteTar(good, out, (name) => name !== `blobs/sha256/${missing.slice(7)}`);
    const r = await verifyBundle(out);
    assert.equal(r.ok, false);
    const about = r.problems.filter((p) => p.digest === missing);
    assert.ok(about.length >= 1, JSON.stringify(r.problems));
    assert.ok(about.every((p) => p.images.join() === TOOL));
    assert.ok(about.some((p) => /^missing: .*referenced by manifest/.test(p.message)));
    assert.ok(about.some((p) => /^missing: listed in the inventory/.test(p.message)));
    assert.equal(r.problems.length, about.length, 'nothing else is wrong');
  });

  test('verify reports a bundle without its lock file', async () => {
    const out = join(dir, 'nolock.tar');
    await rewriteTar(good, out, (name) => name !== 'airlock/airlock.lock');
    const r = await verifyBundle(out);
    assert.deepEqual(
      r.problems.map((p) => [p.entry, p.message.split(':')[0]]),
      [['airlock/airlock.lock', 'missing']],
    );
  });

  test('verify reports an inventory that disagrees with index.json and the tar', async () => {
    const out = join(dir, 'inventory.tar');
    const dropped = layersOf(images[BASE]!)[0]!.descriptor.digest;
    await rewriteTar(good, out, () => true, (name, content) => {
      if (name !== 'airlock/inventory.json') return content;
      const inv = JSON.parse(content.toString()) as Inventory;
      inv.images.find((i) => i.reference === TOOL)!.digest = digestOf('not the tool');
      inv.blobs = inv.blobs.filter((b) => b.digest !== dropped);
      return Buffer.from(JSON.stringify(inv));
    });
    const r = await verifyBundle(out);
    const messages = r.problems.map((p) => p.message);
    assert.ok(messages.some((m) => m.startsWith('index.json says') && m.includes(images[TOOL]!.root.digest)), messages.join('\n'));
    assert.ok(r.problems.some((p) => p.digest === dropped && p.message === 'not listed in the inventory' && p.images.join() === [BASE, APP].sort().join()));
    assert.ok(messages.some((m) => /^totals\.bytes is \d+, its lists add up to \d+$/.test(m)));
  });

  test('openBundle: a tar that is not a bundle, a file that is not a tar are IntegrityErrors naming the file; a directory is a UsageError', async () => {
    const plain = join(dir, 'plain.tar');
    await writeFile(join(dir, 'hello.txt'), 'hello');
    await exec('tar', ['-cf', plain, '-C', dir, 'hello.txt']);
    await assert.rejects(openBundle(plain), (e: unknown) => e instanceof IntegrityError && e.code === 'TAR_NOT_A_BUNDLE' && e.message.includes(plain) && /not an airlock bundle/.test(e.message));
    await assert.rejects(inspectBundle(plain), (e: unknown) => e instanceof IntegrityError && e.code === 'TAR_NOT_A_BUNDLE' && e.message.includes(plain));
    const text = join(dir, 'airlock.yaml');
    await writeFile(text, 'name: demo\nversion: 1\n'.repeat(50));
    await assert.rejects(verifyBundle(text), (e: unknown) => e instanceof IntegrityError && e.message.includes(text) && /not a tar archive/.test(e.message));
    await assert.rejects(openBundle(join(dir, 'nope.tar')), { name: 'NotFoundError', code: 'BUNDLE_NOT_FOUND', exitCode: ExitCode.notFound, message: /nope\.tar does not exist/ });
    await assert.rejects(openBundle(dir), (e: unknown) => e instanceof UsageError && /is not a file/.test(e.message));
  });

  describe('a failed write leaves nothing behind', () => {
    const leftovers = async (d: string): Promise<string[]> => (await readdir(d)).filter((n) => n !== 'keep');
    let outDir: string;
    before(async () => {
      outDir = join(dir, 'failed');
      await mkdir(outDir);
      await writeFile(join(outDir, 'keep'), '');
    });

    test('a blob missing from the source', async () => {
      const orphan = buildImage({ layers: [{ files: { lost: 'x' } }] });
      const layer = layersOf(orphan)[0]!.descriptor.digest;
      for (const b of orphan.blobs) if (b.descriptor.digest !== layer) await store.push(b.descriptor, blobStream(b));
      await assert.rejects(
        writeBundle(opts(join(outDir, 'b.tar'), { images: [...inputs, { reference: 'docker.io/library/orphan:1', root: orphan.root }] })),
        (e: unknown) => e instanceof NotFoundError && e.message.includes(layer) && e.message.includes('docker.io/library/orphan:1'),
      );
      assert.deepEqual(await leftovers(outDir), []);
    });

    test('a source that fails in the middle of streaming', async () => {
      const big = layersOf(images[TOOL]!)[0]!.descriptor.digest;
      const flaky: ReadOnlyStorage = {
        exists: (d, o) => store.exists(d, o),
        fetch: async (d, o) => {
          const s = await store.fetch(d, o);
          if (d.digest !== big) return s;
          let n = 0;
          s.on('data', (c: Buffer) => {
            n += c.length;
            if (n > 1024 * 1024) s.destroy(new Error('disk read error (simulated)'));
          });
          return s;
        },
      };
      await assert.rejects(writeBundle(opts(join(outDir, 'b.tar'), { source: flaky })), /disk read error/);
      assert.deepEqual(await leftovers(outDir), []);
    });

    test('a fill that gives a blob short or out of place', async () => {
      const big = layersOf(images[TOOL]!)[0]!.descriptor;
      const short = (desc: Descriptor, sink: ChunkSink): Promise<void> => (desc.digest === big.digest ? sink([Buffer.alloc(10)], 0) : store.feed(desc, sink));
      await assert.rejects(writeBundle(opts(join(outDir, 'b.tar'), { fill: short })), (e: unknown) => e instanceof IntegrityError && e.message.includes(big.digest) && /only 10 of/.test(e.message));
      const beyond = (desc: Descriptor, sink: ChunkSink): Promise<void> => (desc.digest === big.digest ? sink([Buffer.alloc(10)], big.size - 5) : store.feed(desc, sink));
      await assert.rejects(writeBundle(opts(join(outDir, 'b.tar'), { fill: beyond })), (e: unknown) => e instanceof IntegrityError && e.message.includes(big.digest));
      assert.deepEqual(await leftovers(outDir), []);
    });

    test("one blob's failure stops the other fillers at once, even one still waiting for its first byte", async () => {
      let waiting = 0;
      let stopped = 0;
      const fill = async (_desc: Descriptor, _sink: ChunkSink, signal: AbortSignal | undefined): Promise<void> => {
        // Two downloads are under way when the third one fails.
        if (waiting >= 2) throw new Error('registry connection reset (simulated)');
        // A download that never sends a byte: only its signal ends it.
        waiting++;
        await new Promise<void>((_resolve, reject) => {
          const stop = (): void => {
            stopped++;
            reject(signal!.reason as Error);
          };
          if (signal?.aborted) stop();
          else signal?.addEventListener('abort', stop, { once: true });
        });
      };
      // The waiting fillers never end by themselves: the failure comes back only if they were stopped.
      const writing = writeBundle(opts(join(outDir, 'b.tar'), { fill, concurrency: 4 }));
      await assert.rejects(within(writing, 30_000, 'writeBundle after one filler failed'), /registry connection reset/);
      assert.ok(waiting > 0, 'another filler was running when the first one failed');
      assert.equal(stopped, waiting, 'every waiting filler saw its signal abort');
      assert.deepEqual(await leftovers(outDir), []);
    });

    test('an abort', async () => {
      const ac = new AbortController();
      await assert.rejects(
        writeBundle(
          opts(join(outDir, 'b.tar'), {
            signal: ac.signal,
            onProgress: (p) => {
              if (p.written > 1024 * 1024) ac.abort();
            },
          }),
        ),
        { name: 'AbortedError', code: 'ABORTED', exitCode: ExitCode.interrupted },
      );
      assert.deepEqual(await leftovers(outDir), []);
    });

    test('the same image listed twice is refused before anything is written', async () => {
      await assert.rejects(writeBundle(opts(join(outDir, 'b.tar'), { images: [...inputs, inputs[0]!] })), { name: 'UsageError', code: 'BUNDLE_DUPLICATE_IMAGE', message: /listed twice/ });
      assert.deepEqual(await leftovers(outDir), []);
    });
  });
});
