// push through a real nginx with a 1 MiB body limit (client_max_body_size 1m, bodies streamed
// through) in front of docker-registry: layers larger than the limit get there anyway, in chunks,
// after one 413 that is reported once; --chunk-size chunks from the start; skopeo pulls the image
// back with every digest (so every byte) the same.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { buildImage, layersOf, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { skopeo } from '../helpers/skopeo.ts';

const MiB = 1024 * 1024;

describe('push through a reverse proxy that limits request bodies', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let proxy: RunningNginx;
  let dir: string;
  let image: BuiltImage;
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startNginx(dst.host, { maxBody: '1m' });
    dir = await mkdtemp(join(tmpdir(), 'airlock-chunks-'));
    image = buildImage({ layers: [{ random: { bytes: 5 * MiB + 123, seed: 41 } }, { random: { bytes: 3 * MiB, seed: 42 } }, { files: { 'etc/motd': 'big layers' } }] });
    await seedRegistry(src.url, 'shop/big', '1.0', image);
    await writeFile(join(dir, 'airlock.yaml'), ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: big, version: 1.0.0}', 'images:', `  - ${src.host}/shop/big:1.0`, ''].join('\n'));
    const p = await airlock(['pack', '--lock', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'big.tar')], { env: env() });
    assert.equal(p.code, 0, p.stderr);
  });

  after(async () => {
    await proxy?.stop();
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Requests nginx logged since `from` lines: [method, status, request length]. */
  const requests = async (from = 0): Promise<Array<[string, number, number]>> =>
    (await proxy.accessLog())
      .split('\n')
      .filter(Boolean)
      .slice(from)
      .map((l) => {
        const [m, s, n] = l.split(' ');
        return [m!, Number(s), Number(n)];
      });

  test('layers larger than the limit are pushed in chunks after one 413, said once; skopeo pulls them back identical', async () => {
    const r = await airlock(['push', join(dir, 'big.tar'), `${proxy.host}/mirror`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stdout);
    assert.equal(res.images[0].digest, image.root.digest);
    // Said once, though two layers are too large for one request.
    assert.equal(r.stderr.match(/refused a [\d.]+ MiB upload as too large \(413\): uploading larger blobs in chunks of/g)?.length, 1, r.stderr);
    const log = await requests();
    assert.ok(log.some(([m, s]) => m === 'PUT' && s === 413), 'the monolithic upload was refused');
    const patches = log.filter(([m, s]) => m === 'PATCH' && s === 202);
    assert.ok(patches.length >= 8, `8 MiB in chunks of at most 1 MiB: ${patches.length} PATCHes`);
    for (const [, , length] of patches) assert.ok(length <= MiB + 4096, `a chunk within the limit: ${length}`);

    const out = join(dir, 'pulled');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${proxy.host}/mirror/shop/big:1.0`, `oci:${out}:big`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]!.digest, image.root.digest);
    for (const { descriptor: layer } of layersOf(image)) {
      const bytes = await readFile(join(out, 'blobs', 'sha256', layer.digest.slice('sha256:'.length)));
      assert.equal(bytes.length, layer.size);
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer.digest);
    }
  });

  test('--chunk-size chunks from the start: no 413, no request over the size', async () => {
    const before = (await requests()).length;
    const r = await airlock(['push', join(dir, 'big.tar'), `${proxy.host}/chunked`, '--chunk-size', '512KiB', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /413/);
    const log = await requests(before);
    assert.ok(!log.some(([, s]) => s === 413), JSON.stringify(log));
    const patches = log.filter(([m]) => m === 'PATCH');
    assert.ok(patches.length >= 16, `8 MiB in 512 KiB chunks: ${patches.length} PATCHes`);
    for (const [, s, length] of patches) {
      assert.equal(s, 202);
      assert.ok(length <= 512 * 1024 + 4096, `a chunk of at most 512 KiB: ${length}`);
    }
  });

  test('a --chunk-size that is not a size is refused before anything is sent', async () => {
    const before = (await requests()).length;
    const r = await airlock(['push', join(dir, 'big.tar'), `${proxy.host}/bad`, '--chunk-size', '8 parsecs']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /chunk size: "8 parsecs" is not a size/);
    assert.equal((await requests()).length, before);
  });
});
