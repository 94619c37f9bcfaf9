// lock and pack, run as a user runs them, against a registry behind a fault-injecting proxy: one
// 500 on a manifest must not end the work (it is retried, and the retry is reported), and
// --timeout / --min-rate reach the transfers (a stalled layer is resumed after the timeout given).
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, layersOf, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { airlock } from '../helpers/cli.ts';
import { forward, startServer, type LoopbackServer } from '../registry/support.ts';

const MANIFEST_PATH = /^\/v2\/.+\/manifests\/[^/]+$/;

describe('lock and pack through a flaky registry', () => {
  let registry: RunningRegistry;
  let proxy: LoopbackServer;
  let dir: string;
  let image: BuiltImage;
  /** Manifest requests still to answer with 500; how many were. */
  let fail500 = 0;
  let failed500 = 0;
  /** A blob digest whose next GET stops after 64 KiB and then stays silent. */
  let stallOnce: string | undefined;
  const env = (cache: string): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, cache), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });

  before(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'airlock-flaky-'));
    image = buildImage({ layers: [{ random: { bytes: 1024 * 1024, seed: 21 } }, { files: { 'etc/motd': 'hi' } }] });
    await seedRegistry(registry.url, 'shop/web', '1.0', image);
    proxy = await startServer((req: IncomingMessage, res: ServerResponse) => {
      if (MANIFEST_PATH.test(req.url ?? '') && fail500 > 0) {
        fail500--;
        failed500++;
        req.resume();
        return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"storage hiccup"}]}');
      }
      const digest = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')?.[1];
      if (req.method === 'GET' && digest !== undefined && digest === stallOnce) {
        stallOnce = undefined;
        const up = httpRequest(`${registry.url}${req.url}`, (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          let sent = 0;
          upRes.on('data', (c: Buffer) => {
            if (sent < 64 * 1024) res.write(c.subarray(0, 64 * 1024 - sent));
            sent += c.length;
          });
        });
        up.end();
        return;
      }
      forward(registry.url, req, res);
    });
    await writeFile(
      join(dir, 'airlock.yaml'),
      ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: shop, version: 1.0.0}', 'images:', `  - ${proxy.host}/shop/web:1.0`, ''].join('\n'),
    );
  });

  after(async () => {
    await proxy?.close();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('airlock lock and airlock pack succeed when the first manifest request of each answers 500', { timeout: 60_000 }, async () => {
    fail500 = 1;
    const locked = await airlock(['lock', '-f', join(dir, 'airlock.yaml')], { env: env('cache-a'), timeoutMs: 30_000 });
    assert.equal(locked.code, 0, locked.stderr);
    assert.equal(failed500, 1);
    assert.match(locked.stderr, new RegExp(`warning: ${proxy.host} answered 500 Internal Server Error while fetching image ${proxy.host}/shop/web:1\\.0; retrying \\(1 of 4\\)`));

    fail500 = 1;
    const packed = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'a.tar')], { env: env('cache-a'), timeoutMs: 30_000 });
    assert.equal(packed.code, 0, packed.stderr);
    assert.equal(failed500, 2);
    assert.match(packed.stderr, /answered 500 Internal Server Error while fetching image/);
    assert.ok((await stat(join(dir, 'a.tar'))).size > 1024 * 1024);
  });

  test('pack --timeout 300ms: a layer that stalls is resumed after 300 ms, and the warning says so', { timeout: 60_000 }, async () => {
    const layer = layersOf(image).find((l) => l.descriptor.size >= 1024 * 1024)!.descriptor;
    stallOnce = layer.digest;
    const started = Date.now();
    const packed = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'b.tar'), '--timeout', '300ms', '--min-rate', '10KiB/s'], {
      env: env('cache-b'),
      timeoutMs: 30_000,
    });
    assert.equal(packed.code, 0, packed.stderr);
    assert.equal(stallOnce, undefined, 'the proxy stalled the layer once');
    assert.match(packed.stderr, new RegExp(`warning: no bytes from ${proxy.host} for 300 ms while downloading blob ${layer.digest} of ${proxy.host}/shop/web \\(after 64\\.0 KiB\\); retrying \\(1 of 5\\)`));
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  });

  test('a --timeout or --min-rate that does not parse is a usage error (exit 2) naming the value', { timeout: 30_000 }, async () => {
    const t = await airlock(['lock', '-f', join(dir, 'airlock.yaml'), '--timeout', 'soon']);
    assert.equal(t.code, 2, t.stderr);
    assert.match(t.stderr, /timeout: "soon" is not a duration/);
    const r = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'c.tar'), '--min-rate', 'fast']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /minimum rate: "fast" is not a rate/);
  });
});
