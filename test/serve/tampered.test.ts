// `airlock serve` of a bundle whose layers were changed after packing, read by clients that do not
// hash what they get (curl, node:http): no response ever delivers a complete body that does not
// match its digest. A whole-blob GET is cut before its end (or refused), a Range gets no byte of a
// blob not checked whole, later requests get a 404 with an OCI error body, each blob is hashed
// once however often it is asked for, and a manifest changed under a running server is refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, layersOf, type BuiltImage } from '../helpers/images.ts';
import { startServe, type RunningServe } from '../helpers/serve.ts';
import { until } from '../helpers/wait.ts';
import { copyWithFlips, flipBlobByte } from '../helpers/tamper.ts';
import { startServer, type AccessLogEntry } from '../../src/serve/server.ts';
import { MANIFEST_MEDIA_TYPES } from '../../src/core/media-types.ts';
import { writeFixtureBundle } from './fixture.ts';

const MiB = 1024 * 1024;

interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The whole body announced arrived and the message ended cleanly. */
  complete: boolean;
}

/** A plain node:http GET that keeps whatever arrives, cut or not. */
function get(url: string, headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', finish);
      res.on('error', finish);
      res.on('close', finish);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

/** curl as a user runs it: exit code, status, bytes downloaded, the body. */
function curl(url: string, extra: string[] = []): Promise<{ exit: number; status: number; size: number; body: Buffer }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '30', '-o', '-', '-w', '\n%{http_code} %{size_download}', ...extra, url], { encoding: 'buffer', maxBuffer: 64 * MiB }, (err, stdout) => {
      const nl = stdout.lastIndexOf(0x0a);
      const [status, size] = stdout.subarray(nl + 1).toString().split(' ').map(Number);
      resolve({ exit: err ? Number((err as { code?: number }).code ?? 1) : 0, status: status!, size: size!, body: stdout.subarray(0, nl) });
    });
  });
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const errorCode = (b: Buffer): string | undefined => (JSON.parse(b.toString()) as { errors: { code: string }[] }).errors[0]?.code;

