// The storage contract (src/content/types.ts), as node:test cases registered for one implementation.
// storage-contract.test.ts runs it against the registry client, the bundle reader, the file store
// and the memory store. Each case builds fresh content of its own, so damaging or pushing in one
// never touches another, even where instances share a backing store (one registry process).
//
// The rules, as a caller observes them:
//   fetch     streams exactly the descriptor's bytes. Missing content rejects with an AirlockError
//             whose exitCode is 3 (not found) naming the digest. Bytes that do not match the
//             descriptor (damaged content, or a descriptor with the wrong size) end in an
//             IntegrityError naming the digest — fetch rejects or the stream errors — never a clean end.
//   exists    true for stored content, false for content that is not there.
//   push      verifies size and digest while streaming: wrong, short or long content rejects with an
//             IntegrityError, a content stream that fails rejects with its error, and in every such
//             case nothing is visible: exists stays false, fetch is not found, no temp file stays
//             behind (a registry's unfinished upload sessions are its own to purge). Pushing
//             content that already exists succeeds.
//   signal    an aborted signal rejects with an AbortedError (exit code 130); one that fires while
//             a stream flows ends the stream or the push with an AbortedError, leaving nothing.
// Capability extensions (TagResolver, ReferencePusher, RangeFetcher, RangePumper, Feeder, Mounter)
// get their cases only where an implementation declares them; the declaration itself is checked.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { AbortedError, AirlockError, ExitCode, IntegrityError, NetworkError, UsageError } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import { MediaType, type Descriptor } from '../../src/core/manifest.ts';
import {
  isFeeder,
  isMounter,
  isRangeFetcher,
  isRangePumper,
  isReferencePusher,
  type Feeder,
  type Mounter,
  type RangeFetcher,
  type RangePumper,
  type ReadOnlyStorage,
  type ReferencePusher,
  type Storage,
  type TagResolver,
} from '../../src/content/types.ts';
import { blobBytes, buildArtifact, buildImage, buildIndex, layersOf, type BuiltImage } from '../helpers/images.ts';
import { within } from '../helpers/wait.ts';

/** Content of one case: every blob and manifest, children before the manifests naming them. */
export interface Fixture {
  /** A two-platform index (sharing a base layer) tagged `v1`, and an artifact tagged `artifact`. */
  tagged: { tag: string; image: BuiltImage }[];
  all: { desc: Descriptor; bytes: Buffer }[];
  /** A layer of 1.5 MiB: several chunks, and above every 1 MiB "small blob" or read-chunk threshold. */
  big: { desc: Descriptor; bytes: Buffer };
  /** A few bytes. */
  small: { desc: Descriptor; bytes: Buffer };
  /** A blob of 0 bytes. */
  empty: { desc: Descriptor; bytes: Buffer };
  /** An image manifest, and the index above it. */
  manifest: { desc: Descriptor; bytes: Buffer };
  index: { desc: Descriptor; bytes: Buffer };
}

export interface Instance<S extends ReadOnlyStorage = ReadOnlyStorage> {
  storage: S;
  /** Overwrite the stored bytes of `desc` with as many wrong ones, behind the storage's back. Absent where nothing can (memory). */
  damage?(desc: Descriptor): Promise<void>;
  /** What a failed push could leave behind (temp files); [] when clean. */
  leftovers?(): Promise<string[]>;
  /** The name a Mounter on the same backend mounts this instance's blobs from. */
  mountSource?: string;
}

/** Optional interfaces beyond ReadOnlyStorage; an implementation declares those it has, and the contract checks the claim. */
export type Capability = 'Pusher' | 'TagResolver' | 'ReferencePusher' | 'RangeFetcher' | 'RangePumper' | 'Feeder' | 'Mounter';

const DETECT: Record<Capability, (s: object) => boolean> = {
  Pusher: (s) => typeof (s as Partial<Storage>).push === 'function',
  TagResolver: (s) => typeof (s as Partial<TagResolver>).resolve === 'function',
  ReferencePusher: isReferencePusher,
  RangeFetcher: isRangeFetcher,
  RangePumper: isRangePumper,
  Feeder: isFeeder,
  Mounter: isMounter,
};

