// Updates across the gap, as a user runs them: a v2 bundle packed --since v1 where one image
// changed, one stayed and one is new; verified alone, against its base, and as incomplete; pushed
// into a registry that lacks the base (refused, nothing sent) and after v1 (every v2 image lands);
// served beside its base; signed with a key from keygen and checked by airlock and by openssl; every
// push and serve in the import history. Real docker-registry processes, real openssl.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, layersOf, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { startServe } from '../helpers/serve.ts';
import { openBundle } from '../../src/bundle/index.ts';

const exec = promisify(execFile);
const KiB = 1024;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';

async function remoteDigest(reg: RunningRegistry, repo: string, tag: string): Promise<string | undefined> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT } });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

async function catalog(reg: RunningRegistry): Promise<string[]> {
  return ((await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] }).repositories;
}

const sha = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');

describe('updates: delta bundles, signatures, import history', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let dir: string;
  const img: Record<string, BuiltImage> = {};
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), AIRLOCK_STATE: join(dir, 'state'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });
  const run = (args: string[]) => airlock(args, { env: env() });
  const spec = (version: string, images: string[]): string =>
    ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', `metadata: {name: shop, version: '${version}'}`, 'images:', ...images.map((i) => `  - ${src.host}/${i}`), ''].join('\n');

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-updates-'));
    const os = buildImage({ layers: [{ random: { bytes: 1024 * KiB, seed: 61 } }] });
    img.web1 = buildImage({ baseLayers: layersOf(os), layers: [{ random: { bytes: 300 * KiB, seed: 62 } }] });
    // The version bump: same base, the top layer changed.
    img.web2 = buildImage({ baseLayers: layersOf(os), layers: [{ random: { bytes: 300 * KiB, seed: 63 } }] });
    img.api = buildImage({ baseLayers: layersOf(os), layers: [{ random: { bytes: 200 * KiB, seed: 64 } }] });
    img.cache = buildImage({ baseLayers: layersOf(os), layers: [{ files: { 'etc/cache.conf': 'size=1g\n' } }] });
    await seedRegistry(src.url, 'shop/web', '1', img.web1);
    await seedRegistry(src.url, 'shop/web', '2', img.web2);
    await seedRegistry(src.url, 'shop/api', '1', img.api);
    await seedRegistry(src.url, 'shop/cache', '1', img.cache);
    await mkdir(join(dir, 'v1'));
    await mkdir(join(dir, 'v2'));
    await writeFile(join(dir, 'v1', 'airlock.yaml'), spec('1', ['shop/web:1', 'shop/api:1']));
    await writeFile(join(dir, 'v2', 'airlock.yaml'), spec('2', ['shop/web:2', 'shop/api:1', 'shop/cache:1']));
    for (const v of ['v1', 'v2']) {
      const r = await run(['lock', '-f', join(dir, v, 'airlock.yaml')]);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('pack --since v1: smaller than a full v2, carrying the changed and new layers and every manifest; the same from v1\'s lock', async () => {
    const p1 = await run(['pack', '-f', join(dir, 'v1', 'airlock.yaml'), '-o', join(dir, 'v1.tar')]);
    assert.equal(p1.code, 0, p1.stderr);
    const full = await run(['pack', '-f', join(dir, 'v2', 'airlock.yaml'), '-o', join(dir, 'v2-full.tar')]);
    assert.equal(full.code, 0, full.stderr);
    const d = await run(['pack', '-f', join(dir, 'v2', 'airlock.yaml'), '-o', join(dir, 'v2.tar'), '--since', join(dir, 'v1.tar'), '--json']);
    assert.equal(d.code, 0, d.stderr);
    const res = resultOf(d.stdout);
    assert.equal(res.delta.base.name, 'shop');
    assert.equal(res.delta.base.version, '1');
    const fullSize = (await stat(join(dir, 'v2-full.tar'))).size;
    const deltaSize = (await stat(join(dir, 'v2.tar'))).size;
    // Carried: web:2's new top layer (300 KiB) and cache:1's small layer, manifests and configs.
    assert.ok(deltaSize < 330 * KiB, `delta ${deltaSize} bytes`);
    assert.ok(fullSize > 1500 * KiB && deltaSize < fullSize / 4, `delta ${deltaSize} vs full ${fullSize}`);
    // The base named by its lock gives the very same delta.
    const byLock = await run(['pack', '-f', join(dir, 'v2', 'airlock.yaml'), '-o', join(dir, 'v2-bylock.tar'), '--since', join(dir, 'v1', 'airlock.lock')]);
    assert.equal(byLock.code, 0, byLock.stderr);
    assert.equal(await sha(join(dir, 'v2-bylock.tar')), await sha(join(dir, 'v2.tar')));
  });

  test('verify: the delta alone passes and says what it relies on; against v1 it is complete; --complete refuses it', async () => {
    const alone = await run(['verify', join(dir, 'v2.tar')]);
    assert.equal(alone.code, 0, alone.stdout + alone.stderr);
    assert.match(alone.stdout, /delta of shop 1 \(inventory sha256:[0-9a-f]{64}\): relies on \d+ blobs .* not checked against it \(give --base BASE\)/);
    const based = await run(['verify', join(dir, 'v2.tar'), '--base', join(dir, 'v1.tar')]);
    assert.equal(based.code, 0, based.stdout + based.stderr);
    assert.match(based.stdout, /checked against .*v1\.tar/);
    const complete = await run(['verify', join(dir, 'v2.tar'), '--complete']);
    assert.equal(complete.code, 5, complete.stdout);
    assert.match(complete.stdout, /not self-sufficient: a delta of shop 1/);
    const inspect = await run(['inspect', join(dir, 'v2.tar')]);
    assert.match(inspect.stdout, /delta of shop 1 \(inventory sha256:[0-9a-f]{64}\): relies on/);
  });

  test('push of the delta into a registry without its base: refused, every missing blob named, nothing written', async () => {
    const r = await run(['push', join(dir, 'v2.tar'), `${dst.host}/early`]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /is a delta of shop 1 .*the registry lacks \d+ blobs .* so nothing was pushed/);
    const osLayer = layersOf(img.web2!)[0]!.descriptor.digest;
    assert.ok(r.stderr.includes(osLayer), 'the shared base layer is named');
    assert.match(r.stderr, /hint: push the base bundle \(shop 1\) to the same target first/);
    assert.deepEqual((await catalog(dst)).filter((x) => x.startsWith('early/')), []);
  });

  test('push v1, then the delta: every v2 image is in the registry with its digest', async () => {
    const p1 = await run(['push', join(dir, 'v1.tar'), `${dst.host}/site`]);
    assert.equal(p1.code, 0, p1.stderr);
    const p2 = await run(['push', join(dir, 'v2.tar'), `${dst.host}/site`, '--json']);
    assert.equal(p2.code, 0, p2.stderr);
    const res = resultOf(p2.stdout);
    assert.ok(res.delta.relied > 0);
    // cache:1 is new: its base layer was only in the web and api repositories, and is mounted.
    assert.ok(res.delta.mounted >= 1, JSON.stringify(res.delta));
    assert.equal(await remoteDigest(dst, 'site/shop/web', '2'), img.web2!.root.digest);
    assert.equal(await remoteDigest(dst, 'site/shop/api', '1'), img.api!.root.digest);
    assert.equal(await remoteDigest(dst, 'site/shop/cache', '1'), img.cache!.root.digest);
    for (const l of layersOf(img.cache!)) {
      const head = await fetch(`${dst.url}/v2/site/shop/cache/blobs/${l.descriptor.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 200, `layer ${l.descriptor.digest} of cache:1 is pullable`);
    }
  });

  test('serve v1.tar v2.tar serves the union; the delta alone is refused, naming its base', async () => {
    const srv = await startServe([join(dir, 'v1.tar'), join(dir, 'v2.tar'), '--listen', '127.0.0.1:0'], { env: env() });
    try {
      const m = await fetch(`${srv.url}/v2/shop/web/manifests/2`, { headers: { accept: ACCEPT } });
      assert.equal(m.status, 200);
      assert.equal(m.headers.get('docker-content-digest'), img.web2!.root.digest);
      const os = layersOf(img.web2!)[0]!.descriptor;
      const blob = Buffer.from(await (await fetch(`${srv.url}/v2/shop/web/blobs/${os.digest}`)).arrayBuffer());
      assert.equal(`sha256:${createHash('sha256').update(blob).digest('hex')}`, os.digest, 'the relied-on layer comes from v1');
    } finally {
      await srv.stop();
    }
    const alone = await run(['serve', join(dir, 'v2.tar'), '--listen', '127.0.0.1:0']);
    assert.equal(alone.code, 3);
    assert.match(alone.stderr, /v2\.tar is a delta of shop 1 .* in none of the bundles given/);
    assert.match(alone.stderr, /hint: give its base bundle too/);
  });

  test('keygen, a signed pack; verify with the right key, another key, an unsigned bundle; openssl agrees', async () => {
    for (const k of ['release', 'other']) {
      const r = await run(['keygen', '-o', join(dir, k)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /ed25519 key sha256:[0-9a-f]{64}/);
    }
    const p = await run(['pack', '-f', join(dir, 'v2', 'airlock.yaml'), '-o', join(dir, 'signed.tar'), '--sign', join(dir, 'release.key')]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /signed with .*release\.key \(ed25519, key sha256:/);
    const good = await run(['verify', join(dir, 'signed.tar'), '--key', join(dir, 'release.pub')]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /verified with the key given/);
    const other = await run(['verify', join(dir, 'signed.tar'), '--key', join(dir, 'other.pub')]);
    assert.equal(other.code, 5);
    assert.match(other.stdout, /not signed by the key given/);
    assert.match(other.stdout, /signed, not verified \(claims key sha256:[0-9a-f]{64}, ed25519\): the key given does not verify it/);
    const unsigned = await run(['verify', join(dir, 'v1.tar'), '--key', join(dir, 'release.pub')]);
    assert.equal(unsigned.code, 5);
    assert.match(unsigned.stdout, /the bundle is not signed, and the key given \(.*release\.pub\) demands a signature/);
    // The documented payload: openssl checks it without airlock.
    const x = join(dir, 'extracted');
    await mkdir(x);
    await exec('tar', ['-xf', join(dir, 'signed.tar'), '-C', x, 'airlock/inventory.json', 'airlock/inventory.json.sig']);
    const { stdout } = await exec('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, 'release.pub'), '-rawin', '-in', join(x, 'airlock/inventory.json'), '-sigfile', join(x, 'airlock/inventory.json.sig')]);
    assert.match(stdout, /Signature Verified Successfully/);
    await assert.rejects(exec('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, 'other.pub'), '-rawin', '-in', join(x, 'airlock/inventory.json'), '-sigfile', join(x, 'airlock/inventory.json.sig')]), {
      code: 1,
      stdout: /Signature Verification Failure/,
    });
  });

  test('key files of the wrong type are named; push --key refuses an unsigned or foreign bundle before sending anything', async () => {
    const pubToSign = await run(['pack', '-f', join(dir, 'v2', 'airlock.yaml'), '-o', join(dir, 'x.tar'), '--sign', join(dir, 'release.pub')]);
    assert.equal(pubToSign.code, 2);
    assert.match(pubToSign.stderr, /release\.pub is a public key: signing needs the private key/);
    await assert.rejects(stat(join(dir, 'x.tar')), { code: 'ENOENT' }, 'no bundle written');
    const foreign = await run(['push', join(dir, 'signed.tar'), `${dst.host}/guarded`, '--key', join(dir, 'other.pub')]);
    assert.equal(foreign.code, 5);
    assert.match(foreign.stderr, /signed\.tar: not signed by the key given/);
    const unsigned = await run(['push', join(dir, 'v1.tar'), `${dst.host}/guarded`, '--key', join(dir, 'release.pub')]);
    assert.equal(unsigned.code, 5);
    assert.match(unsigned.stderr, /is not signed, and --key .* demands a signature/);
    assert.deepEqual((await catalog(dst)).filter((x) => x.startsWith('guarded/')), []);
    const ok = await run(['push', join(dir, 'signed.tar'), `${dst.host}/guarded`, '--key', join(dir, 'release.pub')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /signed by key sha256:[0-9a-f]{64}, verified/);
  });

  test('history lists every push and serve: bundle, inventory digest, key, target; an edited line is caught', async () => {
    const h = await run(['history', '--json']);
    assert.equal(h.code, 0, h.stderr);
    const entries = resultOf(h.stdout).entries as { action: string; bundle: string; inventory: string; key: string | null; verified: boolean; target: string; delta?: { version: string } }[];
    const inv = async (p: string): Promise<string> => {
      const b = await openBundle(p);
      await b.close();
      return b.inventoryDigest;
    };
    assert.deepEqual(
      entries.map((e) => [e.action, e.bundle.slice(dir.length + 1), e.target.replace(dst.host, 'DST').replace(/^http:\/\/127\.0\.0\.1:\d+$/, 'SERVE')]),
      [
        ['push', 'v1.tar', 'DST/site'],
        ['push', 'v2.tar', 'DST/site'],
        ['serve', 'v1.tar', 'SERVE'],
        ['serve', 'v2.tar', 'SERVE'],
        ['push', 'signed.tar', 'DST/guarded'],
      ],
    );
    assert.equal(entries[1]!.inventory, await inv(join(dir, 'v2.tar')));
    assert.equal(entries[1]!.delta?.version, '1');
    assert.equal(entries[0]!.key, null);
    const signed = entries[4]!;
    assert.match(signed.key ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(signed.verified, true);
    const human = await run(['history']);
    assert.match(human.stdout, /5 imports recorded in/);
    // Append-only: a changed line breaks the chain, and history says where.
    const file = join(dir, 'state', 'history.jsonl');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('"v1.tar"', '"v0.tar"').replace(join(dir, 'v1.tar'), join(dir, 'v0.tar')));
    const altered = await run(['history']);
    assert.equal(altered.code, 5);
    assert.match(altered.stdout, /WARNING: the history was altered:\n {2}line 2: the chain breaks here/);
  });
});
