// pack in-process, against a real docker-registry (and a fault-injecting proxy in front of it):
// the bundle it writes verifies and is byte-identical on a repack from the cache; a connection cut
// mid-layer is resumed; a blob the registry lacks fails naming the registry as the source, with
// nothing left at the output (exit code 3); an abort stops it cleanly. Events add up to what was carried.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { link, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { AirlockError, ExitCode } from '../../src/core/errors.ts';
import { pack, type PackEvent } from '../../src/pack/pack.ts';
import { lockAndWrite } from '../../src/lock/lock-file.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { verifyBundle } from '../../src/bundle/index.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { blobBytes, buildImage, buildIndex, layersOf, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { forward, startServer, type LoopbackServer } from '../registry/support.ts';

/** The files of a folder; none when it was never created. */
async function filesIn(dir: string): Promise<string[]> {
  return readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
}

const noCredentials = { get: async () => undefined };

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

describe('pack (in-process)', () => {
  let registry: RunningRegistry;
  let proxy: LoopbackServer;
  let dir: string;
  let client: RegistryClient;
  const images: Record<string, BuiltImage> = {};
  /** When set, the proxy cuts the first answer for this blob digest after ~64 KiB. */
  let cutOnce: string | undefined;
  /** When set, the proxy answers 404 for this blob digest. */
  let hide: string | undefined;

  const spec = (host: string, name = 'airlock.yaml'): Promise<string> => {
    const path = join(dir, name);
    return writeFile(
      path,
      [
        'apiVersion: airlock.dev/v1alpha1',
        'kind: Bundle',
        'metadata: {name: shop, version: 1.0.0}',
        'platforms: [linux/amd64]',
        'images:',
        `  - ${host}/shop/web:1.0`,
        `  - ${host}/shop/api:2.1`,
        `  - ${host}/shop/multi:3`,
        '',
      ].join('\n'),
    ).then(() => path);
  };

  before(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'airlock-pack-'));
    const base = { random: { bytes: 2 * 1024 * 1024, seed: 11 } };
    images.web = buildImage({ layers: [base, { files: { 'srv/index.html': '<h1>shop</h1>' } }] });
    images.api = buildImage({ layers: [base, { random: { bytes: 512 * 1024, seed: 12 } }], format: 'docker' });
    images.multi = buildIndex([
      buildImage({ layers: [base, { files: { 'etc/arch': 'amd64' } }], platform: 'linux/amd64' }),
      buildImage({ layers: [{ random: { bytes: 256 * 1024, seed: 13 } }], platform: 'linux/arm64' }),
    ]);
    await seedRegistry(registry.url, 'shop/web', '1.0', images.web);
    await seedRegistry(registry.url, 'shop/api', '2.1', images.api);
    await seedRegistry(registry.url, 'shop/multi', '3', images.multi);
    await seedRegistry(registry.url, 'shop/huge', '1', images.web);
    // A registry that declares a layer of 10^15 bytes (909.5 TiB) in an otherwise good manifest.
    const manifest = JSON.parse(blobBytes(images.web.blobs.find((b) => b.descriptor.digest === images.web!.root.digest)!).toString('utf8')) as { layers: { size: number }[] };
    manifest.layers[0]!.size = 1e15;
    const huge = Buffer.from(JSON.stringify(manifest));
    const hugeDigest = `sha256:${createHash('sha256').update(huge).digest('hex')}`;
    proxy = await startServer((req: IncomingMessage, res: ServerResponse) => {
      if (/^\/v2\/shop\/huge\/manifests\//.test(req.url ?? '')) {
        res.writeHead(200, { 'content-type': images.web!.root.mediaType, 'content-length': String(huge.length), 'docker-content-digest': hugeDigest });
        res.end(req.method === 'HEAD' ? undefined : huge);
        return;
      }
      const digest = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')?.[1];
      if (digest !== undefined && digest === hide) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }));
        return;
      }
      if (digest !== undefined && digest === cutOnce && req.method === 'GET') {
        cutOnce = undefined;
        const up = new URL(registry.url);
        void fetch(`${up.origin}${req.url}`).then(async (r) => {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': r.headers.get('content-length') ?? '0', 'docker-content-digest': digest });
          const body = Buffer.from(await r.arrayBuffer());
          res.write(body.subarray(0, 64 * 1024), () => res.destroy());
        });
        return;
      }
      forward(registry.url, req, res);
    });
    client = new RegistryClient({ credentials: noCredentials, retryBaseDelayMs: 5 });
  });

  after(async () => {
    await client?.close();
    await proxy?.close();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const open = (ref: { registry: string; repository: string }) => client.repository(ref);

  test('writes a bundle that verifies, the same bytes again from the cache, with events that add up', async () => {
    const specPath = await spec(registry.host);
    await lockAndWrite(specPath, join(dir, 'airlock.lock'), { open });
    const events: PackEvent[] = [];
    const first = await pack({ specPath, out: join(dir, 'a.tar'), cacheDir: join(dir, 'cache'), open, onEvent: (e) => events.push(e) });
    assert.equal(first.inventory.images.length, 3);
    assert.ok(first.downloaded > 2 * 1024 * 1024, `downloaded ${first.downloaded} bytes`);
    const report = await verifyBundle(first.path);
    assert.equal(report.ok, true, JSON.stringify(report.problems));

    // Each carried blob is moved into the bundle once, and the progress adds up to its size.
    const carried = first.inventory.blobs;
    const done = events.filter((e) => e.type === 'blob-done');
    const moved = new Map<string, number>();
    for (const e of events) if (e.type === 'blob-progress') moved.set(e.digest, (moved.get(e.digest) ?? 0) + e.bytes);
    for (const b of carried.filter((x) => !x.mediaType.includes('manifest') && !x.mediaType.includes('index'))) {
      assert.equal(done.filter((e) => e.digest === b.digest).length, 1, `${b.digest} done once`);
      assert.equal(moved.get(b.digest), b.size, `${b.digest}: progress ${moved.get(b.digest)} of ${b.size}`);
    }
    // The amd64-only index: the bundle holds the reduced index, not arm64's layer.
    const arm = layersOf(buildImage({ layers: [{ random: { bytes: 256 * 1024, seed: 13 } }], platform: 'linux/arm64' }))[0]!.descriptor.digest;
    assert.ok(!carried.some((b) => b.digest === arm), 'the arm64 layer is not carried');

    const again = await pack({ specPath, out: join(dir, 'b.tar'), cacheDir: join(dir, 'cache'), open });
    assert.equal(again.downloaded, 0);
    assert.equal(await sha256(again.path), await sha256(first.path), 'the same lock gives the same bytes');
  });

  test('a connection cut in the middle of a layer is resumed: the same bundle', async () => {
    const specPath = await spec(proxy.host, 'proxied.yaml');
    const lockPath = join(dir, 'proxied.lock');
    await lockAndWrite(specPath, lockPath, { open });
    const big = layersOf(images.web!)[0]!.descriptor.digest;
    cutOnce = big;
    const r = await pack({ specPath, lockPath, out: join(dir, 'cut.tar'), cacheDir: join(dir, 'cache-cut'), open });
    assert.equal(cutOnce, undefined, 'the proxy cut the layer once');
    assert.equal((await verifyBundle(r.path)).ok, true);
    assert.ok(r.inventory.blobs.some((b) => b.digest === big));
  });

  test('a blob the registry lacks: a not-found error naming the registry as the source, nothing written', async () => {
    const specPath = join(dir, 'proxied.yaml');
    const lockPath = join(dir, 'proxied.lock');
    const lost = layersOf(images.api!)[1]!.descriptor.digest;
    hide = lost;
    try {
      const out = join(dir, 'out-missing');
      await assert.rejects(
        pack({ specPath, lockPath, out: join(out, 'b.tar'), cacheDir: join(dir, 'cache-missing'), open }),
        (e: unknown) => e instanceof AirlockError && e.exitCode === ExitCode.notFound && e.side === 'source' && e.message.startsWith('source: ') && e.message.includes(`${proxy.host}/shop/api`) && e.message.includes(lost),
      );
      assert.deepEqual(await filesIn(out), [], 'no bundle and no temp file');
    } finally {
      hide = undefined;
    }
  });

  test('an abort while downloading: AbortedError, no bundle and no temp file', async () => {
    const specPath = join(dir, 'proxied.yaml');
    const lockPath = join(dir, 'proxied.lock');
    const out = join(dir, 'out-abort');
    const ac = new AbortController();
    await assert.rejects(
      pack({
        specPath,
        lockPath,
        out: join(out, 'b.tar'),
        cacheDir: join(dir, 'cache-abort'),
        open,
        signal: ac.signal,
        onEvent: (e) => {
          if (e.type === 'blob-progress') ac.abort();
        },
      }),
      { name: 'AbortedError', code: 'ABORTED', exitCode: ExitCode.interrupted },
    );
    assert.deepEqual(await filesIn(out), [], 'no bundle and no temp file');
  });

  test('the bundle never replaces its spec or its lock, by any name: a usage error, both untouched', async () => {
    const specPath = join(dir, 'airlock.yaml');
    const lockPath = join(dir, 'airlock.lock');
    const before = [await readFile(specPath), await readFile(lockPath)];
    await link(lockPath, join(dir, 'lock-alias.tar'));
    for (const out of [specPath, lockPath, join(dir, 'lock-alias.tar')]) {
      await assert.rejects(
        pack({ specPath, out, cacheDir: join(dir, 'cache'), open }),
        (e: unknown) => e instanceof AirlockError && e.code === 'OUTPUT_IS_INPUT' && e.exitCode === ExitCode.usage && e.message.includes(out),
      );
    }
    assert.deepEqual([await readFile(specPath), await readFile(lockPath)], before);
  });

  test('a layer declared at 10^15 bytes: refused before anything is downloaded, for want of space, nothing written', async () => {
    const specPath = join(dir, 'huge.yaml');
    await writeFile(specPath, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: huge, version: 1.0.0}', 'images:', `  - ${proxy.host}/shop/huge:1`, ''].join('\n'));
    const lockPath = join(dir, 'huge.lock');
    await lockAndWrite(specPath, lockPath, { open });
    const out = join(dir, 'out-huge');
    let downloaded = 0;
    await assert.rejects(
      pack({ specPath, lockPath, out: join(out, 'b.tar'), cacheDir: join(dir, 'cache-huge'), open, onEvent: (e) => e.type === 'blob-progress' && (downloaded += e.bytes) }),
      (e: unknown) => e instanceof AirlockError && e.code === 'NO_SPACE' && e.exitCode === ExitCode.io && /needs 909\.5 TiB/.test(e.message),
    );
    assert.equal(downloaded, 0, 'no layer was downloaded');
    assert.deepEqual(await readdir(out).catch(() => []), []);
  });

  test('two images that differ only by registry host: pack warns at once that they would be pushed to one name', async () => {
    const specPath = join(dir, 'twins.yaml');
    await writeFile(specPath, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: twins, version: 1.0.0}', 'images:', `  - ${registry.host}/shop/web:1.0`, `  - ${proxy.host}/shop/web:1.0`, ''].join('\n'));
    const lockPath = join(dir, 'twins.lock');
    await lockAndWrite(specPath, lockPath, { open });
    const warnings: string[] = [];
    await pack({ specPath, lockPath, out: join(dir, 'twins.tar'), cacheDir: join(dir, 'cache'), open, onEvent: (e) => e.type === 'warning' && warnings.push(`${e.code}: ${e.message}`) });
    // The lock lists images sorted: the pair is named in that order.
    const [a, b] = [`${registry.host}/shop/web:1.0`, `${proxy.host}/shop/web:1.0`].sort();
    assert.deepEqual(warnings, [`TARGET_COLLISION: ${a} and ${b} would be pushed to the same name (they differ only by registry host); push with --keep-host (each under its host: R/P/<host>/<path>; serve, rewrite, post-render and mirrors-config take it too), or drop one`]);
  });
});
