// The registry client against a real docker-registry (distribution 2.8) on loopback.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { ExitCode, IntegrityError, RegistryError, UsageError } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import type { Descriptor } from '../../src/core/manifest.ts';
import { MediaType } from '../../src/core/media-types.ts';
import { RegistryClient, type RemoteRepository } from '../../src/registry/client.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { bytesDescriptor, digestOfStream, json, patternDescriptor, patternStream } from './support.ts';

const noCredentials = { get: async () => undefined };

let registry: RunningRegistry;
let client: RegistryClient;

before(async () => {
  registry = await startRegistry();
  client = new RegistryClient({ credentials: noCredentials, retryBaseDelayMs: 10 });
});
after(async () => {
  await client?.close();
  await registry?.stop();
});

function repo(name: string): RemoteRepository {
  return client.repository({ registry: registry.host, repository: name });
}

async function pushBytes(r: RemoteRepository, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const { desc } = bytesDescriptor(bytes, mediaType);
  await r.push(desc, Readable.from([bytes]));
  return desc;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** config + one layer + manifest of the given flavour, manifest pushed under `tag`. */
async function pushImage(
  r: RemoteRepository,
  tag: string,
  flavour: { manifest: string; config: string; layer: string },
  seed: string,
): Promise<{ desc: Descriptor; bytes: Buffer }> {
  const config = await pushBytes(r, json({ architecture: 'amd64', os: 'linux', seed }), flavour.config);
  const layer = await pushBytes(r, Buffer.from(`layer ${seed}`), flavour.layer);
  const bytes = json({ schemaVersion: 2, mediaType: flavour.manifest, config, layers: [layer] });
  const { desc } = bytesDescriptor(bytes, flavour.manifest);
  await r.pushReference(desc, bytes, tag);
  return { desc, bytes };
}

const OCI = { manifest: MediaType.ociManifest, config: MediaType.ociConfig, layer: MediaType.ociLayerGzip };
const DOCKER = { manifest: MediaType.dockerManifest, config: MediaType.dockerConfig, layer: MediaType.dockerLayerGzip };

describe('blobs', () => {
  test('a small blob goes up, comes back byte for byte, and exists', async () => {
    const r = repo('lab/blobs');
    const bytes = Buffer.from('hello airlock\n');
    const { desc } = bytesDescriptor(bytes, 'application/octet-stream');
    assert.equal(await r.exists(desc), false);
    await r.push(desc, Readable.from([bytes]));
    assert.equal(await r.exists(desc), true);
    assert.deepEqual(await readAll(await r.fetch(desc)), bytes);
  });

  test('pushing a blob that is already there sends nothing and leaves the source unread', async () => {
    const r = repo('lab/blobs');
    const bytes = Buffer.from('already here');
    const desc = await pushBytes(r, bytes, 'application/octet-stream');
    let reads = 0;
    const source = new Readable({
      read() {
        reads++;
        this.push(bytes);
        this.push(null);
      },
    });
    await r.push(desc, source);
    assert.equal(reads, 0);
    assert.equal(source.destroyed, true);
  });

  test('a 40 MiB blob streams up and down and keeps its digest', async () => {
    const r = repo('lab/large');
    const size = 40 * 1024 * 1024;
    const desc = await patternDescriptor(size, 7);
    await r.push(desc, patternStream(size, 7));
    assert.equal(await r.exists(desc), true);
    const got = await digestOfStream(await r.fetch(desc));
    assert.deepEqual(got, { digest: desc.digest, size });
  });

  test('a source that lies about its content is refused before the registry stores it', async () => {
    const r = repo('lab/blobs');
    const desc = { mediaType: 'application/octet-stream', digest: digestOf('the truth'), size: 9 };
    await assert.rejects(r.push(desc, Readable.from([Buffer.from('a lie!!!!')])), (e: unknown) => {
      assert.ok(e instanceof IntegrityError);
      assert.equal(e.code, 'DIGEST_MISMATCH');
      assert.match(e.message, new RegExp(`blob ${desc.digest}`));
      return true;
    });
    assert.equal(await r.exists(desc), false);
  });

  test('a large source that lies fails with IntegrityError and nothing is stored', async () => {
    const r = repo('lab/large');
    const size = 3 * 1024 * 1024;
    const real = await patternDescriptor(size, 11);
    const claimed = { ...real, digest: digestOf('something else') };
    await assert.rejects(r.push(claimed, patternStream(size, 11)), (e: unknown) => {
      assert.ok(e instanceof IntegrityError, String(e));
      assert.equal(e.code, 'DIGEST_MISMATCH');
      return true;
    });
    assert.equal(await r.exists(claimed), false);
  });

  test('a download piped into an upload on the same host works even with one slot per host', async () => {
    const one = new RegistryClient({ credentials: noCredentials, concurrency: 1 });
    try {
      const size = 5 * 1024 * 1024;
      const desc = await patternDescriptor(size, 21);
      await repo('lab/copy-src').push(desc, patternStream(size, 21));
      const src = one.repository({ registry: registry.host, repository: 'lab/copy-src' });
      const dst = one.repository({ registry: registry.host, repository: 'lab/copy-dst' });
      await dst.push(desc, await src.fetch(desc));
      assert.equal(await repo('lab/copy-dst').exists(desc), true);
      // already there: the download stream handed in is dropped unread, without an unhandled error
      await dst.push(desc, await src.fetch(desc));
      await new Promise((r) => setImmediate(r));
    } finally {
      await one.close();
    }
  });

  test('fetchFrom gives the raw bytes from an offset on', async () => {
    const r = repo('lab/blobs');
    const bytes = Buffer.from('0123456789abcdef');
    const desc = await pushBytes(r, bytes, 'application/octet-stream');
    assert.equal((await readAll(await r.fetchFrom(desc, 10))).toString(), 'abcdef');
    assert.equal((await readAll(await r.fetchFrom(desc, 16))).length, 0);
  });

  test('a missing blob is a not-found error naming blob and repository', async () => {
    const r = repo('lab/blobs');
    const desc = { mediaType: 'application/octet-stream', digest: digestOf('never pushed'), size: 12 };
    await assert.rejects(r.fetch(desc), (e: unknown) => {
      assert.ok(e instanceof RegistryError);
      assert.equal(e.status, 404);
      assert.equal(e.exitCode, ExitCode.notFound);
      assert.equal(e.message, `blob ${desc.digest} not found in ${registry.host}/lab/blobs (BLOB_UNKNOWN)`);
      return true;
    });
  });
});

describe('manifests', () => {
  test('an OCI image by tag and by digest: resolve, fetch exact bytes, fetch(desc)', async () => {
    const r = repo('lab/oci');
    const { desc, bytes } = await pushImage(r, '1.0', OCI, 'oci');
    assert.deepEqual(await r.resolve('1.0'), { mediaType: MediaType.ociManifest, digest: desc.digest, size: desc.size });
    assert.deepEqual(await r.resolve(desc.digest), { mediaType: MediaType.ociManifest, digest: desc.digest, size: desc.size });
    const byTag = await r.fetchManifest('1.0');
    assert.deepEqual(byTag.bytes, bytes);
    assert.deepEqual(byTag.descriptor, { mediaType: MediaType.ociManifest, digest: desc.digest, size: desc.size });
    assert.deepEqual((await r.fetchManifest(desc.digest)).bytes, bytes);
    assert.deepEqual(await readAll(await r.fetch(desc)), bytes);
    assert.equal(await r.exists(desc), true);
  });

  test('an OCI index over two images, pushed by tag, resolves as an index', async () => {
    const r = repo('lab/oci-index');
    const amd = await pushImage(r, 'amd64', OCI, 'amd');
    const arm = await pushImage(r, 'arm64', OCI, 'arm');
    const index = json({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { ...amd.desc, platform: { architecture: 'amd64', os: 'linux' } },
        { ...arm.desc, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    });
    const { desc } = bytesDescriptor(index, MediaType.ociIndex);
    await r.pushReference(desc, index, 'multi');
    assert.deepEqual(await r.resolve('multi'), desc);
    assert.deepEqual((await r.fetchManifest('multi')).bytes, index);
  });

  test('Docker schema 2 and a Docker manifest list keep their media types', async () => {
    const r = repo('lab/docker');
    const img = await pushImage(r, 'v2', DOCKER, 'docker');
    assert.equal((await r.resolve('v2')).mediaType, MediaType.dockerManifest);
    const list = json({
      schemaVersion: 2,
      mediaType: MediaType.dockerManifestList,
      manifests: [{ ...img.desc, platform: { architecture: 'amd64', os: 'linux' } }],
    });
    const { desc } = bytesDescriptor(list, MediaType.dockerManifestList);
    await r.pushReference(desc, list, 'list');
    assert.deepEqual(await r.resolve('list'), desc);
    const fetched = await r.fetchManifest('list');
    assert.deepEqual(fetched.bytes, list);
    assert.equal(fetched.descriptor.mediaType, MediaType.dockerManifestList);
  });

  test('an artifact with unknown config and layer media types passes through untouched', async () => {
    const r = repo('lab/artifact');
    const config = await pushBytes(r, Buffer.from('{}'), 'application/vnd.example.sbom.config.v1+json');
    const layer = await pushBytes(r, Buffer.from('{"spdxVersion":"SPDX-2.3"}'), 'application/spdx+json');
    // unusual key order and spacing: the bytes must survive exactly, never be re-serialised
    const bytes = Buffer.from(
      `{"schemaVersion":2,  "mediaType":"${MediaType.ociManifest}","artifactType":"application/spdx+json",` +
        `"config":${JSON.stringify(config)},"layers":[${JSON.stringify(layer)}],"annotations":{"z":"1","a":"2"}}`,
    );
    const { desc } = bytesDescriptor(bytes, MediaType.ociManifest);
    await r.push(desc, Readable.from([bytes]));
    await r.pushReference(desc, bytes, 'sbom');
    const got = await r.fetchManifest('sbom');
    assert.deepEqual(got.bytes, bytes);
    assert.equal(got.descriptor.digest, desc.digest);
    assert.deepEqual(await readAll(await r.fetch(layer)), Buffer.from('{"spdxVersion":"SPDX-2.3"}'));
  });

  test('a missing tag names the full image reference', async () => {
    const r = repo('lab/nope');
    for (const call of [() => r.resolve('1.0'), () => r.fetchManifest('1.0')]) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof RegistryError);
        assert.equal(e.message, `image ${registry.host}/lab/nope:1.0 not found (MANIFEST_UNKNOWN)`);
        assert.equal(e.exitCode, ExitCode.notFound);
        return true;
      });
    }
    const digest = digestOf('no such manifest');
    await assert.rejects(r.resolve(digest), { message: `image ${registry.host}/lab/nope@${digest} not found (MANIFEST_UNKNOWN)` });
  });

  test('a manifest whose bytes do not match the descriptor is refused before upload', async () => {
    const r = repo('lab/oci');
    const { desc } = bytesDescriptor(json({ schemaVersion: 2 }), MediaType.ociManifest);
    await assert.rejects(r.pushReference(desc, json({ schemaVersion: 2, x: 1 }), 'bad'), {
      name: 'IntegrityError',
      code: 'SIZE_MISMATCH',
      message: `image ${registry.host}/lab/oci:bad: expected ${desc.size} bytes, got ${desc.size + 6}`,
    });
  });

  test('a manifest referencing blobs the registry lacks is refused with the registry code', async () => {
    const r = repo('lab/oci');
    const missing = { mediaType: MediaType.ociLayerGzip, digest: digestOf('missing layer'), size: 13 };
    const cfg = await pushBytes(r, json({ os: 'linux' }), MediaType.ociConfig);
    const bytes = json({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: cfg, layers: [missing] });
    const { desc } = bytesDescriptor(bytes, MediaType.ociManifest);
    await assert.rejects(r.pushReference(desc, bytes, 'broken'), (e: unknown) => {
      assert.ok(e instanceof RegistryError);
      assert.equal(e.status, 400);
      assert.equal(e.registryCode, 'MANIFEST_BLOB_UNKNOWN');
      // airlock's own code follows the status: a 400 is a refused request, exit 2.
      assert.equal(e.code, 'REGISTRY_REFUSED');
      assert.equal(e.exitCode, ExitCode.usage);
      assert.match(e.message, /cannot push image .*lab\/oci:broken/);
      return true;
    });
  });

  test('bad tags and digests are usage errors before any request', async () => {
    const r = repo('lab/oci');
    await assert.rejects(r.resolve('-bad'), (e: unknown) => e instanceof UsageError && e.code === 'TAG_INVALID');
    await assert.rejects(r.resolve('sha256:1234'), (e: unknown) => e instanceof UsageError && e.code === 'DIGEST_INVALID');
    assert.throws(() => client.repository({ registry: registry.host, repository: 'Upper/Case' }), { name: 'UsageError', code: 'REFERENCE_INVALID', message: /invalid repository "Upper\/Case"/ });
  });
});

