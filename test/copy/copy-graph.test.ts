// copyGraph in-process, through its public signature only: between memory stores, and between a
// memory store and a real docker-registry. These pin today's behaviour for the rewrite of copy.ts:
// what is pushed (once each), in which order (children before the manifests naming them, the root
// last), what is skipped, retried, surfaced and stopped.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { copyGraph, type CopyEvent } from '../../src/copy.ts';
import { FileStore } from '../../src/content/file-store.ts';
import { MemoryStore } from '../../src/content/memory-store.ts';
import { isReferencePusher, type OpOptions, type ReadOnlyStorage, type ReferencePusher, type Storage } from '../../src/content/types.ts';
import { AbortedError, ConflictError, IntegrityError, NetworkError } from '../../src/core/errors.ts';
import { childrenOf, isManifestDescriptor, parseManifest, type Descriptor } from '../../src/core/manifest.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { blobBytes, buildImage, buildIndex, layersOf, type BuiltImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { within } from '../helpers/wait.ts';
import { chunked } from '../content/storage-contract.ts';
import { destroyOnAbort } from '../../src/content/verify-stream.ts';

let seed = 1000;

/** A two-platform index whose images share a 2 MiB base layer, and the parts of it tests name. */
function multiPlatform() {
  const s = seed++;
  const base = buildImage({ layers: [{ random: { bytes: 2 * 1024 * 1024, seed: s } }] });
  const amd = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'app/run': `amd64 ${s}\n` } }] });
  const arm = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'app/run': `arm64 ${s}\n` } }], platform: 'linux/arm64/v8' });
  const index = buildIndex([amd, arm]);
  return { index, amd, arm, shared: layersOf(base)[0]!.descriptor, bytesOf: (d: string) => blobBytes(index.blobs.find((b) => b.descriptor.digest === d)!) };
}

