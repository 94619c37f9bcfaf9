// A 1 GiB blob up and down through a loopback relay that resets the connection once, halfway:
// both transfers complete without starting over (the relay counts every byte it carried), the
// bytes stored and read are the blob's, and memory stays far below the blob's size.
//
// The upload goes in chunks through nginx with request buffering on, which hands docker-registry
// only whole requests: the registry then holds every acknowledged chunk and nothing of the broken
// one, and its upload status (GET on the session, Range: 0-N) is where the upload goes on. (Behind
// no such proxy, distribution invalidates a session whose request broke mid-body; see
// blob-upload-chunked.ts.) A chunk is never resent blindly: what recovers the upload is the
// registry's reported offset.
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { startNginx, type RunningNginx } from '../helpers/nginx.ts';
import { startCuttingRelay, type CuttingRelay } from './relay.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import type { Descriptor } from '../../src/core/manifest.ts';
import type { Digest } from '../../src/core/digest.ts';

const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;
const CHUNK = 32 * MiB;
/** The digest of blobStream(): known, so no pass over 1 GiB is spent finding it (a wrong one fails the upload). */
const DIGEST = 'sha256:5b3b1d33fa6eb0cb067a6b335df5eeb34c089ba0baa3b58ef5a83cacf8031eb1' as Digest;

/** SIZE bytes of AES-CTR keystream, generated 1 MiB at a time: fast, incompressible, never held whole. */
function blobStream(): Readable {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(MiB);
  let produced = 0;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (produced >= SIZE) return void this.push(null);
      produced += MiB;
      this.push(cipher.update(zeros));
    },
  });
}

/** Peak RSS growth over `work`, sampled every 20 ms. */
async function peakRssGrowth(work: () => Promise<void>): Promise<number> {
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage.rss()) - base;
}

describe('a 1 GiB blob survives a reset halfway, up and down', { timeout: 180_000 }, () => {
  let registry: RunningRegistry;
  let proxy: RunningNginx;
  let desc: Descriptor;

  before(async () => {
    registry = await startRegistry();
    proxy = await startNginx(registry.host, { maxBody: `${CHUNK / MiB}m`, requestBuffering: true });
    desc = { mediaType: 'application/octet-stream', digest: DIGEST, size: SIZE };
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  test('an upload cut halfway goes on from the offset the registry reports', async (t) => {
    const relay: CuttingRelay = await startCuttingRelay(proxy.host, { direction: 'up', after: SIZE / 2 + 5 * MiB + 12345 });
    const warnings: string[] = [];
    const client = new RegistryClient({ chunkSize: CHUNK, onWarning: (w) => warnings.push(w.message) });
    try {
      const growth = await peakRssGrowth(() => client.repository({ registry: relay.host, repository: 'big/blob' }).push(desc, blobStream()));
      t.diagnostic(`upload: ${(relay.up / MiB).toFixed(1)} MiB through the relay, memory grew ${(growth / MiB).toFixed(0)} MiB`);
      assert.ok(relay.cut, 'the relay did cut the upload');
      assert.match(warnings.join('\n'), /the connection to .* broke.* while uploading blob .*; the registry holds 512\.0 MiB: going on from there/);
      // All of it once, plus at most the chunk that broke: not the 1.5 GiB of starting over.
      assert.ok(relay.up < SIZE + 2 * CHUNK, `${relay.up} bytes sent`);
      assert.ok(growth < 400 * MiB, `memory grew by ${Math.round(growth / MiB)} MiB for a 1 GiB upload`);
    } finally {
      await client.close();
      await relay.close();
    }
    // The registry has the blob, under its digest and size.
    const check = new RegistryClient();
    try {
      assert.equal(await check.repository({ registry: registry.host, repository: 'big/blob' }).exists(desc), true);
    } finally {
      await check.close();
    }
  });

  test('a download cut halfway resumes with Range, and its bytes are the blob', async (t) => {
    const relay = await startCuttingRelay(registry.host, { direction: 'down', after: SIZE / 2 + 3 * MiB + 777 });
    const warnings: string[] = [];
    const client = new RegistryClient({ onWarning: (w) => warnings.push(w.message) });
    try {
      let bytes = 0;
      const growth = await peakRssGrowth(async () => {
        // fetch() ends only when the bytes matched the digest: a resume at a wrong offset fails it.
        for await (const c of await client.repository({ registry: relay.host, repository: 'big/blob' }).fetch(desc)) bytes += (c as Buffer).length;
      });
      t.diagnostic(`download: ${(relay.down / MiB).toFixed(1)} MiB through the relay, memory grew ${(growth / MiB).toFixed(0)} MiB`);
      assert.equal(bytes, SIZE);
      assert.ok(relay.cut, 'the relay did cut the download');
      assert.match(warnings.join('\n'), /while downloading blob .* \(after 51\d\.\d MiB\)/);
      assert.ok(relay.down < SIZE + 64 * MiB, `${relay.down} bytes received`);
      assert.ok(growth < 400 * MiB, `memory grew by ${Math.round(growth / MiB)} MiB for a 1 GiB download`);
    } finally {
      await client.close();
      await relay.close();
    }
  });
});
