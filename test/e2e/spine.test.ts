// The spine end to end, as a user runs it: lock → pack → verify → inspect → push, against real
// docker-registry processes, with skopeo reading the bundle.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile, copyFile, open, stat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildArtifact, buildImage, buildIndex, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { skopeo } from '../helpers/skopeo.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { MANIFEST_MEDIA_TYPES } from '../../src/core/media-types.ts';

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

async function remoteDigest(reg: RunningRegistry, repo: string, tag: string): Promise<string | undefined> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT } });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

describe('lock, pack, verify, inspect, push', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let dir: string;
  const images: Record<string, BuiltImage> = {};
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-e2e-'));
    const base = { random: { bytes: 3 * 1024 * 1024, seed: 1 } };
    images.web = buildImage({ layers: [base, { files: { 'srv/index.html': '<h1>shop</h1>' } }], format: 'oci' });
    images.api = buildImage({ layers: [base, { random: { bytes: 1024 * 1024, seed: 2 } }], format: 'docker' });
    images.multi = buildIndex([
      buildImage({ layers: [base, { files: { 'etc/arch': 'amd64' } }], platform: 'linux/amd64' }),
      buildImage({ layers: [{ random: { bytes: 512 * 1024, seed: 3 } }, { files: { 'etc/arch': 'arm64' } }], platform: 'linux/arm64' }),
    ]);
    images.dmulti = buildIndex(
      [
        buildImage({ layers: [{ files: { a: '1' } }], platform: 'linux/amd64', format: 'docker' }),
        buildImage({ layers: [{ files: { a: '2' } }], platform: 'linux/arm64', format: 'docker' }),
      ],
      { format: 'docker' },
    );
    images.artifact = buildArtifact({ artifactType: 'application/vnd.example.sbom.v1', files: [{ mediaType: 'application/vnd.example.sbom.layer.v1+json', bytes: Buffer.from('{"sbom":true}') }] });
    await seedRegistry(src.url, 'shop/web', '1.0', images.web);
    await seedRegistry(src.url, 'shop/api', '2.1', images.api);
    await seedRegistry(src.url, 'shop/multi', '3', images.multi);
    await seedRegistry(src.url, 'tools/dmulti', 'v1', images.dmulti);
    await seedRegistry(src.url, 'shop/sbom', 'v1', images.artifact);
    await writeFile(
      join(dir, 'airlock.yaml'),
      [
        'apiVersion: airlock.dev/v1alpha1',
        'kind: Bundle',
        'metadata: {name: shop, version: 1.4.0}',
        'images:',
        `  - ${src.host}/shop/web:1.0`,
        `  - ${src.host}/shop/api:2.1`,
        `  - ${src.host}/shop/multi:3`,
        `  - ${src.host}/tools/dmulti:v1@${images.dmulti.root.digest}`,
        `  - ${src.host}/shop/sbom:v1`,
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('lock pins every image and is deterministic', async () => {
    const r = await airlock(['lock', '-f', join(dir, 'airlock.yaml')], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const text = await readFile(join(dir, 'airlock.lock'), 'utf8');
    for (const [name, img] of Object.entries(images)) assert.ok(text.includes(img.root.digest), `${name} digest in lock`);
    assert.match(text, /platform: linux\/arm64/);
    const again = await airlock(['lock', '-f', join(dir, 'airlock.yaml')], { env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await readFile(join(dir, 'airlock.lock'), 'utf8'), text, 'same lock twice');
  });

  test('pack twice gives the same bytes; size is about the unique blob bytes', async () => {
    const a = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'a.tar'), '--json'], { env: env() });
    assert.equal(a.code, 0, a.stderr);
    const res = resultOf(a.stdout);
    assert.equal(res.images, 5);
    // A second pack from an empty cache must produce identical bytes.
    const b = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'b.tar')], { env: { ...env(), AIRLOCK_CACHE: join(dir, 'cache2') } });
    assert.equal(b.code, 0, b.stderr);
    const hash = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');
    assert.equal(await hash(join(dir, 'a.tar')), await hash(join(dir, 'b.tar')));
    const unique = new Map<string, number>();
    for (const img of Object.values(images)) for (const bl of img.blobs) unique.set(bl.descriptor.digest, bl.descriptor.size);
    const uniqueBytes = [...unique.values()].reduce((x, y) => x + y, 0);
    const size = (await stat(join(dir, 'a.tar'))).size;
    assert.ok(size >= uniqueBytes && size < uniqueBytes + 200 * 1024, `bundle ${size} vs unique ${uniqueBytes}`);
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.tmp')), [], 'no temp files left');
  });

  test('pack from a warm cache downloads nothing; a damaged cached layer is fetched again; same bytes', async () => {
    const cache = join(dir, 'cache');
    // api's own layer (1 MiB of random bytes): no other image shares it.
    const shared = new Set(images.web!.blobs.map((b) => b.descriptor.digest));
    const layer = images.api!.blobs.map((b) => b.descriptor).filter((d) => !shared.has(d.digest)).sort((a, b) => b.size - a.size)[0]!;
    const path = join(cache, 'blobs', 'sha256', layer.digest.slice('sha256:'.length));
    const fh = await open(path, 'r+');
    await fh.write(Buffer.from([0xff, 0x00, 0xff]), 0, 3, 4096);
    await fh.close();
    const c = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'c.tar'), '--json'], { env: env() });
    assert.equal(c.code, 0, c.stderr);
    assert.equal(resultOf(c.stdout).downloaded, layer.size, 'only the damaged layer is downloaded again');
    const hash = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');
    assert.equal(await hash(join(dir, 'c.tar')), await hash(join(dir, 'a.tar')));
    assert.equal(createHash('sha256').update(await readFile(path)).digest('hex'), layer.digest.slice('sha256:'.length), 'the cache holds the right bytes again');
    const d = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'c.tar'), '--json'], { env: env() });
    assert.equal(d.code, 0, d.stderr);
    assert.equal(resultOf(d.stdout).downloaded, 0);
    assert.equal(await hash(join(dir, 'c.tar')), await hash(join(dir, 'a.tar')), 'overwriting a bundle gives the same bytes');
  });

  test('verify passes; inspect --json lists every image', async () => {
    const v = await airlock(['verify', join(dir, 'a.tar')]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
    assert.match(v.stdout, /OK/);
    const i = await airlock(['inspect', join(dir, 'a.tar'), '--json']);
    assert.equal(i.code, 0, i.stderr);
    const info = resultOf(i.stdout);
    const byRef = new Map((info.images as { reference: string; digest: string; platforms: string[] }[]).map((x) => [x.reference, x]));
    assert.equal(byRef.get(`${src.host}/shop/web:1.0`)?.digest, images.web!.root.digest);
    assert.equal(byRef.get(`${src.host}/shop/multi:3`)?.digest, images.multi!.root.digest);
    assert.deepEqual(byRef.get(`${src.host}/shop/multi:3`)?.platforms, ['linux/amd64', 'linux/arm64']);
    assert.ok(info.totals.sharedBytes >= 3 * 1024 * 1024, 'the shared base layer is counted as shared');
  });

  test('skopeo reads the bundle as oci-archive with digests kept', async () => {
    const out = join(dir, 'skopeo-oci');
    await skopeo(['copy', '--all', '--preserve-digests', `oci-archive:${join(dir, 'a.tar')}:${src.host}/shop/multi:3`, `oci:${out}:multi`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]!.digest, images.multi!.root.digest);
  });

  test('push into an empty registry keeps every digest; a second push skips everything', async () => {
    const p = await airlock(['push', join(dir, 'a.tar'), `${dst.host}/mirror`, '--json']);
    assert.equal(p.code, 0, p.stderr);
    const first = resultOf(p.stdout);
    const pushed = first.images as { blobs: { copied: number; mounted: number } }[];
    // The shared base layer crosses once and is mounted into the other repositories.
    assert.ok(pushed.reduce((a, i) => a + i.blobs.mounted, 0) >= 2, JSON.stringify(pushed));
    assert.ok(first.bytes <= (await stat(join(dir, 'a.tar'))).size, 'no byte uploaded twice');
    assert.equal(await remoteDigest(dst, 'mirror/shop/web', '1.0'), images.web!.root.digest);
    assert.equal(await remoteDigest(dst, 'mirror/shop/api', '2.1'), images.api!.root.digest);
    assert.equal(await remoteDigest(dst, 'mirror/shop/multi', '3'), images.multi!.root.digest);
    assert.equal(await remoteDigest(dst, 'mirror/tools/dmulti', 'v1'), images.dmulti!.root.digest);
    assert.equal(await remoteDigest(dst, 'mirror/shop/sbom', 'v1'), images.artifact!.root.digest);
    const again = await airlock(['push', join(dir, 'a.tar'), `${dst.host}/mirror`, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const res = resultOf(again.stdout);
    for (const img of res.images as { blobs: { copied: number } }[]) assert.equal(img.blobs.copied, 0, 'nothing uploaded twice');
  });

  test('a flipped byte fails verify, naming the blob and its images', async () => {
    const bad = join(dir, 'bad.tar');
    await copyFile(join(dir, 'a.tar'), bad);
    // Flip one byte inside the shared base layer's content (its tar header names it).
    const bytes = await readFile(bad);
    const layer = images.web!.blobs.reduce((a, x) => (x.descriptor.size > a.descriptor.size ? x : a));
    const header = bytes.indexOf(Buffer.from(`blobs/sha256/${layer.descriptor.digest.slice(7)}`));
    assert.ok(header > 0, 'layer entry found in the tar');
    const pos = header + 512 + 1000;
    const fh = await open(bad, 'r+');
    await fh.write(Buffer.from([bytes[pos]! ^ 0xff]), 0, 1, pos);
    await fh.close();
    const v = await airlock(['verify', bad, '--json']);
    assert.equal(v.code, 5, v.stdout + v.stderr);
    const res = resultOf(v.stdout);
    assert.equal(res.ok, false);
    const problem = (res.problems as { digest?: string; images: string[] }[]).find((p) => p.digest === layer.descriptor.digest);
    assert.ok(problem, 'names the damaged blob');
    assert.ok(problem.images.includes(`${src.host}/shop/web:1.0`) && problem.images.includes(`${src.host}/shop/api:2.1`), 'names the images using it');
  });

  test('a missing image fails lock with its name and pack leaves no bundle', async () => {
    const bad = join(dir, 'missing');
    await rm(bad, { recursive: true, force: true });
    await writeFile(join(dir, 'missing.yaml'), `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: x}\nimages:\n  - ${src.host}/shop/nope:9.9\n`);
    const r = await airlock(['pack', '--lock', '-f', join(dir, 'missing.yaml'), '-o', join(dir, 'missing.tar')], { env: env() });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`${src.host}/shop/nope:9\\.9`));
    await assert.rejects(stat(join(dir, 'missing.tar')), { code: 'ENOENT' }, 'no bundle written');
  });

  test('a stale lock is refused with a hint', async () => {
    const spec = await readFile(join(dir, 'airlock.yaml'), 'utf8');
    await writeFile(join(dir, 'airlock.yaml'), spec.replace(`  - ${src.host}/shop/sbom:v1\n`, ''));
    try {
      const r = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'stale.tar')], { env: env() });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /shop\/sbom:v1 is in the lock but no longer in the spec/);
      assert.match(r.stderr, /airlock lock/);
    } finally {
      await writeFile(join(dir, 'airlock.yaml'), spec);
    }
  });

  test('platforms filter carries only the chosen platform and push still works', async () => {
    const pdir = join(dir, 'plat');
    await rm(pdir, { recursive: true, force: true });
    await mkdir(pdir);
    await writeFile(join(pdir, 'airlock.yaml'), `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: plat, version: '1'}\nplatforms: [linux/amd64]\nimages:\n  - ${src.host}/shop/multi:3\n`);
    const r = await airlock(['pack', '--lock', '-f', join(pdir, 'airlock.yaml'), '-o', join(pdir, 'p.tar'), '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const lock = await readFile(join(pdir, 'airlock.lock'), 'utf8');
    assert.match(lock, /bundled:/);
    assert.doesNotMatch(lock, /linux\/arm64/);
    const i = resultOf((await airlock(['inspect', join(pdir, 'p.tar'), '--json'])).stdout);
    assert.deepEqual(i.images[0].platforms, ['linux/amd64']);
    const p = await airlock(['push', join(pdir, 'p.tar'), `${dst.host}/plat`]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(await remoteDigest(dst, 'plat/shop/multi', '3'), i.images[0].digest);
  });

  test('two sources mapping to one target are refused before anything is sent', async () => {
    const cdir = join(dir, 'conflict');
    await mkdir(cdir, { recursive: true });
    await seedRegistry(src.url, 'other/web', '1.0', images.web!);
    await seedRegistry(src.url, 'web', '1.0', images.web!);
    // 127.0.0.1:P/web:1.0 and localhost:P/web:1.0 both map to TARGET/web:1.0.
    const port = src.host.split(':')[1];
    await writeFile(join(cdir, 'airlock.yaml'), `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: c}\nimages:\n  - ${src.host}/web:1.0\n  - localhost:${port}/web:1.0\n`);
    const r = await airlock(['pack', '--lock', '-f', join(cdir, 'airlock.yaml'), '-o', join(cdir, 'c.tar')], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const p = await airlock(['push', join(cdir, 'c.tar'), `${dst.host}/conflict`]);
    assert.equal(p.code, 8, p.stderr);
    assert.match(p.stderr, /would both be pushed to/);
    const cat = await (await fetch(`${dst.url}/v2/_catalog`)).json() as { repositories: string[] };
    assert.ok(!cat.repositories.some((r) => r.startsWith('conflict/')), 'nothing was pushed');
  });
});
