// Chunked uploads against the real docker-registry: a small blob refused with 413 by nginx goes
// again in chunks within the same push (no second attempt of the caller's needed), and what a
// broken chunk costs where nothing buffers requests: distribution invalidates (and cancels) a
// session whose request broke mid-body, so the upload is reported lost, clearly, and a second
// push starts it again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startRegistry, startTokenRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { startCuttingRelay } from './relay.ts';
import { digestOfStream, forward, patternStream, startServer } from './support.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { NetworkError } from '../../src/core/errors.ts';
import type { Descriptor } from '../../src/core/manifest.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

async function blob(size: number, seed: number): Promise<Descriptor> {
  const { digest } = await digestOfStream(patternStream(size, seed));
  return { mediaType: 'application/octet-stream', digest, size };
}

describe('chunked uploads to docker-registry', () => {
  let registry: RunningRegistry;
  let proxy: RunningNginx;

  before(async () => {
    registry = await startRegistry();
    proxy = await startNginx(registry.host, { maxBody: '512k' });
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  test('a blob held in memory and refused with 413 is sent again in chunks at once', async () => {
    const desc = await blob(900 * KiB, 7);
    const warnings: Array<{ code: string; message: string }> = [];
    const client = new RegistryClient({ onWarning: (w) => warnings.push(w) });
    try {
      await client.repository({ registry: proxy.host, repository: 'small/chunks' }).push(desc, patternStream(desc.size, 7));
    } finally {
      await client.close();
    }
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['UPLOAD_CHUNKED'],
    );
    assert.match(warnings[0]!.message, /refused a 900\.0 KiB upload as too large \(413\): uploading larger blobs in chunks of 256\.0 KiB/);
    const log = (await proxy.accessLog()).split('\n').filter(Boolean);
    assert.ok(log.filter((l) => l.startsWith('PATCH 202')).length >= 4, log.join('\n'));
    const check = new RegistryClient();
    try {
      assert.equal(await check.repository({ registry: registry.host, repository: 'small/chunks' }).exists(desc), true);
    } finally {
      await check.close();
    }
  });

  test('a chunk broken mid-body loses the session on distribution: said plainly, and a new push completes', async () => {
    const desc = await blob(6 * MiB, 9);
    const relay = await startCuttingRelay(registry.host, { direction: 'up', after: 2 * MiB + 512 * KiB });
    const client = new RegistryClient({ chunkSize: MiB, retryBaseDelayMs: 1 });
    try {
      const repo = client.repository({ registry: relay.host, repository: 'cut/chunks' });
      await assert.rejects(
        repo.push(desc, patternStream(desc.size, 9)),
        (e: unknown) => e instanceof NetworkError && e.code === 'UPLOAD_SESSION_LOST' && /the registry dropped the upload session after .* at byte 2097152/.test(e.message),
      );
      assert.ok(relay.cut);
      await repo.push(desc, patternStream(desc.size, 9));
      assert.equal(await repo.exists(desc), true);
    } finally {
      await client.close();
      await relay.close();
    }
  });

  test('chunks carry the token of a Bearer-token registry', async () => {
    const tokenRegistry = await startTokenRegistry({ users: { alice: 'alice-pw' } });
    const desc = await blob(3 * MiB + 5, 11);
    const client = new RegistryClient({ chunkSize: MiB, credentials: { get: async () => ({ username: 'alice', password: 'alice-pw' }) } });
    try {
      const repo = client.repository({ registry: tokenRegistry.host, repository: 'private/chunks' });
      await repo.push(desc, patternStream(desc.size, 11));
      assert.equal(await repo.exists(desc), true);
      // One token for the push: every chunk reused it.
      assert.equal(tokenRegistry.issuer.requests.filter((r) => r.status === 200 && r.scopes.some((sc) => sc.includes('push'))).length, 1);
    } finally {
      await client.close();
      await tokenRegistry.stop();
    }
  });

  test('a chunk answered 503 is resumed from where the registry stands, after a pause', async () => {
    const desc = await blob(3 * MiB, 13);
    let refuse = 1;
    const seen: string[] = [];
    const front = await startServer((req, res) => {
      seen.push(req.method ?? '');
      if (req.method === 'PATCH' && seen.filter((m) => m === 'PATCH').length === 2 && refuse-- > 0) {
        req.resume();
        return void res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' }).end('{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}');
      }
      forward(registry.url, req, res);
    });
    const warnings: string[] = [];
    const client = new RegistryClient({ chunkSize: MiB, onWarning: (w) => warnings.push(w.message) });
    try {
      const repo = client.repository({ registry: front.host, repository: 'busy/chunks' });
      await repo.push(desc, patternStream(desc.size, 13));
      assert.equal(await repo.exists(desc), true);
    } finally {
      await client.close();
      await front.close();
    }
    assert.match(warnings.join('\n'), /answered 503 while uploading blob .*; the registry holds 1\.0 MiB: going on from there \(resume 1 of 5\)/);
    // The status request came between the refused chunk and its resend.
    assert.deepEqual(seen.slice(seen.indexOf('PATCH') + 1, seen.indexOf('PATCH') + 4), ['PATCH', 'GET', 'PATCH']);
  });
});
