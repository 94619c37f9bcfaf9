// airlock diff: two bundles of one app (an image bumped, one added, a chart and a file updated, the
// signer changed) and their locks; every change is named, text and --json.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diff } from '../../src/api/diff.ts';
import { generateKeys, loadSigningKey, loadVerifyingKey } from '../../src/sign/keys.ts';
import { formatLock, type Lock } from '../../src/spec/lock.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { writeAppBundles, type AppBundles } from './fixture.ts';

describe('diff', () => {
  let dir: string;
  let b: AppBundles;
  let alice: string;
  let bob: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-diff-'));
    await generateKeys({ out: join(dir, 'alice') });
    await generateKeys({ out: join(dir, 'bob') });
    alice = (await loadVerifyingKey(join(dir, 'alice.pub'))).fingerprint;
    bob = (await loadVerifyingKey(join(dir, 'bob.pub'))).fingerprint;
    b = await writeAppBundles(dir, { v1: await loadSigningKey(join(dir, 'alice.key')), v2: await loadSigningKey(join(dir, 'bob.key')) });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('names every change between two bundles: bumped, added, unchanged image, chart, file, new bytes, signer', async () => {
    const d = await diff(b.v1, b.v2, { keys: [join(dir, 'alice.pub')] });
    assert.equal(d.same, false);
    assert.deepEqual(d.images.added.map((i) => i.reference), ['docker.io/library/redis:7']);
    assert.deepEqual(d.images.removed, []);
    assert.equal(d.images.unchanged, 1, 'app:1 is the same');
    assert.equal(d.images.changed.length, 1);
    const nginx = d.images.changed[0]!;
    assert.equal(nginx.old.reference, 'docker.io/library/nginx:1.27');
    assert.equal(nginx.new.reference, 'docker.io/library/nginx:1.28');
    assert.ok(nginx.fields.includes('digest') && nginx.fields.includes('reference'));
    assert.notEqual(nginx.old.digest, nginx.new.digest);
    assert.deepEqual(d.charts.changed.map((c) => [c.old.name, c.old.version, c.new.version]), [['podinfo', '6.5.0', '6.6.0']]);
    assert.deepEqual(d.files.changed.map((c) => [c.old.name, c.old.version, c.new.version, c.fields]), [['k3s', 'v1.30.1+k3s1', 'v1.30.2+k3s1', ['digest', 'version']]]);
    // The shared nginx base layer and app:1 are carried over; redis, nginx's new layer, the chart and file are new.
    assert.ok(d.bytes!.newBytes > 48 * 1024 && d.bytes!.newBytes < 96 * 1024, `new bytes ${d.bytes!.newBytes}`);
    assert.ok(d.bytes!.carriedBytes > 96 * 1024);
    // alice's key verifies v1; v2's signer (bob) is only claimed: no key given for it.
    assert.deepEqual(d.signer, { changed: true, old: { key: alice, algorithm: 'ed25519', verified: true }, new: { key: bob, algorithm: 'ed25519', verified: false } });

    const same = await diff(b.v2, b.v2);
    assert.equal(same.same, true);
    assert.equal(same.bytes!.newBytes, 0);
  });

  test('the CLI: grouped text by default, one JSON result with --json', async () => {
    const text = await airlock(['diff', b.v1, b.v2, '--key', join(dir, 'alice.pub'), '--key', join(dir, 'bob.pub')]);
    assert.equal(text.code, 0, text.stderr);
    const out = text.stdout;
    assert.match(out, /^images: 1 added, 0 removed, 1 changed, 1 unchanged$/m);
    assert.match(out, /^ {2}\+ docker\.io\/library\/redis:7 {2}sha256:[0-9a-f]{64} {2}linux\/amd64 {2}/m);
    assert.match(out, /^ {2}~ docker\.io\/library\/nginx:1\.27 → docker\.io\/library\/nginx:1\.28\n {6}digest {5}sha256:[0-9a-f]{64} → sha256:[0-9a-f]{64}$/m);
    assert.match(out, /^charts: 0 added, 0 removed, 1 changed, 0 unchanged\n {2}~ podinfo\n {6}version {4}6\.5\.0 → 6\.6\.0$/m);
    assert.match(out, /^files: 0 added, 0 removed, 1 changed, 0 unchanged\n {2}~ k3s\n {6}version {2}v1\.30\.1\+k3s1 → v1\.30\.2\+k3s1$/m);
    assert.match(out, /^bytes: [\d.]+ KiB new in \d+ blobs \(not in old\); [\d.]+ KiB carried over in \d+; /m);
    assert.ok(out.includes(`signer: ${alice} (ed25519, verified) → ${bob} (ed25519, verified)  (CHANGED)`), out);

    const json = await airlock(['diff', b.v1, b.v2, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const r = resultOf(json.stdout);
    assert.equal(r.images.added[0].reference, 'docker.io/library/redis:7');
    assert.equal(r.signer.new.verified, false);
    assert.equal(r.old.name, 'shop');

    const bad = await airlock(['diff', b.v1]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /diff needs two bundles or locks: airlock diff OLD NEW/);
  });

  test('two locks: images and charts compared the same way; bytes are not (a lock lists no blobs)', async () => {
    const img = (reference: string, digest: string, platforms = ['linux/amd64']) => ({
      reference,
      digest: digest as `sha256:${string}`,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      size: 100,
      totalSize: 1000,
      platforms: platforms.map((p, i) => ({ platform: p, digest: `sha256:${String(i).repeat(64)}` as `sha256:${string}`, size: 10 })),
    });
    const chart = (version: string, redis: string): NonNullable<Lock['charts']>[number] => ({
      name: 'shop',
      repo: 'https://charts.example.com',
      range: '^1',
      version,
      source: `https://charts.example.com/shop-${version}.tgz`,
      digest: `sha256:${'d'.repeat(64)}`,
      size: 1000,
      values: [],
      reference: `charts.example.com/charts/shop:${version}`,
      artifact: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${(version === '1.0.0' ? 'e' : 'f').repeat(64)}` as `sha256:${string}`, size: 300 },
      dependencies: [{ name: 'redis', version: redis, repository: 'https://charts.bitnami.com/bitnami', source: `https://charts.bitnami.com/bitnami/redis-${redis}.tgz`, digest: `sha256:${'9'.repeat(64)}`, size: 500, vendored: false, dependencies: [{ name: 'common', version: '2.0.0', repository: 'https://charts.bitnami.com/bitnami', vendored: true, dependencies: [] }] }],
    });
    const lock = (version: string, images: ReturnType<typeof img>[]): Lock => ({ name: 'shop', version, platforms: undefined, images, charts: [chart(version === '1' ? '1.0.0' : '1.1.0', version === '1' ? '18.0.0' : '19.1.0')] });
    const a = join(dir, 'old.lock');
    const c = join(dir, 'new.lock');
    await writeFile(a, formatLock(lock('1', [img('docker.io/library/nginx:1.27', `sha256:${'a'.repeat(64)}`), img('docker.io/library/gone:1', `sha256:${'b'.repeat(64)}`)])));
    await writeFile(c, formatLock(lock('2', [img('docker.io/library/nginx:1.27', `sha256:${'c'.repeat(64)}`, ['linux/amd64', 'linux/arm64'])])));
    const d = await diff(a, c);
    assert.deepEqual(d.images.removed.map((i) => i.reference), ['docker.io/library/gone:1']);
    assert.deepEqual(d.images.changed.map((x) => x.fields), [['digest', 'platforms']]);
    assert.equal(d.bytes, undefined);
    // A chart's version and its dependencies (nested ones under their parent), from the lock.
    assert.deepEqual(d.charts.changed.map((x) => [x.old.version, x.new.version, x.fields, x.new.dependencies]), [['1.0.0', '1.1.0', ['version', 'digest', 'dependencies'], ['redis 19.1.0', 'redis/common 2.0.0']]]);
    const r = await airlock(['diff', a, c]);
    assert.match(r.stdout, /dependencies {2}redis 18\.0\.0, redis\/common 2\.0\.0 → redis 19\.1\.0, redis\/common 2\.0\.0/);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /platforms {2}linux\/amd64 → linux\/amd64,linux\/arm64/);
    assert.match(r.stdout, /bytes: not compared \(a lock lists no blobs/);
  });
});
