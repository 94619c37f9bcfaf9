// The synthetic image builder (test/helpers/images.ts) checked against real tools: a real
// docker-registry receives the images, real skopeo reads them back (Go's gzip and digest checks),
// GNU tar reads the layers.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { digestOf } from '../../src/core/digest.ts';
import { MediaType } from '../../src/core/media-types.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import {
  blobBytes,
  blobStream,
  buildArtifact,
  buildImage,
  buildIndex,
  findBlob,
  layersOf,
  seedRegistry,
  writeOciLayout,
  FILE_LAYER_THRESHOLD,
  type BuiltImage,
  type LayerSpec,
} from '../helpers/images.ts';
import { skopeo, skopeoDigest, skopeoInspectRaw, skopeoIsolation } from '../helpers/skopeo.ts';

const run = promisify(execFile);

const base: LayerSpec = { random: { bytes: 300_000, seed: 42 } };
const appFiles: LayerSpec = {
  files: { 'etc/os-release': 'ID=airlock-test\n', 'usr/local/bin/app': Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]), 'srv/www/index.html': '<h1>hi</h1>' },
};

function rootDoc(img: BuiltImage): Record<string, unknown> {
  return JSON.parse(blobBytes(findBlob(img, img.root.digest)).toString('utf8')) as Record<string, unknown>;
}

function configOf(img: BuiltImage): { architecture: string; os: string; variant?: string; rootfs: { diff_ids: string[] }; config: { Labels?: Record<string, string> } } {
  const doc = rootDoc(img) as { config: { digest: string } };
  return JSON.parse(blobBytes(findBlob(img, doc.config.digest)).toString('utf8'));
}