describe('mount and tags', () => {
  test('mount links a blob from another repository without uploading it', async () => {
    const from = repo('lab/mount-src');
    const to = repo('lab/mount-dst');
    const desc = await pushBytes(from, Buffer.from('shared layer'), MediaType.ociLayerGzip);
    assert.equal(await to.exists(desc), false);
    assert.equal(await to.mount(desc, 'lab/mount-src'), true);
    assert.equal(await to.exists(desc), true);
    assert.deepEqual(await readAll(await to.fetch(desc)), Buffer.from('shared layer'));
  });

  test('a mount the registry refuses returns false, and the next push uses the session it opened', async () => {
    const to = repo('lab/mount-dst');
    const bytes = Buffer.from('not in the source repo');
    const { desc } = bytesDescriptor(bytes, MediaType.ociLayerGzip);
    assert.equal(await to.mount(desc, 'lab/mount-src'), false);
    await to.push(desc, Readable.from([bytes]));
    assert.deepEqual(await readAll(await to.fetch(desc)), bytes);
  });

  test('listTags lists every tag; an unknown repository is a not-found error', async () => {
    const r = repo('lab/tags');
    const img = await pushImage(r, 'a', OCI, 'tags');
    for (const t of ['b', 'c', 'v1.2.3']) await r.pushReference(img.desc, img.bytes, t);
    assert.deepEqual((await r.listTags()).sort(), ['a', 'b', 'c', 'v1.2.3']);
    await assert.rejects(repo('lab/no-such-repo').listTags(), (e: unknown) => {
      assert.ok(e instanceof RegistryError);
      assert.equal(e.message, `repository ${registry.host}/lab/no-such-repo not found (NAME_UNKNOWN)`);
      return true;
    });
  });
});

describe('cancellation', () => {
  test('an aborted signal stops a request before it starts', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(repo('lab/oci').resolve('1.0', { signal: ac.signal }), { name: 'AbortedError' });
  });
});