describe('serve: a bundle changed after packing', () => {
  let dir: string;
  let srv: RunningServe;
  const images: Record<string, BuiltImage> = {
    // 6 MiB: hashed on a worker thread; 3 MiB: on the main thread; both stream while checked.
    'docker.io/library/first:1': buildImage({ layers: [{ random: { bytes: 6 * MiB, seed: 101 } }] }),
    'docker.io/library/middle:1': buildImage({ layers: [{ random: { bytes: 3 * MiB, seed: 102 } }] }),
    'docker.io/library/last:1': buildImage({ layers: [{ random: { bytes: 6 * MiB, seed: 103 } }] }),
    // Checked before any answer.
    'docker.io/library/small:1': buildImage({ layers: [{ random: { bytes: 200 * 1024, seed: 104 } }] }),
    'docker.io/library/good:1': buildImage({ layers: [{ random: { bytes: 6 * MiB, seed: 105 } }] }),
  };
  const layer = (name: string): { digest: string; size: number } => layersOf(images[`docker.io/library/${name}:1`]!)[0]!.descriptor;
  const blobUrl = (name: string): string => `${srv.url}/v2/library/${name}/blobs/${layer(name).digest}`;

  /** The --json events on serve's stderr. */
  const events = (): Record<string, any>[] =>
    srv
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>);
  const checksOf = (digest: string): Record<string, any>[] => events().filter((e) => e.type === 'blob-check' && e.digest === digest);
  /** Everything serve wrote before it answered a marker request is on stderr (bounded wait). */
  async function settled(): Promise<void> {
    const marker = `/v2/?marker=${Math.random().toString(36).slice(2)}`;
    await get(`${srv.url}${marker}`);
    await until(() => events().some((e) => e.type === 'access' && e.path === marker), `the access log line of ${marker}`);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-serve-tampered-'));
    const good = join(dir, 'good.tar');
    await writeFixtureBundle(good, images);
    const bad = join(dir, 'bad.tar');
    await copyWithFlips(good, bad, {
      [layer('first').digest]: 0,
      [layer('middle').digest]: Math.floor(layer('middle').size / 2),
      [layer('last').digest]: -1,
      [layer('small').digest]: 1000,
    });
    srv = await startServe([bad, '--listen', '127.0.0.1:0']);
  });
  after(async () => {
    await srv?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a flip in the first byte: curl gets a body cut short, then a 404 with an OCI error; HEAD and Range get no bytes', async () => {
    const { size } = layer('first');
    const first = await curl(blobUrl('first'));
    assert.notEqual(first.exit, 0, 'curl reports the transfer as failed');
    assert.ok(first.size < size, `cut short: ${first.size} of ${size} bytes`);
    assert.ok(!(first.status === 200 && first.size === size));

    const again = await curl(blobUrl('first'));
    assert.equal(again.exit, 0);
    assert.equal(again.status, 404);
    assert.equal(errorCode(again.body), 'BLOB_UNKNOWN');
    assert.match(again.body.toString(), /do not match its digest/);

    const head = await curl(blobUrl('first'), ['-I']);
    assert.equal(head.status, 404);
    const range = await curl(blobUrl('first'), ['-r', '0-99']);
    assert.equal(range.status, 404);
    assert.equal(errorCode(range.body), 'BLOB_UNKNOWN');
  });

  test('a flip in the middle, asked for by Range first: a 404 before any byte, and a full GET after it too', async () => {
    const range = await get(blobUrl('middle'), { range: 'bytes=0-1023' });
    assert.equal(range.status, 404);
    assert.equal(errorCode(range.body), 'BLOB_UNKNOWN');
    const suffix = await get(blobUrl('middle'), { range: 'bytes=-10' });
    assert.equal(suffix.status, 404);
    const whole = await get(blobUrl('middle'));
    assert.equal(whole.status, 404);
  });

  test('a flip in the last byte, 10 GETs at once: none completes, the blob is hashed once, the log says why', async () => {
    const { digest, size } = layer('last');
    const results = await Promise.all(Array.from({ length: 10 }, () => get(blobUrl('last'))));
    for (const r of results) {
      assert.ok(!(r.status === 200 && r.complete), 'no complete 200');
      if (r.status === 200) assert.ok(r.body.length < size, `cut short: ${r.body.length} of ${size}`);
      else assert.equal(r.status, 404);
      assert.notEqual(sha256(r.body), digest);
    }
    await settled();
    const checks = checksOf(digest);
    assert.equal(checks.length, 1, JSON.stringify(checks));
    assert.equal(checks[0]!.ok, false);
    assert.match(checks[0]!.error, /digest mismatch/);
    assert.match(srv.stderr(), new RegExp(`warning: blob ${digest}.*digest mismatch.*no longer served`));
    const cut = events().filter((e) => e.type === 'access' && e.path.includes(digest) && e.aborted === true);
    if (results.some((r) => r.status === 200)) assert.ok(cut.some((e) => /digest mismatch/.test(e.error)), JSON.stringify(cut));
  });

  test('a flipped small layer is refused with a clean 404 on its first request', async () => {
    const r = await get(blobUrl('small'));
    assert.equal(r.status, 404);
    assert.equal(errorCode(r.body), 'BLOB_UNKNOWN');
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  test('an intact layer: Range and whole GETs give its bytes; 50 requests hash it once', async () => {
    const { digest, size } = layer('good');
    const part = await get(blobUrl('good'), { range: 'bytes=100-199' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 100-199/${size}`);
    assert.equal(part.body.length, 100);
    const whole = await curl(blobUrl('good'));
    assert.equal(whole.exit, 0);
    assert.equal(whole.status, 200);
    assert.equal(sha256(whole.body), digest);
    assert.deepEqual(part.body, whole.body.subarray(100, 200));
    const many = await Promise.all(Array.from({ length: 24 }, () => get(blobUrl('good'))));
    for (let i = 0; i < 24; i++) many.push(await get(blobUrl('good'), i % 2 ? { range: `bytes=${i}-` } : {}));
    for (const r of many) {
      assert.ok(r.complete && (r.status === 200 || r.status === 206));
      if (r.status === 200) assert.equal(sha256(r.body), digest);
    }
    await settled();
    const checks = checksOf(digest);
    assert.equal(checks.length, 1, `hashed once for 50 requests: ${JSON.stringify(checks)}`);
    assert.equal(checks[0]!.ok, true);
  });
});

describe('serve: a bundle changed while it is served', () => {
  test('a manifest changed under the running server is refused (404), never sent; a layer changed is cut short', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-serve-live-'));
    const img = buildImage({ layers: [{ random: { bytes: 3 * MiB, seed: 201 } }] });
    const path = join(dir, 'b.tar');
    await writeFixtureBundle(path, { 'docker.io/library/live:1': img });
    const copy = join(dir, 'served.tar');
    await copyFile(path, copy);
    const log: AccessLogEntry[] = [];
    const srv = await startServer({ bundles: [copy], listen: '127.0.0.1:0', onAccess: (e) => log.push(e) });
    try {
      const manifestUrl = `${srv.url}/v2/library/live/manifests/1`;
      const accept = { accept: MANIFEST_MEDIA_TYPES.join(', ') };
      const ok = await get(manifestUrl, accept);
      assert.equal(ok.status, 200);
      assert.equal(sha256(ok.body), img.root.digest);

      // The server reads the file it opened: the same inode, changed in place.
      await flipBlobByte(copy, img.root.digest, 10);
      const bad = await get(manifestUrl, accept);
      assert.equal(bad.status, 404);
      assert.equal(errorCode(bad.body), 'MANIFEST_UNKNOWN');
      const byDigest = await get(`${srv.url}/v2/library/live/manifests/${img.root.digest}`, accept);
      assert.equal(byDigest.status, 404);
      assert.ok(log.some((e) => e.status === 404 && /digest mismatch/.test(e.error ?? '')), JSON.stringify(log));

      const l = layersOf(img)[0]!.descriptor;
      await flipBlobByte(copy, l.digest, 2 * MiB);
      const cut = await get(`${srv.url}/v2/library/live/blobs/${l.digest}`);
      assert.ok(!(cut.status === 200 && cut.complete));
      assert.ok(cut.body.length < l.size);
      assert.notEqual(sha256(cut.body), l.digest);
    } finally {
      await srv.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
