// A chart pins an image by its upstream index digest; the spec keeps one platform. The digest must
// still resolve on the isolated side: through `airlock serve` (skopeo, and containerd through a
// hosts.toml mirror, the source registry gone), in what `export k3s` writes (ctr), and after `push`
// — directly where the registry keeps the upstream index, through post-render's and rewrite's
// mapping where it refuses one whose other platforms are absent (docker-registry 2.8 does, with
// 400 MANIFEST_BLOB_UNKNOWN; it takes it once the other platforms' manifests are in the repository).
// Real docker-registry, skopeo, containerd and helm throughout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { startContainerd, type RunningContainerd } from '../helpers/containerd.ts';
import { Readable } from 'node:stream';
import { blobBytes, blobStream, buildImage, buildIndex, findBlob, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { FileStore } from '../../src/content/file-store.ts';
import { writeBundle } from '../../src/bundle/write.ts';
import { verifyBundle } from '../../src/bundle/verify.ts';
import { reduceIndex } from '../../src/core/index-reduction.ts';
import { digestOf } from '../../src/core/digest.ts';
import { skopeo, skopeoDigest } from '../helpers/skopeo.ts';
import { startServe, type RunningServe } from '../helpers/serve.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { helmPath } from '../helpers/helm.ts';
import { runHelm } from '../../src/helm/helm-runner.ts';
import { parseLock } from '../../src/spec/lock.ts';
import { openBundle } from '../../src/bundle/read.ts';
import { MANIFEST_MEDIA_TYPES } from '../../src/core/media-types.ts';

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

/** What a registry answers for a manifest reference: the digest, or the status when it has none. */
async function resolves(reg: RunningRegistry, repo: string, reference: string): Promise<string> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${reference}`, { method: 'HEAD', headers: { accept: ACCEPT } });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? 'no digest') : `HTTP ${res.status}`;
}

function deployment(image: string): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata: {name: web}',
    'spec:',
    '  selector: {matchLabels: {app: web}}',
    '  template:',
    '    metadata: {labels: {app: web}}',
    '    spec:',
    '      containers:',
    '        - name: web',
    `          image: ${image}`,
    '',
  ].join('\n');
}

describe('a digest-pinned multi-platform image, bundled for one platform', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let acc: RunningRegistry;
  let ctrd: RunningContainerd;
  let dir: string;
  let spec: string;
  let bundle: string;
  let srcHost: string;
  const servers: RunningServe[] = [];
  const images: Record<string, BuiltImage> = {};
  /** The upstream index digest (what the chart pins) and the reduced one the bundle carries. */
  let original: string;
  let reduced: string;
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), AIRLOCK_STATE: join(dir, 'state'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });
  const history = async (): Promise<Record<string, any>[]> => (await readFile(join(dir, 'state', 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);

  before(async () => {
    [src, dst, acc] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
    srcHost = src.host;
    dir = await mkdtemp(join(tmpdir(), 'airlock-pinned-'));
    ctrd = await startContainerd();
    images.amd64 = buildImage({ layers: [{ files: { 'etc/arch': 'amd64\n' } }, { random: { bytes: 96 * 1024, seed: 71 } }], platform: 'linux/amd64' });
    images.arm64 = buildImage({ layers: [{ files: { 'etc/arch': 'arm64\n' } }], platform: 'linux/arm64' });
    images.armv7 = buildImage({ layers: [{ files: { 'etc/arch': 'armv7\n' } }], platform: 'linux/arm/v7' });
    images.multi = buildIndex([images.amd64, images.arm64, images.armv7]);
    original = images.multi.root.digest;
    await seedRegistry(src.url, 'shop/multi', '3', images.multi);
    spec = join(dir, 'airlock.yaml');
    await writeFile(spec, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: pinned, version: 1.0.0}', 'platforms: [linux/amd64]', 'images:', `  - ${srcHost}/shop/multi:3`, ''].join('\n'));
    bundle = join(dir, 'p.tar');
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await Promise.all([src?.stop(), dst?.stop(), acc?.stop(), ctrd?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('lock warns that the index is reduced, naming both digests', async () => {
    const r = await airlock(['lock', '-f', spec], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const lock = parseLock(await readFile(join(dir, 'airlock.lock'), 'utf8'));
    reduced = lock.images[0]!.bundled!.digest;
    assert.notEqual(reduced, original);
    assert.ok(
      r.stderr.includes(`warning: ${srcHost}/shop/multi:3: the index lists 3 platforms, the bundle carries linux/amd64 (reduced index ${reduced}); references pinned to the upstream digest ${original} resolve through airlock serve`),
      r.stderr,
    );
  });

  test('lock --platform overrides the spec; pack takes the lock with the same --platform only', async () => {
    const sub = join(dir, 'arm');
    await mkdir(sub, { recursive: true });
    const armSpec = join(sub, 'airlock.yaml');
    await writeFile(armSpec, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: arm, version: 1.0.0}', 'images:', `  - ${srcHost}/shop/multi:3`, ''].join('\n'));
    const bad = await airlock(['lock', '-f', armSpec, '--platform', 'linux'], { env: env() });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--platform "linux"/);
    const r = await airlock(['lock', '-f', armSpec, '--platform', 'linux/arm64', '--platform', 'linux/arm/v7'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const lock = parseLock(await readFile(join(sub, 'airlock.lock'), 'utf8'));
    assert.deepEqual(lock.platforms, ['linux/arm/v7', 'linux/arm64']);
    assert.deepEqual(lock.images[0]!.platforms!.map((p) => p.platform).sort(), ['linux/arm/v7', 'linux/arm64']);
    assert.match(r.stderr, /the index lists 3 platforms, the bundle carries linux\/arm64, linux\/arm\/v7/);
    // The spec itself says every platform: a pack that is not told the same is refused, and says why.
    const stale = await airlock(['pack', '-f', armSpec, '-o', join(sub, 'a.tar')], { env: env() });
    assert.equal(stale.code, 2, stale.stderr);
    assert.match(stale.stderr, /platforms are \(all\) in the spec but linux\/arm\/v7,linux\/arm64 in the lock/);
    assert.match(stale.stderr, /packed with the same --platform/);
    const p = await airlock(['pack', '-f', armSpec, '--platform', 'linux/arm64,linux/arm/v7', '-o', join(sub, 'a.tar')], { env: env() });
    assert.equal(p.code, 0, p.stderr);
    const i = resultOf((await airlock(['inspect', join(sub, 'a.tar'), '--json'])).stdout);
    assert.deepEqual(i.images[0].platforms.sort(), ['linux/arm/v7', 'linux/arm64']);
  });

  test('pack carries the upstream index beside the reduced one, and verify checks it', async () => {
    const p = await airlock(['pack', '-f', spec, '-o', bundle], { env: env() });
    assert.equal(p.code, 0, p.stderr);
    const b = await openBundle(bundle);
    try {
      const img = b.inventory.images[0]!;
      assert.equal(img.digest, reduced);
      assert.deepEqual(img.original, { digest: original, size: images.multi!.root.size });
      assert.equal(b.blobEntry(original)?.size, images.multi!.root.size, 'the upstream index is a blob of the bundle');
      assert.ok(!b.blobEntry(images.arm64!.root.digest), 'the arm64 manifest is not carried');
    } finally {
      await b.close();
    }
    const v = await airlock(['verify', bundle, '--json']);
    assert.equal(v.code, 0, v.stdout);
    const i = resultOf((await airlock(['inspect', bundle, '--json'])).stdout);
    assert.equal(i.images[0].original, original);
  });

  test('verify names an original index the reduced one was not cut from', async () => {
    const store = new FileStore(join(dir, 'forged-store'));
    const unrelated = buildIndex([images.arm64!, images.armv7!]);
    const cut = reduceIndex(blobBytes(findBlob(images.multi!, original)), new Set([images.amd64!.root.digest]));
    const root = { mediaType: images.multi!.root.mediaType, digest: digestOf(cut), size: cut.length };
    for (const img of [images.multi!, unrelated]) for (const b of img.blobs) await store.push(b.descriptor, blobStream(b));
    await store.push(root, Readable.from([cut]));
    const write = async (out: string, from: BuiltImage): Promise<void> => {
      await writeBundle({ out, images: [{ reference: 'quay.io/shop/multi:3', root, original: from.root }], source: store, lockText: 'images: []\n', name: 'forged', version: '1.0.0', toolVersion: '0.0.0-test' });
    };
    await write(join(dir, 'honest.tar'), images.multi!);
    assert.equal((await verifyBundle(join(dir, 'honest.tar'))).ok, true);
    await write(join(dir, 'forged.tar'), unrelated);
    const report = await verifyBundle(join(dir, 'forged.tar'));
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.problems.map((x) => [x.digest, x.message]),
      [[unrelated.root.digest, `not the index ${root.digest} of quay.io/shop/multi:3 was reduced from: cut down to the platforms that one lists, it does not give it`]],
    );
  });

  test('serve answers the upstream index by its digest and tag: skopeo and containerd pull the pin, the source registry gone', async () => {
    await src.stop();
    const srv = await startServe([bundle, '--listen', '127.0.0.1:0']);
    servers.push(srv);
    assert.equal(await skopeoDigest(`docker://${srv.host}/shop/multi@${original}`), original);
    assert.equal(await skopeoDigest(`docker://${srv.host}/shop/multi:3`), original);
    assert.equal(await skopeoDigest(`docker://${srv.host}/shop/multi@${reduced}`), reduced);
    // skopeo picks this machine's platform (linux/amd64) from the upstream index: it is carried.
    const out = join(dir, 'skopeo-out');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${srv.host}/shop/multi@${original}`, `oci:${out}:x`]);
    const idx = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(idx.manifests[0]!.digest, images.amd64!.root.digest);

    const hosts = join(dir, 'certs.d');
    const cfg = await airlock(['mirrors-config', bundle, '--registry', srv.host, '--format', 'containerd', '-o', hosts]);
    assert.equal(cfg.code, 0, cfg.stderr);
    await ctrd.ctr(['images', 'pull', '--platform', 'linux/amd64', '--hosts-dir', hosts, `${srcHost}/shop/multi@${original}`], { namespace: 'mirror' });
    await ctrd.ctr(['images', 'pull', '--platform', 'linux/amd64', '--hosts-dir', hosts, `${srcHost}/shop/multi:3`], { namespace: 'mirror' });
    const listed = new Map((await ctrd.images('mirror')).map((i) => [i.ref, i.digest]));
    assert.equal(listed.get(`${srcHost}/shop/multi@${original}`), original);
    assert.equal(listed.get(`${srcHost}/shop/multi:3`), original);
  });

  test('export k3s names the upstream index: ctr imports it with the upstream digest', async () => {
    const out = join(dir, 'agent-images');
    const r = await airlock(['export', 'k3s', bundle, out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /keeps its upstream index digest but carries only the bundle's platforms/);
    const [file] = await readdir(out);
    // Every platform is what --all-platforms asks for, and two of three are not carried.
    await assert.rejects(ctrd.ctr(['images', 'import', '--all-platforms', join(out, file!)], { namespace: 'all' }), /not found/);
    await ctrd.ctr(['images', 'import', '--platform', 'linux/amd64', join(out, file!)], { namespace: 'export' });
    const listed = new Map((await ctrd.images('export')).map((i) => [i.ref, i.digest]));
    assert.equal(listed.get(`${srcHost}/shop/multi:3`), original);
  });

  test('push where the registry refuses the upstream index: the tag holds the reduced one, said and recorded; post-render maps the pin to it', async () => {
    const p = await airlock(['push', bundle, `${dst.host}/site`], { env: env() });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stderr, new RegExp(`warning: ${dst.host}/site/shop/multi:3: the registry refused the upstream index ${original}`));
    assert.match(p.stdout, new RegExp(`the registry refused the upstream index ${original} .*the tag holds the reduced index ${reduced}`));
    assert.equal(await resolves(dst, 'site/shop/multi', original), 'HTTP 404');
    assert.equal(await resolves(dst, 'site/shop/multi', '3'), reduced);
    assert.equal(await resolves(dst, 'site/shop/multi', reduced), reduced);
    const last = (await history()).at(-1)!;
    assert.deepEqual(last.indexes, [{ image: `${srcHost}/shop/multi:3`, target: `${dst.host}/site/shop/multi:3`, original, reduced, kept: 'reduced' }]);

    const manifests = join(dir, 'deploy.yaml');
    await writeFile(manifests, deployment(`${srcHost}/shop/multi@${original}`));
    // Without the bundle the name moves and the pin stays: the registry does not have it.
    const plain = await airlock(['post-render', '--registry', `${dst.host}/site`, manifests], { env: env() });
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, new RegExp(`image: ${dst.host}/site/shop/multi@${original}`));
    for (const how of [['--bundle', bundle], ['--lock', join(dir, 'airlock.lock')]]) {
      const r = await airlock(['post-render', '--registry', `${dst.host}/site`, ...how, manifests], { env: env() });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`image: ${dst.host}/site/shop/multi@${reduced}\n`), how[0]);
      assert.match(r.stderr, /mapped to the reduced index .* \(the registry refused the upstream index at push\)/);
    }
    assert.equal(await skopeoDigest(`docker://${dst.host}/site/shop/multi@${reduced}`), reduced, 'the mapped reference resolves');
  });

  test('push where the registry keeps the upstream index: the pin resolves as written, post-render leaves it', async () => {
    // The other platforms' manifests already in the repository: docker-registry then takes the index.
    await seedRegistry(acc.url, 'site/shop/multi', 'arm64', images.arm64!);
    await seedRegistry(acc.url, 'site/shop/multi', 'armv7', images.armv7!);
    const p = await airlock(['push', bundle, `${acc.host}/site`, '--json'], { env: env() });
    assert.equal(p.code, 0, p.stderr);
    assert.doesNotMatch(p.stderr, /refused/);
    assert.deepEqual(resultOf(p.stdout).images[0].index, { original, reduced, kept: 'original' });
    assert.equal(await resolves(acc, 'site/shop/multi', original), original);
    assert.equal(await resolves(acc, 'site/shop/multi', '3'), original);
    assert.equal(await resolves(acc, 'site/shop/multi', reduced), reduced, 'the reduced index is there by its digest too');
    assert.equal((await history()).at(-1)!.indexes[0].kept, 'original');

    const manifests = join(dir, 'deploy.yaml');
    const r = await airlock(['post-render', '--registry', `${acc.host}/site`, '--bundle', bundle, manifests], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`image: ${acc.host}/site/shop/multi@${original}\n`));
    assert.match(r.stderr, /left as written \(push stored the upstream index/);
    // A registry the history knows nothing about: mapped, since the reduced index is there either way.
    const other = await airlock(['post-render', '--registry', 'registry.other:5000/x', '--bundle', bundle, manifests], { env: env() });
    assert.match(other.stdout, new RegExp(`image: registry.other:5000/x/shop/multi@${reduced}\n`));
    assert.match(other.stderr, /no push of it to registry\.other:5000\/x in the import history/);
  });

  test('rewrite --bundle: the overlay points a pinned digest at the index the registry holds', async () => {
    const chart = join(dir, 'chart');
    await mkdir(join(chart, 'templates'), { recursive: true });
    await writeFile(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: pinned\nversion: 0.1.0\n');
    await writeFile(join(chart, 'values.yaml'), `image:\n  repository: ${srcHost}/shop/multi\n  digest: ${original}\n`);
    await writeFile(join(chart, 'templates', 'deploy.yaml'), deployment('"{{ .Values.image.repository }}@{{ .Values.image.digest }}"'));
    const overlay = join(dir, 'overlay.yaml');
    const r = await airlock(['rewrite', chart, '--registry', `${dst.host}/site`, '--bundle', bundle, '--helm', helmPath(), '-o', overlay], { env: env(), timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const text = await readFile(overlay, 'utf8');
    assert.match(text, new RegExp(`digest: ${reduced}`));
    const rendered = (await runHelm(['template', chart, '-f', overlay], { helm: helmPath() })).stdout;
    assert.match(rendered, new RegExp(`image: "${dst.host}/site/shop/multi@${reduced}"`));
  });
});