/** Entry names of an uncompressed ustar archive, read the simple way. */
function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const field = (start: number, len: number) => h.subarray(start, start + len).toString('utf8').replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    names.push(prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    const size = parseInt(field(124, 12), 8);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

describe('building', () => {
  test('the same options give the same digests; labels make another image over the same layers', () => {
    const a = buildImage({ layers: [base, appFiles] });
    const b = buildImage({ layers: [base, appFiles] });
    assert.equal(a.root.digest, b.root.digest);
    const c = buildImage({ layers: [base, appFiles], labels: { variant: 'c' } });
    assert.notEqual(c.root.digest, a.root.digest);
    assert.deepEqual(layersOf(c).map((l) => l.descriptor.digest), layersOf(a).map((l) => l.descriptor.digest));
    assert.deepEqual(configOf(c).config.Labels, { variant: 'c' });
  });

  test('layers are gzip-compressed ustar archives whose sha256 is the diff_id in the config', () => {
    const img = buildImage({ layers: [appFiles, base] });
    const layers = layersOf(img);
    const tars = layers.map((l) => gunzipSync(blobBytes(l)));
    assert.deepEqual(configOf(img).rootfs.diff_ids, tars.map((t) => digestOf(t)));
    assert.deepEqual(layers.map((l) => l.diffId), configOf(img).rootfs.diff_ids);
    assert.deepEqual(tarNames(tars[0]!), ['etc/', 'etc/os-release', 'srv/', 'srv/www/', 'srv/www/index.html', 'usr/', 'usr/local/', 'usr/local/bin/', 'usr/local/bin/app']);
    assert.deepEqual(tarNames(tars[1]!), ['random/', 'random/42.bin']);
  });

  test('random payloads are incompressible, so layer sizes are realistic', () => {
    const layer = layersOf(buildImage({ layers: [{ random: { bytes: 2_000_000, seed: 7 } }] }))[0]!;
    assert.ok(layer.descriptor.size > 2_000_000, `compressed ${layer.descriptor.size} bytes`);
    assert.ok(layer.descriptor.size < 2_010_000);
    const other = layersOf(buildImage({ layers: [{ random: { bytes: 2_000_000, seed: 8 } }] }))[0]!;
    assert.notEqual(other.descriptor.digest, layer.descriptor.digest);
  });

  test('config records platform and one history entry per layer', () => {
    const img = buildImage({ layers: [base, appFiles], platform: 'linux/arm64/v8' });
    const cfg = configOf(img) as ReturnType<typeof configOf> & { history: unknown[] };
    assert.equal(cfg.os, 'linux');
    assert.equal(cfg.architecture, 'arm64');
    assert.equal(cfg.variant, 'v8');
    assert.equal(cfg.history.length, 2);
    assert.deepEqual(img.platforms, ['linux/arm64/v8']);
  });

  test('docker format uses Docker media types over the very same layer bytes', () => {
    const oci = buildImage({ layers: [base] });
    const docker = buildImage({ layers: [base], format: 'docker' });
    assert.equal(docker.root.mediaType, MediaType.dockerManifest);
    assert.equal(layersOf(docker)[0]!.descriptor.mediaType, MediaType.dockerLayerGzip);
    assert.equal(layersOf(oci)[0]!.descriptor.mediaType, MediaType.ociLayerGzip);
    assert.equal(layersOf(docker)[0]!.descriptor.digest, layersOf(oci)[0]!.descriptor.digest);
    assert.equal((rootDoc(docker).config as { mediaType: string }).mediaType, MediaType.dockerConfig);
  });

  test('baseLayers reuse another image’s layers, converting media types between formats', () => {
    const parent = buildImage({ layers: [base, appFiles] });
    const child = buildImage({ layers: [{ files: { 'etc/child': '1' } }], baseLayers: layersOf(parent), format: 'docker' });
    const digests = layersOf(child).map((l) => l.descriptor.digest);
    assert.deepEqual(digests.slice(0, 2), layersOf(parent).map((l) => l.descriptor.digest));
    assert.equal(digests.length, 3);
    assert.ok(layersOf(child).every((l) => l.descriptor.mediaType === MediaType.dockerLayerGzip));
    assert.deepEqual(configOf(child).rootfs.diff_ids.slice(0, 2), configOf(parent).rootfs.diff_ids);
  });

  test('an index lists each image with its platform and carries every blob once', () => {
    const amd = buildImage({ layers: [base, { files: { arch: 'amd64' } }] });
    const arm = buildImage({ layers: [base, { files: { arch: 'arm64' } }], platform: 'linux/arm64/v8' });
    const idx = buildIndex([amd, arm]);
    assert.equal(idx.root.mediaType, MediaType.ociIndex);
    assert.deepEqual(idx.platforms, ['linux/amd64', 'linux/arm64/v8']);
    const doc = rootDoc(idx) as { manifests: { digest: string; platform: unknown }[] };
    assert.deepEqual(doc.manifests.map((m) => m.digest), [amd.root.digest, arm.root.digest]);
    assert.deepEqual(doc.manifests[1]!.platform, { architecture: 'arm64', os: 'linux', variant: 'v8' });
    const digests = idx.blobs.map((b) => b.descriptor.digest);
    assert.equal(new Set(digests).size, digests.length, 'no duplicates');
    assert.equal(digests.length, 1 + 2 * 2 + 1 + 2, 'index, 2 manifests + 2 configs, shared base, 2 app layers');
    assert.equal(buildIndex([amd, arm], { format: 'docker' }).root.mediaType, MediaType.dockerManifestList);
  });

  test('an artifact has the empty config, artifactType and its files as layers', () => {
    const art = buildArtifact({ artifactType: 'application/vnd.example.sbom', files: [{ mediaType: 'application/spdx+json', bytes: Buffer.from('{}') }] });
    const doc = rootDoc(art) as { artifactType: string; config: { mediaType: string; digest: string; size: number } };
    assert.equal(doc.artifactType, 'application/vnd.example.sbom');
    assert.deepEqual(doc.config, { mediaType: MediaType.ociEmpty, digest: digestOf('{}'), size: 2 });
    assert.deepEqual(art.platforms, []);
    assert.equal(art.root.artifactType, 'application/vnd.example.sbom');
  });

  test('refuses paths that would escape or are ambiguous', () => {
    for (const p of ['../etc/passwd', 'a/../b', 'a//b', '', 'dir/']) {
      assert.throws(() => buildImage({ layers: [{ files: { [p]: 'x' } }] }), /invalid layer file path/);
    }
    assert.throws(() => buildImage({ layers: [{ files: { [`${'d'.repeat(10)}/${'f'.repeat(101)}`]: 'x' } }] }), /too long for ustar/);
    assert.throws(() => buildImage({ layers: [], baseLayers: [findBlob(buildArtifact({ artifactType: 'a/b', files: [] }), digestOf('{}'))] }), /not a layer/);
  });
});

describe('against a real registry and skopeo', () => {
  let reg: RunningRegistry;
  let dir: string;
  const ociImage = buildImage({ layers: [base, appFiles], labels: { 'org.opencontainers.image.title': 'app' } });
  const dockerImage = buildImage({ layers: [base, { files: { 'etc/app.conf': 'x=1\n' } }], format: 'docker' });
  const amd = buildImage({ layers: [base, { files: { arch: 'amd64' } }] });
  const arm = buildImage({ layers: [base, { files: { arch: 'arm64' } }], platform: 'linux/arm64' });
  const multi = buildIndex([amd, arm]);
  const artifact = buildArtifact({
    artifactType: 'application/vnd.example.sbom.v1',
    files: [
      { mediaType: 'application/spdx+json', bytes: Buffer.from('{"spdxVersion":"SPDX-2.3"}'), annotations: { 'org.opencontainers.image.title': 'sbom.json' } },
      { mediaType: 'application/vnd.example.unknown', bytes: Buffer.from('opaque') },
    ],
  });
  const all = { oci: ociImage, docker: dockerImage, multi, artifact };
  const ref = (name: string, tagOrDigest = 'v1') => `docker://${reg.host}/seed/${name}${tagOrDigest.includes(':') ? '@' : ':'}${tagOrDigest}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-images-test-'));
    reg = await startRegistry();
    for (const [name, img] of Object.entries(all)) await seedRegistry(reg.url, `seed/${name}`, 'v1', img);
  });
  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('skopeo reads exactly the bytes that were built, so every digest matches', async () => {
    for (const [name, img] of Object.entries(all)) {
      const raw = await skopeoInspectRaw(ref(name));
      assert.deepEqual(raw, blobBytes(findBlob(img, img.root.digest)), name);
      assert.equal(digestOf(raw), img.root.digest, name);
    }
  });

  test('index children are stored by digest and resolve per platform', async () => {
    assert.equal(await skopeoDigest(ref('multi', arm.root.digest)), arm.root.digest);
    const info = JSON.parse(await skopeo(['--override-arch', 'arm64', '--override-os', 'linux', 'inspect', '--tls-verify=false', ref('multi')])) as {
      Architecture: string;
      Digest: string;
    };
    assert.equal(info.Architecture, 'arm64');
  });

  test('skopeo copies verify every blob and keep every digest (OCI layout; dir: for Docker format)', async () => {
    for (const [name, img] of Object.entries(all)) {
      const out = join(dir, `copy-${name}`);
      // An OCI layout cannot hold Docker manifests (skopeo would convert them): dir: keeps them as they are.
      const docker = img.root.mediaType === MediaType.dockerManifest;
      await skopeo(['copy', '--all', '--src-tls-verify=false', ref(name), docker ? `dir:${out}` : `oci:${out}:v1`]);
      const rootDigest = docker
        ? digestOf(await readFile(join(out, 'manifest.json')))
        : (JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]!.digest;
      assert.equal(rootDigest, img.root.digest, name);
      for (const b of img.blobs.filter((x) => x.descriptor.digest !== img.root.digest)) {
        const s = await stat(docker ? join(out, b.descriptor.digest.slice(7)) : join(out, 'blobs', 'sha256', b.descriptor.digest.slice(7)));
        assert.equal(s.size, b.descriptor.size, `${name}: ${b.descriptor.digest}`);
      }
    }
  });

  test("Go's gzip decompresses every layer to its config diff_id, and GNU tar reads the files", async () => {
    for (const name of ['oci', 'docker'] as const) {
      const out = join(dir, `decompressed-${name}`);
      await skopeo(['copy', '--dest-decompress', '--src-tls-verify=false', ref(name), `dir:${out}`]);
      const m = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
      const cfg = JSON.parse(await readFile(join(out, m.config.digest.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] } };
      assert.deepEqual(m.layers.map((l) => l.digest), cfg.rootfs.diff_ids, name);
    }
    const out = join(dir, 'decompressed-oci');
    const appLayer = join(out, configOf(ociImage).rootfs.diff_ids[1]!.slice(7));
    const listing = (await run('tar', ['-tvf', appLayer])).stdout;
    assert.match(listing, /-rw-r--r-- root\/root\s+16 1970-01-01 00:00 etc\/os-release/);
    assert.equal((await run('tar', ['-xOf', appLayer, 'etc/os-release'])).stdout, 'ID=airlock-test\n');
  });

  test('seeding again, or into another repository, succeeds and changes nothing', async () => {
    await seedRegistry(reg.url, 'seed/oci', 'v1', ociImage);
    await seedRegistry(reg.url, 'seed/other', 'v2', ociImage);
    assert.equal(await skopeoDigest(ref('other', 'v2')), ociImage.root.digest);
  });

  test('with workDir, large layers are files: streamed when seeding, cached when built again', async () => {
    const work = join(dir, 'work');
    const spec: LayerSpec = { random: { bytes: FILE_LAYER_THRESHOLD + 1_000_000, seed: 99 } };
    const big = buildImage({ layers: [spec, { files: { small: 'x' } }], workDir: work });
    const [bigLayer, smallLayer] = layersOf(big);
    assert.equal(bigLayer!.bytes, undefined);
    assert.ok(bigLayer!.path?.startsWith(work));
    assert.ok(smallLayer!.bytes, 'small layers stay in memory');
    const h = createHash('sha256');
    for await (const c of blobStream(bigLayer!)) h.update(c as Buffer);
    assert.equal(`sha256:${h.digest('hex')}`, bigLayer!.descriptor.digest);

    // Cached by spec: built again, the layer is the very file written the first time, not a new one.
    const first = await stat(bigLayer!.path!);
    const again = buildImage({ layers: [spec], workDir: work });
    assert.equal(layersOf(again)[0]!.path, bigLayer!.path);
    const second = await stat(bigLayer!.path!);
    assert.deepEqual([second.ino, second.mtimeMs], [first.ino, first.mtimeMs], 'not written again');
    assert.equal(layersOf(again)[0]!.descriptor.digest, bigLayer!.descriptor.digest);
    assert.equal((await readdir(work)).filter((f) => f.endsWith('.tar.gz')).length, 1);

    await seedRegistry(reg.url, 'seed/big', 'v1', big);
    assert.equal(await skopeoDigest(ref('big')), big.root.digest);
    await skopeo(['copy', '--src-tls-verify=false', ref('big'), `oci:${join(dir, 'copy-big')}:v1`]);
  });

  test('writeOciLayout writes a layout skopeo reads, and adds to it', async () => {
    const layout = join(dir, 'layout');
    await writeOciLayout(layout, [
      { refName: 'app', image: ociImage },
      { refName: 'multi', image: multi },
    ]);
    await writeOciLayout(layout, [{ refName: 'sbom', image: artifact }]);
    assert.equal(await skopeoDigest(`oci:${layout}:app`), ociImage.root.digest);
    assert.equal(await skopeoDigest(`oci:${layout}:multi`), multi.root.digest);
    assert.equal(await skopeoDigest(`oci:${layout}:sbom`), artifact.root.digest);
    await skopeo(['copy', '--all', `oci:${layout}:multi`, `oci:${join(dir, 'relayout')}:multi`]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: unknown[] };
    assert.equal(index.manifests.length, 3);
    assert.equal(JSON.parse(await readFile(join(layout, 'oci-layout'), 'utf8')).imageLayoutVersion, '1.0.0');
  });

  test('each skopeo run keeps its blob-info cache in its own state directory', async (t) => {
    if ((await skopeoIsolation()) === 'shared') return t.skip('no user namespaces here: skopeo shares the system cache');
    const state = join(dir, 'skopeo-state');
    await skopeo(['copy', '--src-tls-verify=false', ref('oci'), `oci:${join(dir, 'cached')}:v1`], { stateDir: state });
    assert.ok((await stat(join(state, 'data', 'containers', 'cache', 'blob-info-cache-v1.boltdb'))).size > 0);
  });

  test('skopeo failures reject with skopeo’s own message', async () => {
    await assert.rejects(skopeoInspectRaw(ref('oci', 'missing')), /skopeo inspect .* failed \(exit 1\):[\s\S]*manifest unknown/);
  });
});

describe('seedRegistry with Basic auth', () => {
  let reg: RunningRegistry;
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'airlock-images-auth-'));
    const htpasswd = join(work, 'htpasswd');
    await writeFile(htpasswd, (await run('htpasswd', ['-Bbn', 'alice', 's3cret'])).stdout);
    reg = await startRegistry({ extraConfig: async () => ({ yaml: `auth:\n  htpasswd: {realm: test, path: ${htpasswd}}` }) });
  });
  after(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('pushes with credentials and is refused without', async () => {
    const img = buildImage({ layers: [{ files: { a: 'auth' } }] });
    await assert.rejects(seedRegistry(reg.url, 'private/app', 'v1', img), /HTTP 401/);
    await seedRegistry(reg.url, 'private/app', 'v1', img, { auth: { username: 'alice', password: 's3cret' } });
    const raw = await skopeoInspectRaw(`docker://${reg.host}/private/app:v1`, ['--tls-verify=false', '--creds', 'alice:s3cret']);
    assert.equal(digestOf(raw), img.root.digest);
  });
});