export interface Implementation {
  name: string;
  capabilities: readonly Capability[];
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /**
   * A fresh instance holding `fixture` (with its tags, where tags exist), put there by the
   * implementation's own means rather than its push; `undefined`: an empty instance (pushers only).
   */
  open(fixture: Fixture | undefined): Promise<Instance>;
}

let seed = randomBytes(4).readUInt32LE(0);

/** Content no other case has (a fresh seed), so damaging it cannot reach into another case. */
export function makeFixture(): Fixture {
  const s = seed++;
  const base = buildImage({ layers: [{ random: { bytes: 1536 * 1024 + 12_345, seed: s } }] });
  const amd = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'app/run': `amd64 ${s}\n` } }] });
  const arm = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'app/run': `arm64 ${s}\n` } }], platform: 'linux/arm64/v8' });
  const index = buildIndex([amd, arm]);
  const artifact = buildArtifact({
    artifactType: 'application/vnd.airlock.contract',
    files: [
      { mediaType: 'application/vnd.airlock.empty', bytes: Buffer.alloc(0) },
      { mediaType: 'text/plain', bytes: Buffer.from(`note ${s}\n`) },
    ],
  });
  const content = (img: BuiltImage, digest: string): { desc: Descriptor; bytes: Buffer } => {
    const b = img.blobs.find((x) => x.descriptor.digest === digest)!;
    return { desc: plain(b.descriptor), bytes: blobBytes(b) };
  };
  const all = new Map<string, { desc: Descriptor; bytes: Buffer }>();
  for (const img of [index, artifact]) for (const b of img.blobs) all.set(b.descriptor.digest, { desc: plain(b.descriptor), bytes: blobBytes(b) });
  const artifactLayers = (JSON.parse(blobBytes(artifact.blobs.find((b) => b.descriptor.digest === artifact.root.digest)!).toString()) as { layers: Descriptor[] }).layers;
  return {
    tagged: [
      { tag: 'v1', image: index },
      { tag: 'artifact', image: artifact },
    ],
    all: [...all.values()],
    big: content(base, layersOf(base)[0]!.descriptor.digest),
    small: content(artifact, artifactLayers[1]!.digest),
    empty: content(artifact, artifactLayers[0]!.digest),
    manifest: content(amd, amd.root.digest),
    index: content(index, index.root.digest),
  };
}

function plain(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

/** Content that no store holds. */
function absent(mediaType: string = MediaType.ociLayerGzip): Descriptor {
  const bytes = randomBytes(100);
  return { mediaType, digest: digestOf(bytes), size: bytes.length };
}

/** `bytes` as a stream of 64 KiB chunks, a turn of the event loop between them (as from a socket). */
export function chunked(bytes: Buffer, opts: { failAt?: number; error?: Error } = {}): Readable {
  const stop = opts.failAt ?? bytes.length;
  async function* gen(): AsyncGenerator<Buffer> {
    for (let at = 0; at < stop; at += 65536) {
      yield bytes.subarray(at, Math.min(at + 65536, stop));
      await new Promise((r) => setImmediate(r));
    }
    if (opts.failAt !== undefined) throw opts.error ?? new NetworkError('connection reset by peer (simulated)');
  }
  return Readable.from(gen(), { objectMode: false });
}

/**
 * The first `upTo` bytes of `bytes`, then nothing more until destroyed: a source that stalls. `taken`
 * resolves once the consumer asked for more than the first chunk (it holds some bytes already).
 */
function stalling(bytes: Buffer, upTo: number): { stream: Readable; taken: Promise<void> } {
  let reads = 0;
  let resolveTaken!: () => void;
  const taken = new Promise<void>((r) => (resolveTaken = r));
  const stream = new Readable({
    read() {
      reads++;
      if (reads === 1) this.push(bytes.subarray(0, upTo));
      else resolveTaken();
    },
  });
  return { stream, taken };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

async function fetchAll(s: ReadOnlyStorage, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  return readAll(await s.fetch(desc, { signal }));
}

/** A matcher: not found (exit code 3), naming `digest`. */
function notFound(digest: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof AirlockError, `expected an AirlockError, got ${String(e)}`);
    assert.equal(e.exitCode, ExitCode.notFound, `exit code of "${e.message}"`);
    assert.ok(e.message.includes(digest), `"${e.message}" names ${digest}`);
    return true;
  };
}