async function memoryWith(...images: BuiltImage[]): Promise<MemoryStore> {
  const m = new MemoryStore();
  for (const img of images) for (const b of img.blobs) await m.push(b.descriptor, Readable.from([blobBytes(b)]));
  return m;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Every push a destination saw: `start <digest>` when it began, `done <digest>` once stored. */
interface PushLog {
  entries: string[];
  tags: string[];
  count(digest: string): number;
}

/** `inner` with its pushes logged; a reference pusher stays one. */
function logged(inner: Storage & Partial<ReferencePusher>): { dst: Storage & Partial<ReferencePusher>; log: PushLog } {
  const entries: string[] = [];
  const tags: string[] = [];
  const log: PushLog = { entries, tags, count: (d) => entries.filter((e) => e === `done ${d}`).length };
  const dst: Storage & Partial<ReferencePusher> = {
    fetch: (d, o) => inner.fetch(d, o),
    exists: (d, o) => inner.exists(d, o),
    async push(d, content, o) {
      entries.push(`start ${d.digest}`);
      await inner.push(d, content, o);
      entries.push(`done ${d.digest}`);
    },
  };
  if (isReferencePusher(inner)) {
    dst.pushReference = async (d, bytes, reference, o) => {
      entries.push(`start ${d.digest}`);
      await inner.pushReference(d, bytes, reference, o);
      entries.push(`done ${d.digest}`);
      tags.push(reference);
    };
  }
  return { dst, log };
}

/** A source that counts fetches by digest and lets a test replace the stream of one fetch. */
function counted(inner: ReadOnlyStorage, replace?: (desc: Descriptor, call: number, opts: OpOptions | undefined) => Promise<Readable | undefined>) {
  const fetches = new Map<string, number>();
  const src: ReadOnlyStorage = {
    exists: (d, o) => inner.exists(d, o),
    async fetch(d, o) {
      const call = (fetches.get(d.digest) ?? 0) + 1;
      fetches.set(d.digest, call);
      return (await replace?.(d, call, o)) ?? inner.fetch(d, o);
    },
  };
  return { src, fetches };
}

/** Every manifest of `image` (by digest) with its children. */
function manifestsOf(image: BuiltImage): Map<string, Descriptor[]> {
  const out = new Map<string, Descriptor[]>();
  for (const b of image.blobs) {
    if (isManifestDescriptor(b.descriptor)) out.set(b.descriptor.digest, childrenOf(parseManifest(blobBytes(b), b.descriptor.mediaType, b.descriptor.digest)));
  }
  return out;
}

/** No manifest push began before every child of it was stored (here or before the copy). */
function assertChildrenFirst(image: BuiltImage, log: PushLog, present: Set<string> = new Set()): void {
  for (const [digest, children] of manifestsOf(image)) {
    const start = log.entries.indexOf(`start ${digest}`);
    if (start < 0) continue;
    for (const c of children) {
      if (present.has(c.digest)) continue;
      const done = log.entries.indexOf(`done ${c.digest}`);
      assert.ok(done >= 0 && done < start, `${c.digest} stored before its manifest ${digest} began`);
    }
  }
}

async function assertHolds(dst: ReadOnlyStorage, image: BuiltImage): Promise<void> {
  for (const b of image.blobs) {
    assert.ok((await readAll(await dst.fetch(b.descriptor))).equals(blobBytes(b)), `${b.descriptor.digest} copied exactly`);
  }
}

describe('copyGraph between memory stores', () => {
  test('a multi-platform index with a shared layer: everything copied, each blob pushed once, the root last', async () => {
    const { index } = multiPlatform();
    const { dst, log } = logged(new MemoryStore());
    const events: CopyEvent[] = [];
    const result = await copyGraph(await memoryWith(index), dst, index.root, { onEvent: (e) => events.push(e), image: 'example/app:1' });
    await assertHolds(dst, index);
    for (const b of index.blobs) assert.equal(log.count(b.descriptor.digest), 1, `${b.descriptor.digest} pushed once`);
    assert.equal(log.entries.at(-1), `done ${index.root.digest}`, 'the root is pushed last');
    assert.equal(log.entries.filter((e) => e.startsWith('start')).at(-1), `start ${index.root.digest}`, 'and begun last');
    assertChildrenFirst(index, log);
    assert.deepEqual(new Set(result.nodes.map((n) => n.digest)), new Set(index.blobs.map((b) => b.descriptor.digest)));
    assert.equal(result.nodes.at(-1)?.digest, index.root.digest);
    assert.equal(result.nodes.length, index.blobs.length, 'every node once');
    // Every blob reported copied once, every manifest done once, all under the image's name.
    const manifests = manifestsOf(index);
    const blobDone = events.filter((e) => e.type === 'blob-done');
    const manifestDone = events.filter((e) => e.type === 'manifest-done');
    assert.deepEqual(blobDone.map((e) => e.digest).sort(), index.blobs.map((b) => b.descriptor.digest).filter((d) => !manifests.has(d)).sort());
    assert.ok(blobDone.every((e) => e.how === 'copied' && e.image === 'example/app:1'));
    assert.deepEqual(manifestDone.map((e) => e.digest).sort(), [...manifests.keys()].sort());
    assert.ok(manifestDone.every((e) => e.how === 'copied'));
    // Progress adds up to the blobs' bytes.
    const progress = events.filter((e) => e.type === 'blob-progress').reduce((n, e) => n + e.bytes, 0);
    assert.equal(progress, blobDone.reduce((n, e) => n + e.size, 0));
  });

  test('with a tag, the root goes last through pushReference under that tag', async () => {
    const { index } = multiPlatform();
    const inner = new MemoryStore();
    const { dst, log } = logged(inner);
    await copyGraph(await memoryWith(index), dst, index.root, { tag: 'v1' });
    assert.deepEqual(log.tags, ['v1']);
    assert.equal(log.entries.at(-1), `done ${index.root.digest}`);
    assert.deepEqual(await inner.resolve('v1'), index.root);
  });

  test('two images sharing a layer, copied with one `done` map: the layer is pushed once', async () => {
    const { amd, arm, shared } = multiPlatform();
    const { dst, log } = logged(new MemoryStore());
    const src = await memoryWith(amd, arm);
    const done = new Map<string, Promise<void>>();
    await Promise.all([copyGraph(src, dst, amd.root, { done }), copyGraph(src, dst, arm.root, { done })]);
    assert.equal(log.count(shared.digest), 1);
    await assertHolds(dst, amd);
    await assertHolds(dst, arm);
  });

  test('selectChildren: only the chosen platform is copied (the index itself still is)', async () => {
    const { index, amd, arm, shared } = multiPlatform();
    const dst = new MemoryStore();
    const asked: [string, string[]][] = [];
    await copyGraph(await memoryWith(index), dst, index.root, {
      selectChildren: (parent, children) => {
        asked.push([parent.digest, children.map((c) => c.digest)]);
        return children.filter((c) => c.platform?.architecture === 'arm64');
      },
    });
    assert.deepEqual(asked, [[index.root.digest, [amd.root.digest, arm.root.digest]]], 'asked once, for the index, with both children');
    await assertHolds(dst, arm);
    assert.equal(await dst.exists(index.root), true);
    assert.equal(await dst.exists(shared), true);
    for (const b of amd.blobs.filter((x) => !arm.blobs.some((y) => y.descriptor.digest === x.descriptor.digest))) {
      assert.equal(await dst.exists(b.descriptor), false, `amd64-only ${b.descriptor.digest} left out`);
    }
  });

  test('content the destination has is skipped: reported as `exists`, never pushed again', async () => {
    const { index, amd } = multiPlatform();
    const { dst, log } = logged(await memoryWith(amd));
    const events: CopyEvent[] = [];
    await copyGraph(await memoryWith(index), dst, index.root, { onEvent: (e) => events.push(e) });
    await assertHolds(dst, index);
    for (const b of amd.blobs) assert.equal(log.count(b.descriptor.digest), 0, `${b.descriptor.digest} not pushed`);
    const amdManifests = manifestsOf(amd);
    const how = (d: string) => events.filter((e) => (e.type === 'blob-done' || e.type === 'manifest-done') && e.digest === d).map((e) => (e as { how: string }).how);
    for (const b of amd.blobs) assert.deepEqual(how(b.descriptor.digest), ['exists'], `${b.descriptor.digest} reported as existing`);
    assert.deepEqual(how(index.root.digest), ['copied']);
    assertChildrenFirst(index, log, new Set([...amd.blobs.map((b) => b.descriptor.digest), ...amdManifests.keys()]));
  });

  test('a source that breaks mid-blob with a NetworkError is retried whole, and the copy succeeds', async () => {
    const { index, shared, bytesOf } = multiPlatform();
    const inner = await memoryWith(index);
    const { src, fetches } = counted(inner, async (d, call) => (d.digest === shared.digest && call === 1 ? chunked(bytesOf(d.digest), { failAt: d.size >> 1 }) : undefined));
    const dst = new MemoryStore();
    const events: CopyEvent[] = [];
    await copyGraph(src, dst, index.root, { onEvent: (e) => events.push(e) });
    assert.equal(fetches.get(shared.digest), 2, 'fetched again after the break');
    await assertHolds(dst, index);
    const progress = events.filter((e) => e.type === 'blob-progress' && e.digest === shared.digest).reduce((n, e) => n + (e as { bytes: number }).bytes, 0);
    assert.equal(progress, shared.size, 'the failed attempt\'s progress is taken back');
  });

  test('with attempts: 1 the NetworkError surfaces and the root is not pushed', async () => {
    const { index, shared, bytesOf } = multiPlatform();
    const { src } = counted(await memoryWith(index), async (d) => (d.digest === shared.digest ? chunked(bytesOf(d.digest), { failAt: d.size >> 1 }) : undefined));
    const { dst, log } = logged(new MemoryStore());
    await assert.rejects(copyGraph(src, dst, index.root, { attempts: 1 }), (e: unknown) => e instanceof NetworkError && e.side === 'source' && /simulated/.test(e.message));
    assert.equal(log.entries.includes(`start ${index.root.digest}`), false);
    assert.equal(await dst.exists(shared), false);
  });

  test('an IntegrityError (a damaged source blob) is not retried: it surfaces, and no manifest above it is pushed', async () => {
    const { index, amd, shared } = multiPlatform();
    const dir = await mkdtemp(join(tmpdir(), 'airlock-copy-'));
    try {
      const store = new FileStore(dir);
      for (const b of index.blobs) {
        await mkdir(dirname(store.path(b.descriptor)), { recursive: true });
        await writeFile(store.path(b.descriptor), blobBytes(b));
      }
      const damaged = Buffer.from(blobBytes(index.blobs.find((b) => b.descriptor.digest === shared.digest)!));
      damaged[1000]! ^= 0xff;
      await writeFile(store.path(shared), damaged);
      const { src, fetches } = counted(store);
      const { dst, log } = logged(new MemoryStore());
      await assert.rejects(copyGraph(src, dst, index.root), (e: unknown) => e instanceof IntegrityError && e.code === 'DIGEST_MISMATCH' && e.side === 'source' && e.message.includes(shared.digest));
      assert.equal(fetches.get(shared.digest), 1, 'fetched once: wrong bytes are not worth a second try');
      assert.equal(await dst.exists(shared), false);
      for (const m of [index.root.digest, amd.root.digest]) assert.equal(log.entries.includes(`start ${m}`), false, `${m} not pushed`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('abort stops the copy: the stalled transfer is released, the copy rejects with an AbortedError, the root is not pushed', async () => {
    const { index, shared, bytesOf } = multiPlatform();
    let stalled: Readable | undefined;
    let reached!: () => void;
    const stallReached = new Promise<void>((r) => (reached = r));
    const { src } = counted(await memoryWith(index), async (d, _call, opts) => {
      if (d.digest !== shared.digest) return undefined;
      // The first 64 KiB, then nothing: a connection that hangs. Like every Fetcher it ends on
      // the signal it was given, so this also checks that copyGraph hands its signal on.
      let reads = 0;
      stalled = new Readable({
        read() {
          if (++reads === 1) this.push(bytesOf(d.digest).subarray(0, 65536));
          else reached();
        },
      });
      destroyOnAbort(stalled, opts?.signal);
      return stalled;
    });
    const { dst, log } = logged(new MemoryStore());
    const ac = new AbortController();
    const copying = copyGraph(src, dst, index.root, { signal: ac.signal });
    await within(stallReached, 10_000, 'the copy to reach the stalled blob');
    ac.abort();
    await assert.rejects(copying, (e: unknown) => e instanceof AbortedError);
    assert.equal(stalled?.destroyed, true, 'the hanging source stream was released');
    assert.equal(log.entries.includes(`start ${index.root.digest}`), false);
    assert.equal(await dst.exists(shared), false);
  });

  test(
    'a destination that fails releases the source stream it was reading',
    async () => {
      const { index, shared } = multiPlatform();
      const store = await memoryWith(index);
      let opened: Readable | undefined;
      const { src } = counted(store, async (d, _call, opts) => {
        if (d.digest !== shared.digest) return undefined;
        opened = await store.fetch(d, opts);
        return opened;
      });
      const inner = new MemoryStore();
      const refusing: Storage = {
        fetch: (d, o) => inner.fetch(d, o),
        exists: (d, o) => inner.exists(d, o),
        async push(d, content, o) {
          if (d.digest === shared.digest) throw new ConflictError(`${d.digest}: refused (simulated)`);
          await inner.push(d, content, o);
        },
      };
      await assert.rejects(copyGraph(src, refusing, index.root), (e: unknown) => e instanceof ConflictError && e.side === 'destination' && e.message.includes(shared.digest));
      assert.equal(opened?.destroyed, true, 'the source stream was released');
    },
  );

  test('an already aborted signal rejects before anything is fetched', async () => {
    const { index } = multiPlatform();
    const { src, fetches } = counted(await memoryWith(index));
    await assert.rejects(copyGraph(src, new MemoryStore(), index.root, { signal: AbortSignal.abort() }), (e: unknown) => e instanceof AbortedError);
    assert.equal(fetches.size, 0);
  });
});

describe('copyGraph between a memory store and a real registry', () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  before(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ credentials: { get: async () => undefined }, retryBaseDelayMs: 10 });
  });
  after(async () => {
    await client?.close();
    await registry?.stop();
  });

  test('memory → registry → memory: a tagged multi-platform index arrives whole, children first, each blob once', async () => {
    const { index } = multiPlatform();
    const repo = client.repository({ registry: registry.host, repository: 'copy/app' });
    const { dst, log } = logged(repo);
    await copyGraph(await memoryWith(index), dst, index.root, { tag: 'v1' });
    for (const b of index.blobs) assert.equal(log.count(b.descriptor.digest), 1, `${b.descriptor.digest} pushed once`);
    assert.equal(log.entries.at(-1), `done ${index.root.digest}`);
    assert.deepEqual(log.tags, ['v1']);
    assertChildrenFirst(index, log);
    const resolved = await repo.resolve('v1');
    assert.deepEqual({ mediaType: resolved.mediaType, digest: resolved.digest, size: resolved.size }, index.root);

    const back = new MemoryStore();
    const events: CopyEvent[] = [];
    await copyGraph(repo, back, resolved, { onEvent: (e) => events.push(e) });
    await assertHolds(back, index);
    assert.ok(events.filter((e) => e.type === 'blob-done').every((e) => e.how === 'copied'));
  });

  test('into a registry that has the shared layer already: it is reported `exists` and not uploaded', async () => {
    const { index, amd, shared } = multiPlatform();
    const repo = client.repository({ registry: registry.host, repository: 'copy/partial' });
    await copyGraph(await memoryWith(amd), repo, amd.root);
    const { dst, log } = logged(repo);
    const events: CopyEvent[] = [];
    await copyGraph(await memoryWith(index), dst, index.root, { onEvent: (e) => events.push(e) });
    assert.equal(log.count(shared.digest), 0);
    assert.deepEqual(
      events.filter((e) => e.type === 'blob-done' && e.digest === shared.digest).map((e) => (e as { how: string }).how),
      ['exists'],
    );
    await assertHolds(repo, index);
  });
});
