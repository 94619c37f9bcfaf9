// push against real docker-registry processes, with a counting proxy in front of the target: what
// reaches the registry (one look-up per blob, one upload of a shared layer, a mount for its sibling),
// and what a damaged bundle does (an IntegrityError naming the blob; nothing of the image tagged).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { airlock } from '../helpers/cli.ts';
import { forward, startServer, type LoopbackServer } from '../registry/support.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { IntegrityError } from '../../src/core/errors.ts';
import { MANIFEST_MEDIA_TYPES } from '../../src/core/media-types.ts';
import { isSelfVerifying } from '../../src/content/verify-stream.ts';
import { openBundle } from '../../src/bundle/read.ts';
import { parseTarget } from '../../src/rewrite/mapping.ts';
import { pushBundle, type PushResult } from '../../src/push/push.ts';
import { copyWithFlips } from '../helpers/tamper.ts';

const MiB = 1024 * 1024;
const noCredentials = { get: async () => undefined };

describe('push', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let proxy: LoopbackServer;
  let dir: string;
  let bundle: string;
  let one: BuiltImage;
  let two: BuiltImage;
  /** Requests the target saw through the proxy: "METHOD path". */
  const seen: string[] = [];
  // 12 chunks: more than the 8 reused buffers an upload stream reads into.
  const big = { random: { bytes: 12 * MiB, seed: 11 } };

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-push-'));
    proxy = await startServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      forward(dst.url, req, res);
    });
    one = buildImage({ layers: [big, { random: { bytes: 2 * MiB, seed: 12 } }, { files: { 'etc/one': '1' } }], workDir: dir });
    two = buildImage({ layers: [big, { random: { bytes: 300 * 1024, seed: 13 } }], workDir: dir });
    await seedRegistry(src.url, 'app/one', '1', one);
    await seedRegistry(src.url, 'app/two', '1', two);
    const spec = join(dir, 'airlock.yaml');
    await writeFile(spec, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: app, version: 1.0.0}', 'images:', `  - ${src.host}/app/one:1`, `  - ${src.host}/app/two:1`, ''].join('\n'));
    const env = { AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' };
    bundle = join(dir, 'app.tar');
    for (const args of [['lock', '-f', spec], ['pack', '-f', spec, '-o', bundle]]) {
      const r = await airlock(args, { env });
      assert.equal(r.code, 0, r.stderr);
    }
  });

  after(async () => {
    await proxy?.close();
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function push(path: string, target: string, concurrency?: number): Promise<PushResult> {
    const client = new RegistryClient({ credentials: noCredentials, retryBaseDelayMs: 5, ...(concurrency ? { concurrency } : {}) });
    try {
      return await pushBundle({ bundlePath: path, target: parseTarget(target), open: (ref) => client.repository(ref), ...(concurrency ? { concurrency } : {}) });
    } finally {
      await client.close();
    }
  }

  async function manifestThere(repo: string, tag: string): Promise<boolean> {
    const res = await fetch(`${dst.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') } });
    return res.status === 200;
  }

  async function blobThere(repo: string, digest: string): Promise<boolean> {
    return (await fetch(`${dst.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status === 200;
  }

  /** The 12 MiB layer both images share (gzip makes it a little larger). */
  function bigLayer(): string {
    return one.blobs.find((b) => b.descriptor.size >= 12 * MiB && b.descriptor.size < 13 * MiB)!.descriptor.digest;
  }

  /** A copy of the bundle with one byte of `digest`'s entry flipped, `at` bytes into it (negative: from its end). */
  async function damaged(name: string, digest: string, at: number): Promise<string> {
    const out = join(dir, name);
    await copyWithFlips(bundle, out, { [digest]: at });
    return out;
  }

  test('every image arrives with its digest; the shared layer is uploaded once and mounted into the other repository; each blob is looked up once', async () => {
    seen.length = 0;
    const result = await push(bundle, `${proxy.host}/ok`, 2);
    assert.ok(await manifestThere('ok/app/one', '1'));
    assert.ok(await manifestThere('ok/app/two', '1'));
    for (const i of result.images) assert.equal(i.digest, i.source.endsWith('one:1') ? one.root.digest : two.root.digest);
    const layer = bigLayer();
    const uploads = seen.filter((l) => l.startsWith('PUT') && l.includes(encodeURIComponent(layer)));
    assert.equal(uploads.length, 1, `one upload of the shared layer:\n${seen.join('\n')}`);
    assert.equal(seen.filter((l) => l.startsWith('POST') && l.includes(`mount=${encodeURIComponent(layer)}`)).length, 1, 'one mount');
    assert.deepEqual(result.images.map((i) => i.blobs.mounted).sort(), [0, 1]);
    const heads = seen.filter((l) => l.startsWith('HEAD') && l.includes('/blobs/'));
    assert.equal(new Set(heads).size, heads.length, `no blob looked up twice in one repository:\n${heads.join('\n')}`);
  });

  test('pushed again, nothing is uploaded: every blob and manifest is already there', async () => {
    seen.length = 0;
    const result = await push(bundle, `${proxy.host}/ok`);
    for (const i of result.images) assert.deepEqual({ copied: i.blobs.copied, mounted: i.blobs.mounted }, { copied: 0, mounted: 0 });
    assert.equal(result.bytes, 0);
    assert.equal(seen.filter((l) => l.startsWith('PUT') && l.includes('/blobs/')).length, 0);
  });

  for (const [name, at] of [
    ['deep in a large layer (past the reused read buffers)', 10 * MiB + 123],
    ['in the last byte of a large layer', -1],
  ] as const) {
    test(`a flipped byte ${name} fails the push with an IntegrityError naming the blob; nothing is tagged`, async () => {
      const layer = bigLayer();
      const bad = await damaged(`bad-${at}.tar`, layer, at);
      const prefix = `bad${at < 0 ? 'end' : 'mid'}`;
      await assert.rejects(push(bad, `${dst.host}/${prefix}`), (e: unknown) => e instanceof IntegrityError && e.message.includes(layer) && /digest mismatch/.test(e.message));
      assert.equal(await manifestThere(`${prefix}/app/one`, '1'), false);
      assert.equal(await manifestThere(`${prefix}/app/two`, '1'), false);
      assert.equal(await blobThere(`${prefix}/app/one`, layer), false, 'the damaged layer is not stored');
      assert.equal(await blobThere(`${prefix}/app/two`, layer), false, 'the damaged layer is not stored');
    });
  }

  test('a flipped byte in a small layer fails the push naming it', async () => {
    const layer = two.blobs.find((b) => b.descriptor.size > 200 * 1024 && b.descriptor.size < MiB)!.descriptor.digest;
    const bad = await damaged('bad-small.tar', layer, 1000);
    await assert.rejects(push(bad, `${dst.host}/badsmall`), (e: unknown) => e instanceof IntegrityError && e.message.includes(layer));
    assert.equal(await manifestThere('badsmall/app/two', '1'), false);
    assert.equal(await blobThere('badsmall/app/two', layer), false);
  });

  test('fetchForUpload gives the same bytes as fetch to a consumer that takes them slowly, and verifies itself', async () => {
    const b = await openBundle(bundle);
    try {
      const desc = one.blobs.find((x) => x.descriptor.digest === bigLayer())!.descriptor;
      const stream = await b.fetchForUpload(desc);
      assert.ok(isSelfVerifying(stream, desc));
      const hash = createHash('sha256');
      let size = 0;
      await pipeline(
        stream,
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            size += chunk.length;
            setTimeout(cb, 1);
          },
        }),
      );
      assert.equal(`sha256:${hash.digest('hex')}`, desc.digest);
      assert.equal(size, desc.size);
    } finally {
      await b.close();
    }
  });
});