/** A matcher: an IntegrityError (exit code 5) naming one of `names` (the digest, or the tag pushed). */
function integrity(names: string | string[], code?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof IntegrityError, `expected an IntegrityError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.equal(e.exitCode, ExitCode.integrity);
    const list = typeof names === 'string' ? [names] : names;
    assert.ok(list.some((n) => e.message.includes(n)), `"${e.message}" names ${list.join(' or ')}`);
    if (code) assert.match(e.code, code);
    return true;
  };
}

function aborted(e: unknown): boolean {
  assert.ok(e instanceof AbortedError, `expected an AbortedError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
  assert.equal(e.exitCode, ExitCode.interrupted);
  return true;
}

/** Register the contract's cases for `impl` (inside a describe named after it). */
export function storageContract(impl: Implementation): void {
  describe(`storage contract: ${impl.name}`, () => {
    if (impl.start) before(() => impl.start!());
    if (impl.stop) after(() => impl.stop!());
    const has = (c: Capability): boolean => impl.capabilities.includes(c);

    test('has exactly the capabilities it declares', async () => {
      const { storage } = await impl.open(makeFixture());
      const found = (Object.keys(DETECT) as Capability[]).filter((c) => DETECT[c](storage));
      assert.deepEqual(found.sort(), [...impl.capabilities].sort());
    });

    describe('ReadOnlyStorage', () => {
      test('fetch streams exactly the bytes of every blob (0 bytes, a few, 1.5 MiB) and manifest; exists is true for each', async () => {
        const f = makeFixture();
        const { storage } = await impl.open(f);
        for (const c of f.all) {
          assert.equal(await storage.exists(c.desc), true, `exists ${c.desc.mediaType} ${c.desc.digest}`);
          const got = await fetchAll(storage, c.desc);
          assert.equal(got.length, c.desc.size, `${c.desc.digest}: bytes streamed`);
          assert.ok(got.equals(c.bytes), `${c.desc.digest}: the very bytes`);
        }
      });

      test('exists is false for content that is not there', async () => {
        const { storage } = await impl.open(makeFixture());
        assert.equal(await storage.exists(absent()), false);
        assert.equal(await storage.exists(absent(MediaType.ociManifest)), false);
      });

      test('fetch of missing content rejects with a not-found error (exit code 3) naming the digest', async () => {
        const { storage } = await impl.open(makeFixture());
        for (const d of [absent(), absent(MediaType.ociManifest), absent(MediaType.ociIndex)]) {
          await assert.rejects(fetchAll(storage, d), notFound(d.digest));
        }
      });

      test('a descriptor whose size is wrong gets an IntegrityError naming the digest, never the bytes', async () => {
        const f = makeFixture();
        const { storage } = await impl.open(f);
        for (const c of [f.small, f.big, f.manifest]) {
          for (const size of [c.desc.size - 1, c.desc.size + 1]) {
            await assert.rejects(fetchAll(storage, { ...c.desc, size }), integrity(c.desc.digest), `${c.desc.digest} as ${size} bytes`);
          }
        }
      });

      test('content damaged behind the storage\'s back fails with an IntegrityError naming the digest', async (t) => {
        const f = makeFixture();
        const inst = await impl.open(f);
        if (!inst.damage) return t.skip('nothing can reach behind this storage');
        for (const c of [f.big, f.small, f.manifest]) {
          await inst.damage(c.desc);
          await assert.rejects(fetchAll(inst.storage, c.desc), integrity(c.desc.digest, /DIGEST_MISMATCH/), `damaged ${c.desc.digest}`);
        }
      });

      test('an aborted signal rejects fetch and exists with an AbortedError', async () => {
        const f = makeFixture();
        const { storage } = await impl.open(f);
        const signal = AbortSignal.abort();
        for (const c of [f.big, f.manifest]) {
          await assert.rejects(storage.fetch(c.desc, { signal }), aborted);
          await assert.rejects(storage.exists(c.desc, { signal }), aborted);
        }
      });

      test('a signal that fires while a blob streams ends the stream with an AbortedError', async () => {
        const f = makeFixture();
        const { storage } = await impl.open(f);
        const ac = new AbortController();
        const stream = await storage.fetch(f.big.desc, { signal: ac.signal });
        let seen = 0;
        await assert.rejects(
          (async () => {
            for await (const chunk of stream) {
              seen += (chunk as Buffer).length;
              if (!ac.signal.aborted) ac.abort();
            }
          })(),
          aborted,
        );
        assert.ok(seen < f.big.desc.size, `the stream stopped early (${seen} of ${f.big.desc.size} bytes)`);
      });

      test('a signal that fires between fetch and reading ends the stream with an AbortedError, whatever was buffered', async () => {
        const f = makeFixture();
        const { storage } = await impl.open(f);
        for (const c of [f.small, f.manifest, f.big]) {
          const ac = new AbortController();
          const stream = await storage.fetch(c.desc, { signal: ac.signal });
          ac.abort();
          await assert.rejects(readAll(stream), aborted, `${c.desc.digest} (${c.desc.size} bytes)`);
        }
      });
    });

    if (has('Pusher')) describe('Pusher', () => {
      const pusher = async (): Promise<Instance<Storage>> => (await impl.open(undefined)) as Instance<Storage>;
      const nothingLeft = async (inst: Instance<Storage>, desc: Descriptor): Promise<void> => {
        assert.equal(await inst.storage.exists(desc), false, `${desc.digest} is not there`);
        await assert.rejects(fetchAll(inst.storage, desc), notFound(desc.digest));
        if (inst.leftovers) assert.deepEqual(await inst.leftovers(), [], 'no temp files, no upload sessions');
      };

      test('pushed content, children first, fetches back exactly and exists', async () => {
        const inst = await pusher();
        const f = makeFixture();
        for (const c of f.all) {
          assert.equal(await inst.storage.exists(c.desc), false);
          await inst.storage.push(c.desc, chunked(c.bytes));
        }
        for (const c of f.all) {
          assert.equal(await inst.storage.exists(c.desc), true, `exists ${c.desc.digest}`);
          assert.ok((await fetchAll(inst.storage, c.desc)).equals(c.bytes), `${c.desc.digest} fetches back`);
        }
        if (inst.leftovers) assert.deepEqual(await inst.leftovers(), []);
      });

      test('push refuses wrong, short and long content with an IntegrityError and keeps nothing', async () => {
        const inst = await pusher();
        const f = makeFixture();
        for (const c of [f.big, f.small]) {
          const wrong = Buffer.from(c.bytes);
          wrong[wrong.length >> 1]! ^= 0xff;
          await assert.rejects(inst.storage.push(c.desc, chunked(wrong)), integrity(c.desc.digest, /DIGEST_MISMATCH/), 'same size, other bytes');
          await nothingLeft(inst, c.desc);
          await assert.rejects(inst.storage.push(c.desc, chunked(c.bytes.subarray(0, c.bytes.length - 1))), integrity(c.desc.digest, /SIZE_MISMATCH/), 'one byte short');
          await nothingLeft(inst, c.desc);
          await assert.rejects(inst.storage.push(c.desc, chunked(Buffer.concat([c.bytes, Buffer.from('x')]))), integrity(c.desc.digest, /SIZE_MISMATCH/), 'one byte more');
          await nothingLeft(inst, c.desc);
        }
      });

      test('a content stream that fails mid-way fails the push with its own error and keeps nothing', async () => {
        const inst = await pusher();
        const f = makeFixture();
        for (const c of [f.big, f.small]) {
          const error = new NetworkError(`source of ${c.desc.digest} broke (simulated)`);
          await assert.rejects(inst.storage.push(c.desc, chunked(c.bytes, { failAt: c.bytes.length >> 1, error })), (e: unknown) => e === error);
          await nothingLeft(inst, c.desc);
        }
      });

      test('pushing content that already exists succeeds and keeps what was there', async () => {
        const inst = await pusher();
        const f = makeFixture();
        for (const c of [f.big, f.empty]) {
          await inst.storage.push(c.desc, chunked(c.bytes));
          await inst.storage.push(c.desc, chunked(c.bytes));
          assert.ok((await fetchAll(inst.storage, c.desc)).equals(c.bytes));
        }
      });

      test('two pushes of the same content at once both succeed', async () => {
        const inst = await pusher();
        const f = makeFixture();
        await Promise.all([inst.storage.push(f.big.desc, chunked(f.big.bytes)), inst.storage.push(f.big.desc, chunked(f.big.bytes))]);
        assert.ok((await fetchAll(inst.storage, f.big.desc)).equals(f.big.bytes));
        if (inst.leftovers) assert.deepEqual(await inst.leftovers(), []);
      });

      test('an aborted signal rejects push with an AbortedError and keeps nothing', async () => {
        const inst = await pusher();
        const f = makeFixture();
        for (const c of [f.big, f.small]) {
          await assert.rejects(inst.storage.push(c.desc, chunked(c.bytes), { signal: AbortSignal.abort() }), aborted);
          await nothingLeft(inst, c.desc);
        }
      });

      test('a signal that fires while content streams in rejects the push with an AbortedError and keeps nothing', async () => {
        const inst = await pusher();
        const f = makeFixture();
        for (const c of [f.big, f.small]) {
          const ac = new AbortController();
          const { stream, taken } = stalling(c.bytes, Math.min(65536, c.bytes.length >> 1));
          const pushed = inst.storage.push(c.desc, stream, { signal: ac.signal });
          await within(taken, 10_000, 'the push to take the first chunk');
          ac.abort();
          await assert.rejects(pushed, aborted);
          assert.equal(stream.destroyed, true, 'the content stream was released');
          await nothingLeft(inst, c.desc);
        }
      });
    });

    if (has('TagResolver')) describe('TagResolver', () => {
      const resolver = (i: Instance): TagResolver => i.storage as ReadOnlyStorage & TagResolver;

      test('resolve gives the descriptor of a tag and of a digest', async () => {
        const f = makeFixture();
        const r = resolver(await impl.open(f));
        for (const { tag, image } of f.tagged) {
          assert.deepEqual(plain(await r.resolve(tag)), plain(image.root), `tag ${tag}`);
          assert.deepEqual(plain(await r.resolve(image.root.digest)), plain(image.root), `digest of ${tag}`);
        }
      });

      test('resolve of an unknown tag or digest is not found (exit code 3); a malformed tag is a usage error', async () => {
        const r = resolver(await impl.open(makeFixture()));
        await assert.rejects(r.resolve('no-such-tag'), notFound('no-such-tag'));
        const d = absent(MediaType.ociManifest).digest;
        await assert.rejects(r.resolve(d), notFound(d));
        await assert.rejects(r.resolve('-bad/tag'), (e: unknown) => e instanceof UsageError && e.exitCode === ExitCode.usage && e.message.includes('-bad/tag'));
      });

      test('an aborted signal rejects resolve with an AbortedError', async () => {
        const r = resolver(await impl.open(makeFixture()));
        await assert.rejects(r.resolve('v1', { signal: AbortSignal.abort() }), aborted);
      });
    });

    if (has('ReferencePusher')) describe('ReferencePusher', () => {
      /** An empty instance with the fixture's blobs and child manifests pushed (registries want children first). */
      const withChildren = async (): Promise<{ s: Storage & ReferencePusher & TagResolver; f: Fixture }> => {
        const s = (await impl.open(undefined)).storage as Storage & ReferencePusher & TagResolver;
        const f = makeFixture();
        for (const c of f.all) if (c.desc.digest !== f.index.desc.digest) await s.push(c.desc, chunked(c.bytes));
        return { s, f };
      };

      test('pushReference names a manifest with a tag; a second push under the tag moves it', async () => {
        const w = await withChildren();
        const { s, f } = w;
        await s.pushReference(f.index.desc, f.index.bytes, 'latest');
        assert.deepEqual(plain(await s.resolve('latest')), f.index.desc);
        assert.ok((await fetchAll(s, f.index.desc)).equals(f.index.bytes));
        await s.pushReference(f.manifest.desc, f.manifest.bytes, 'latest');
        assert.deepEqual(plain(await s.resolve('latest')), f.manifest.desc);
      });

      test('pushReference refuses bytes that do not match the descriptor; the tag is not created', async () => {
        const w = await withChildren();
        const { s, f } = w;
        const other = Buffer.from(f.index.bytes.toString().replace('"schemaVersion":2', '"schemaVersion": 2'));
        await assert.rejects(s.pushReference(f.index.desc, other, 'wrong'), integrity([f.index.desc.digest, ':wrong']));
        await assert.rejects(s.resolve('wrong'), notFound('wrong'));
        assert.equal(await s.exists(f.index.desc), false);
      });
    });

    if (has('RangeFetcher')) describe('RangeFetcher', () => {
      test('fetchFrom streams the raw bytes from an offset on', async () => {
        const f = makeFixture();
        const storage = (await impl.open(f)).storage as ReadOnlyStorage & RangeFetcher;
        for (const offset of [0, 1, 1_000_001, f.big.desc.size]) {
          assert.ok((await readAll(await storage.fetchFrom(f.big.desc, offset))).equals(f.big.bytes.subarray(offset)), `from ${offset}`);
        }
        assert.ok((await readAll(await storage.fetchFrom(f.manifest.desc, 10))).equals(f.manifest.bytes.subarray(10)), 'a manifest from 10');
        const d = absent();
        await assert.rejects(storage.fetchFrom(d, 10), notFound(d.digest));
      });

    });

    if (has('RangePumper')) describe('RangePumper', () => {
      test('openFrom pumps the raw bytes from an offset on; missing content rejects openFrom', async () => {
        const f = makeFixture();
        const storage = (await impl.open(f)).storage as ReadOnlyStorage & RangePumper;
        for (const offset of [0, 1_200_000]) {
          const body = await storage.openFrom(f.big.desc, offset);
          const got: Buffer[] = [];
          await body.pump((chunk) => {
            got.push(Buffer.from(chunk));
          });
          assert.ok(Buffer.concat(got).equals(f.big.bytes.subarray(offset)), `from ${offset}`);
        }
        const d = absent();
        await assert.rejects(storage.openFrom(d, 0), notFound(d.digest));
      });
    });

    if (has('Feeder')) describe('Feeder', () => {
      test('feed hands over the bytes in order with their positions; damaged content fails with an IntegrityError', async () => {
        const f = makeFixture();
        const inst = await impl.open(f);
        const s = inst.storage as ReadOnlyStorage & Feeder;
        for (const c of [f.big, f.empty, f.manifest]) {
          const got: Buffer[] = [];
          let next = 0;
          await s.feed(c.desc, async (chunks, position) => {
            assert.equal(position, next, 'positions follow each other');
            for (const ch of chunks) {
              got.push(Buffer.from(ch));
              next += ch.length;
            }
          });
          assert.ok(Buffer.concat(got).equals(c.bytes), `${c.desc.digest} fed exactly`);
        }
        const d = absent();
        await assert.rejects(s.feed(d, async () => {}), notFound(d.digest));
        if (inst.damage) {
          await inst.damage(f.big.desc);
          await assert.rejects(s.feed(f.big.desc, async () => {}), integrity(f.big.desc.digest, /DIGEST_MISMATCH/));
        }
      });
    });

    if (has('Mounter')) describe('Mounter', () => {
      test('mount makes a sibling\'s blob appear without an upload; a blob the sibling lacks is not mounted', async () => {
        const f = makeFixture();
        const from = await impl.open(f);
        const into = (await impl.open(undefined)) as Instance<Storage & Mounter>;
        assert.ok(from.mountSource !== undefined, 'a Mounter names where it mounts from');
        assert.equal(await into.storage.exists(f.big.desc), false);
        assert.equal(await into.storage.mount(f.big.desc, from.mountSource), true);
        assert.equal(await into.storage.exists(f.big.desc), true);
        assert.ok((await fetchAll(into.storage, f.big.desc)).equals(f.big.bytes));
        const d = absent();
        assert.equal(await into.storage.mount(d, from.mountSource), false);
        assert.equal(await into.storage.exists(d), false);
      });
    });
  });
}
