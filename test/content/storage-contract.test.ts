// The storage contract (storage-contract.ts) against every implementation: the registry client's
// repository on a real docker-registry, the bundle reader, the file store and the memory store.
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { after } from 'node:test';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { openBundle, writeBundle, type Bundle } from '../../src/bundle/index.ts';
import { FileStore } from '../../src/content/file-store.ts';
import { MemoryStore } from '../../src/content/memory-store.ts';
import { digestEncoded, type Digest } from '../../src/core/digest.ts';
import type { Descriptor } from '../../src/core/manifest.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { seedRegistry } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { chunked, storageContract, type Fixture } from './storage-contract.ts';

/** Flip one byte in the middle of `size` bytes at `offset` of `file`, in place (same inode, same size). */
async function flipByte(file: string, offset: number, size: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const at = offset + (size >> 1);
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0]! ^= 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

let work: string;
const temp = async (prefix: string): Promise<string> => {
  work ??= await mkdtemp(join(tmpdir(), 'airlock-contract-'));
  return mkdtemp(join(work, prefix));
};
after(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

// --- the registry client on a real docker-registry ---
{
  let registry: RunningRegistry;
  let client: RegistryClient;
  let n = 0;
  storageContract({
    name: 'registry (RemoteRepository)',
    capabilities: ['Pusher', 'TagResolver', 'ReferencePusher', 'RangeFetcher', 'RangePumper', 'Mounter'],
    async start() {
      registry = await startRegistry();
      client = new RegistryClient({ credentials: { get: async () => undefined }, retryBaseDelayMs: 10 });
    },
    async stop() {
      await client?.close();
      await registry?.stop();
    },
    async open(fixture: Fixture | undefined) {
      const repository = `contract/r${++n}`;
      for (const { tag, image } of fixture?.tagged ?? []) await seedRegistry(registry.url, repository, tag, image);
      const storage = client.repository({ registry: registry.host, repository });
      const v2 = join(registry.dir, 'data', 'docker', 'registry', 'v2');
      return {
        storage,
        mountSource: repository,
        // The registry keeps every blob, manifests included, once under blobs/<alg>/<2 hex>/<hex>/data.
        async damage(desc: Descriptor) {
          const hex = digestEncoded(desc.digest as Digest);
          await flipByte(join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'), 0, desc.size);
        },
        // No `leftovers`: upload sessions are the registry's to purge. After a streamed PUT it
        // refuses the client's DELETE (the session's state moved on), and distribution 2.8 keeps
        // a session's hashstates even after a DELETE it accepted.
      };
    },
  });
}

// --- the bundle reader (read-only) ---
{
  const bundles: Bundle[] = [];
  storageContract({
    name: 'bundle reader (openBundle)',
    capabilities: [],
    async stop() {
      await Promise.all(bundles.map((b) => b.close()));
    },
    async open(fixture: Fixture | undefined) {
      const dir = await temp('bundle-');
      const source = new FileStore(join(dir, 'cache'));
      for (const c of fixture?.all ?? []) await source.push(c.desc, chunked(c.bytes));
      const out = join(dir, 'b.tar');
      await writeBundle({
        out,
        images: (fixture?.tagged ?? []).map(({ tag, image }) => ({ reference: `registry.example/contract:${tag}`, root: image.root })),
        source,
        lockText: 'images: []\n',
        name: 'contract',
        version: '1.0.0',
        toolVersion: '0.0.0',
      });
      const bundle = await openBundle(out);
      bundles.push(bundle);
      return {
        storage: bundle,
        async damage(desc: Descriptor) {
          const e = bundle.blobEntry(desc.digest)!;
          await flipByte(out, e.offset, e.size);
        },
      };
    },
  });
}

// --- the file store ---
storageContract({
  name: 'file store (FileStore)',
  capabilities: ['Pusher', 'Feeder'],
  async open(fixture: Fixture | undefined) {
    const store = new FileStore(await temp('files-'));
    // Placed as files, the layout the store reads, rather than through its own push.
    for (const c of fixture?.all ?? []) {
      await mkdir(dirname(store.path(c.desc)), { recursive: true });
      await writeFile(store.path(c.desc), c.bytes);
    }
    return {
      storage: store,
      async damage(desc: Descriptor) {
        await flipByte(store.path(desc), 0, desc.size);
      },
      // Anything but a finished blob (named by its hex digest) is a leftover.
      leftovers: async () => (await listFiles(store.root)).filter((p) => !/^[0-9a-f]{64}([0-9a-f]{64})?$/.test(basename(p))),
    };
  },
});

// --- the memory store ---
storageContract({
  name: 'memory store (MemoryStore)',
  capabilities: ['Pusher', 'TagResolver', 'ReferencePusher'],
  async open(fixture: Fixture | undefined) {
    const store = new MemoryStore();
    for (const c of fixture?.all ?? []) await store.push(c.desc, chunked(c.bytes));
    for (const { tag, image } of fixture?.tagged ?? []) {
      const bytes = fixture!.all.find((c) => c.desc.digest === image.root.digest)!.bytes;
      await store.pushReference(image.root, bytes, tag);
    }
    return { storage: store };
  },
});
