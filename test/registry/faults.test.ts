// The registry client when things go wrong: loopback servers in front of a real docker-registry
// that redirect, cut connections, answer 503/429, lie about content, or serve schema 1.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { ExitCode, IntegrityError, NetworkError, RegistryError, UsageError } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import type { Descriptor } from '../../src/core/manifest.ts';
import { MediaType } from '../../src/core/media-types.ts';
import { MAX_RESUMES } from '../../src/registry/blob-download.ts';
import { VerifyStream, isSelfVerifying, markSelfVerifying } from '../../src/content/verify-stream.ts';
import { RegistryClient, type RegistryOptions, type RemoteRepository } from '../../src/registry/client.ts';
import { freePort, startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { bytesDescriptor, digestOfStream, forward, json, patternDescriptor, patternStream, startServer, type LoopbackServer } from './support.ts';

const noCredentials = { get: async () => undefined };
const BLOB_PATH = /^\/v2\/.+\/blobs\/sha256:[a-f0-9]{64}$/;
const MANIFEST_PATH = /^\/v2\/.+\/manifests\/[^/]+$/;

let registry: RunningRegistry;
let direct: RegistryClient;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  registry = await startRegistry();
  direct = new RegistryClient({ credentials: noCredentials });
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await direct?.close();
  await registry?.stop();
});

/** A client for tests: hermetic credentials, short backoff; closed after the file. */
function newClient(opts: RegistryOptions = {}): RegistryClient {
  const c = new RegistryClient({ credentials: noCredentials, retryBaseDelayMs: 5, ...opts });
  cleanups.push(() => c.close());
  return c;
}

async function server(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<LoopbackServer> {
  const s = await startServer(handler);
  cleanups.push(() => s.close());
  return s;
}

function directRepo(name: string): RemoteRepository {
  return direct.repository({ registry: registry.host, repository: name });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Push a generated blob straight to the registry; returns its descriptor. */
async function seedBlob(repository: string, size: number, seed: number): Promise<Descriptor> {
  const desc = await patternDescriptor(size, seed);
  await directRepo(repository).push(desc, patternStream(size, seed));
  return desc;
}

async function seedImage(repository: string, tag: string): Promise<{ desc: Descriptor; bytes: Buffer }> {
  const r = directRepo(repository);
  const cfg = bytesDescriptor(json({ os: 'linux', tag }), MediaType.ociConfig);
  await r.push(cfg.desc, Readable.from([cfg.bytes]));
  const bytes = json({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: cfg.desc, layers: [] });
  const { desc } = bytesDescriptor(bytes, MediaType.ociManifest);
  await r.pushReference(desc, bytes, tag);
  return { desc, bytes };
}

describe('schema 1', () => {
  test('a schema 1 manifest is refused with MANIFEST_SCHEMA1, by Content-Type or by content', async () => {
    const schema1 = json({ schemaVersion: 1, name: 'old/app', tag: '1.0', architecture: 'amd64', fsLayers: [], history: [] });
    const s = await server((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      const signed = req.url === '/v2/old/app/manifests/1.0';
      const plain = req.url === '/v2/old/app/manifests/json';
      if (!signed && !plain) return void res.writeHead(404).end();
      res.writeHead(200, {
        'content-type': signed ? MediaType.dockerSchema1Signed : 'application/json',
        'content-length': String(schema1.length),
        'docker-content-digest': digestOf(schema1),
      });
      res.end(req.method === 'HEAD' ? undefined : schema1);
    });
    const r = newClient().repository({ registry: s.host, repository: 'old/app' });
    for (const call of [() => r.resolve('1.0'), () => r.fetchManifest('1.0'), () => r.resolve('json'), () => r.fetchManifest('json')]) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof UsageError, String(e));
        assert.equal(e.code, 'MANIFEST_SCHEMA1');
        assert.equal(e.exitCode, ExitCode.usage);
        assert.match(e.message, /schema 1 is not supported/);
        assert.ok(e.hint);
        return true;
      });
    }
  });
});

describe('redirects', () => {
  test('blob GETs redirected to another origin are followed and verified; a redirected HEAD means the blob exists', async () => {
    const desc = await seedBlob('lab/redirect', 300_000, 3);
    let redirected = 0;
    // storage signed for GET only, like a presigned S3 URL
    const storage = await server((req, res) => {
      if (req.method !== 'GET') return void res.writeHead(403).end();
      forward(registry.url, req, res, { ...req.headers, host: registry.host });
    });
    const proxy = await server((req, res) => {
      if ((req.method === 'GET' || req.method === 'HEAD') && BLOB_PATH.test(req.url ?? '')) {
        redirected++;
        return void res.writeHead(307, { location: `${storage.url}${req.url}` }).end();
      }
      forward(registry.url, req, res);
    });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/redirect' });
    assert.deepEqual(await digestOfStream(await r.fetch(desc)), { digest: desc.digest, size: desc.size });
    // The lean download path met the redirect and handed the GET to the full client, which followed it.
    assert.equal(redirected, 2);
    // From then on this registry's blobs go through the full client directly: one redirect per GET.
    assert.deepEqual(await digestOfStream(await r.fetch(desc)), { digest: desc.digest, size: desc.size });
    assert.equal(redirected, 3);
    assert.equal(await r.exists(desc), true);
    assert.equal(redirected, 4);
  });

  test('the Authorization header goes to the registry but never to the storage it redirects to', async () => {
    const desc = await seedBlob('lab/redirect', 50_000, 4);
    const expected = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
    const seen = { registry: [] as Array<string | undefined>, storage: [] as Array<string | undefined> };
    const storage = await server((req, res) => {
      seen.storage.push(req.headers.authorization);
      forward(registry.url, req, res, { ...req.headers, host: registry.host });
    });
    const gate = await server((req, res) => {
      if (req.headers.authorization !== expected) {
        return void res.writeHead(401, { 'www-authenticate': 'Basic realm="airlock-test"', 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      }
      seen.registry.push(req.headers.authorization);
      if (req.method === 'GET' && BLOB_PATH.test(req.url ?? '')) {
        return void res.writeHead(307, { location: `${storage.url}${req.url}?X-Amz-Signature=abc` }).end();
      }
      forward(registry.url, req, res);
    });
    const client = newClient({
      credentials: { get: async (reg: string) => (reg === gate.host ? { username: 'alice', password: 's3cret' } : undefined) },
    });
    const r = client.repository({ registry: gate.host, repository: 'lab/redirect' });
    assert.deepEqual(await digestOfStream(await r.fetch(desc)), { digest: desc.digest, size: desc.size });
    assert.ok(seen.registry.length > 0);
    assert.deepEqual(seen.storage, [undefined]);
    // and uploads through the same gate carry the credentials all the way
    const up = bytesDescriptor('pushed through the gate', 'application/octet-stream');
    await r.push(up.desc, Readable.from([up.bytes]));
    assert.equal(await directRepo('lab/redirect').exists(up.desc), true);
  });
});

/** A proxy that cuts the first blob GET (or every one) after `cutAfter` bytes; records Range headers. */
async function cuttingProxy(opts: { cutAfter: number; always?: boolean; ignoreRange?: boolean }) {
  const ranges: Array<string | undefined> = [];
  let cuts = 0;
  const proxy = await server((req, res) => {
    if (!(req.method === 'GET' && BLOB_PATH.test(req.url ?? ''))) return forward(registry.url, req, res);
    ranges.push(req.headers.range);
    const headers = { ...req.headers };
    if (opts.ignoreRange) delete headers.range;
    const cut = opts.always === true || cuts === 0;
    if (!cut) return forward(registry.url, req, res, headers);
    cuts++;
    const up = httpRequest(`${registry.url}${req.url}`, { headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (sent >= opts.cutAfter) return;
        const part = chunk.subarray(0, opts.cutAfter - sent);
        sent += part.length;
        res.write(part, () => {
          if (sent >= opts.cutAfter) {
            upRes.destroy();
            res.socket?.destroy();
          }
        });
      });
    });
    up.end();
  });
  return { proxy, ranges };
}

describe('resume', () => {
  test('a download cut mid-body continues with Range from the byte reached, digest intact', async () => {
    const desc = await seedBlob('lab/resume', 3 * 1024 * 1024, 5);
    const { proxy, ranges } = await cuttingProxy({ cutAfter: 1024 * 1024 });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/resume' });
    assert.deepEqual(await digestOfStream(await r.fetch(desc)), { digest: desc.digest, size: desc.size });
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0], undefined);
    const start = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
    assert.ok(start > 0 && start <= 1024 * 1024, `resumed at ${ranges[1]}`);
  });

  test('a server that ignores Range still yields the right bytes (the head is skipped)', async () => {
    const desc = await seedBlob('lab/resume', 2 * 1024 * 1024, 6);
    const { proxy, ranges } = await cuttingProxy({ cutAfter: 700_000, ignoreRange: true });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/resume' });
    assert.deepEqual(await digestOfStream(await r.fetch(desc)), { digest: desc.digest, size: desc.size });
    assert.equal(ranges.length, 2);
  });

  test('a connection that keeps breaking gives up after a bounded number of resumes', async () => {
    const desc = await seedBlob('lab/resume', 4 * 1024 * 1024, 8);
    const { proxy, ranges } = await cuttingProxy({ cutAfter: 100_000, always: true });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/resume' });
    await assert.rejects(readAll(await r.fetch(desc)), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.code, 'DOWNLOAD_INTERRUPTED');
      assert.match(e.message, new RegExp(`blob ${desc.digest} of ${proxy.host}/lab/resume`));
      return true;
    });
    assert.equal(ranges.length, MAX_RESUMES + 1);
  });
});

describe('retries', () => {
  /** Answer `status` to the first `times` requests matching `match`, then forward. */
  async function flakyProxy(match: (req: IncomingMessage) => boolean, times: number, status: number, headers: Record<string, string> = {}) {
    const hits = { failed: 0, matched: 0 };
    const proxy = await server((req, res) => {
      if (match(req)) {
        hits.matched++;
        if (hits.failed < times) {
          hits.failed++;
          req.resume();
          return void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
        }
      }
      forward(registry.url, req, res);
    });
    return { proxy, hits };
  }

  test('503 twice, then the answer: the caller never notices', async () => {
    const img = await seedImage('lab/retry', 'v1');
    const { proxy, hits } = await flakyProxy((req) => MANIFEST_PATH.test(req.url ?? ''), 2, 503);
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/retry' });
    assert.deepEqual(await r.resolve('v1'), img.desc);
    assert.equal(hits.matched, 3);
  });

  test('429 with Retry-After is honoured', async () => {
    const img = await seedImage('lab/retry', 'v2');
    const { proxy, hits } = await flakyProxy((req) => MANIFEST_PATH.test(req.url ?? ''), 1, 429, { 'retry-after': '1' });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/retry' });
    const started = Date.now();
    assert.deepEqual((await r.fetchManifest('v2')).bytes, img.bytes);
    assert.ok(Date.now() - started >= 900, `waited only ${Date.now() - started} ms`);
    assert.equal(hits.matched, 2);
  });

  test('a registry that stays unavailable ends in a network-class RegistryError after the retries', async () => {
    await seedImage('lab/retry', 'v3');
    const { proxy, hits } = await flakyProxy((req) => MANIFEST_PATH.test(req.url ?? ''), 100, 503);
    const r = newClient({ retries: 2 }).repository({ registry: proxy.host, repository: 'lab/retry' });
    await assert.rejects(r.resolve('v3'), (e: unknown) => {
      assert.ok(e instanceof RegistryError);
      assert.equal(e.status, 503);
      assert.equal(e.exitCode, ExitCode.network);
      assert.match(e.message, /after 3 attempts/);
      return true;
    });
    assert.equal(hits.matched, 3);
  });

  test('a small blob upload answered 503 is replayed from memory', async () => {
    const { proxy, hits } = await flakyProxy((req) => req.method === 'PUT', 1, 503);
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/retry' });
    const { desc, bytes } = bytesDescriptor('small and replayable', 'application/octet-stream');
    await r.push(desc, Readable.from([bytes]));
    assert.equal(hits.matched, 2);
    assert.equal(await directRepo('lab/retry').exists(desc), true);
  });

  test('a streamed upload answered 503 fails with a NetworkError naming the blob (no replay)', async () => {
    const { proxy, hits } = await flakyProxy((req) => req.method === 'PUT', 1, 503);
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/retry' });
    const size = 2 * 1024 * 1024;
    const desc = await patternDescriptor(size, 9);
    await assert.rejects(r.push(desc, patternStream(size, 9)), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.code, 'STREAM_NOT_REPLAYABLE');
      assert.match(e.message, new RegExp(`blob ${desc.digest}`));
      return true;
    });
    assert.equal(hits.matched, 1);
  });

  // Sources that verify themselves (a bundle's blobs, a registry's downloads) are sent without a
  // second hash: a registry's early or late refusal must still read as the refusal.
  for (const early of [true, false]) {
    test(`a streamed self-verifying upload answered 503 ${early ? 'before' : 'after'} its body fails with STREAM_NOT_REPLAYABLE`, async () => {
      const proxy = await server((req, res) => {
        if (req.method !== 'PUT') return forward(registry.url, req, res);
        const refuse = (): void => void res.writeHead(503, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
        req.resume();
        if (early) refuse();
        else req.on('end', refuse);
      });
      const r = newClient().repository({ registry: proxy.host, repository: 'lab/selfverify' });
      const size = 12 * 1024 * 1024;
      const desc = await patternDescriptor(size, 41);
      const content = patternStream(size, 41).pipe(new VerifyStream(desc, `blob ${desc.digest} at its source`));
      assert.ok(isSelfVerifying(content, desc));
      await assert.rejects(r.push(desc, content), (e: unknown) => {
        assert.ok(e instanceof NetworkError, String(e));
        assert.equal(e.code, 'STREAM_NOT_REPLAYABLE');
        assert.match(e.message, new RegExp(`blob ${desc.digest}`));
        return true;
      });
    });
  }

  test('a registry that answers 201 before a self-verifying source has ended: the upload fails, as nothing checked the bytes on this side', async () => {
    let answered!: () => void;
    const created = new Promise<void>((resolve) => (answered = resolve));
    const proxy = await server((req, res) => {
      if (req.method !== 'PUT') return forward(registry.url, req, res);
      req.resume();
      req.on('end', () => void res.writeHead(201, { 'content-length': '0' }).end(answered));
    });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/liar' });
    const size = 3 * 1024 * 1024;
    const desc = await patternDescriptor(size, 42);
    // Every byte goes out, and only then (after the registry said 201) does the source's own check fail.
    const inner = patternStream(size, 42);
    const content = new Readable({
      read() {
        const chunk = inner.read() as Buffer | null;
        if (chunk !== null) return void this.push(chunk);
        if (inner.readableEnded) return void created.then(() => this.destroy(new IntegrityError(`blob ${desc.digest}: digest mismatch`, { code: 'DIGEST_MISMATCH' })));
        inner.once('readable', () => this.read(0));
        inner.once('end', () => this.read(0));
      },
    });
    markSelfVerifying(content, desc);
    await assert.rejects(r.push(desc, content), (e: unknown) => e instanceof IntegrityError && ['DIGEST_MISMATCH', 'BLOB_UNVERIFIED'].includes(e.code) && e.message.includes(desc.digest));
  });

  test('nothing listening: a NetworkError naming the host and what to check', async () => {
    const port = await freePort();
    const r = newClient({ retries: 1 }).repository({ registry: `127.0.0.1:${port}`, repository: 'lab/x' });
    await assert.rejects(r.resolve('1.0'), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.code, 'CONNECTION_REFUSED');
      assert.equal(e.exitCode, ExitCode.network);
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}: connection refused`));
      assert.match(e.hint ?? '', /running/);
      return true;
    });
  });
});

describe('upload shape', () => {
  test('a blob goes up as HEAD, POST, then one PUT ?digest= with Content-Length (no chunked PATCH loop)', async () => {
    const log: string[] = [];
    const proxy = await server((req, res) => {
      const path = (req.url ?? '').replace(/\/uploads\/[^?]+/, '/uploads/<id>').replace(/_state=[^&]+/, '_state=<s>').replace(/sha256(:|%3A)[a-f0-9]{64}/g, '<digest>');
      log.push(`${req.method} ${path} ${req.headers['content-length'] ?? '-'} ${req.headers['transfer-encoding'] ?? '-'}`);
      forward(registry.url, req, res);
    });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/shape' });
    const size = 3 * 1024 * 1024;
    const desc = await patternDescriptor(size, 31);
    await r.push(desc, patternStream(size, 31));
    assert.deepEqual(log.filter((l) => !l.startsWith('GET /v2/ ')), [
      'HEAD /v2/lab/shape/blobs/<digest> - -',
      'POST /v2/lab/shape/blobs/uploads/ 0 -',
      `PUT /v2/lab/shape/blobs/uploads/<id>?_state=<s>&digest=<digest> ${size} -`,
    ]);
  });
});

describe('limits', () => {
  test('requests in flight per host stay within the concurrency limit, across repositories', async () => {
    let inFlight = 0;
    let peak = 0;
    const proxy = await server((req, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      res.on('close', () => inFlight--);
      // Held a moment so requests overlap (a limit not kept shows as a higher peak); the assertion
      // does not depend on its length.
      setTimeout(() => forward(registry.url, req, res), 30);
    });
    const client = newClient({ concurrency: 2 });
    const repos = ['lab/limit-a', 'lab/limit-b'].map((repository) => client.repository({ registry: proxy.host, repository }));
    const checks = Array.from({ length: 10 }, (_, i) =>
      repos[i % 2]!.exists({ mediaType: 'application/octet-stream', digest: digestOf(`x${i}`), size: 2 }),
    );
    assert.deepEqual(await Promise.all(checks), Array(10).fill(false));
    assert.ok(peak <= 2, `peak ${peak}`);
  });
});

describe('lying servers', () => {
  test('a blob whose bytes do not match its digest fails the stream with IntegrityError', async () => {
    const desc = await seedBlob('lab/liar', 100_000, 12);
    const proxy = await server((req, res) => {
      if (!(req.method === 'GET' && BLOB_PATH.test(req.url ?? ''))) return forward(registry.url, req, res);
      const up = httpRequest(`${registry.url}${req.url}`, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        let first = true;
        upRes.on('data', (c: Buffer) => {
          if (first) c = Buffer.concat([Buffer.from([c[0]! ^ 0xff]), c.subarray(1)]);
          first = false;
          res.write(c);
        });
        upRes.on('end', () => res.end());
      });
      up.end();
    });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/liar' });
    await assert.rejects(readAll(await r.fetch(desc)), (e: unknown) => {
      assert.ok(e instanceof IntegrityError, String(e));
      assert.equal(e.code, 'DIGEST_MISMATCH');
      assert.equal(e.exitCode, ExitCode.integrity);
      assert.match(e.message, new RegExp(`blob ${desc.digest}`));
      return true;
    });
  });

  test('a manifest whose bytes do not match Docker-Content-Digest (or the digest asked for) is refused', async () => {
    const img = await seedImage('lab/liar', 'v1');
    const tampered = Buffer.concat([img.bytes, Buffer.from(' ')]);
    const s = await server((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(200, {
        'content-type': MediaType.ociManifest,
        'docker-content-digest': img.desc.digest,
        'content-length': String(tampered.length),
      });
      res.end(req.method === 'HEAD' ? undefined : tampered);
    });
    const r = newClient().repository({ registry: s.host, repository: 'lab/liar' });
    for (const ref of ['v1', img.desc.digest]) {
      await assert.rejects(r.fetchManifest(ref), (e: unknown) => {
        assert.ok(e instanceof IntegrityError, String(e));
        assert.equal(e.code, 'DIGEST_MISMATCH');
        return true;
      });
    }
    // The tampered manifest is also longer than its descriptor says.
    await assert.rejects(r.fetch(img.desc), { name: 'IntegrityError', code: 'SIZE_MISMATCH', message: new RegExp(`image ${s.host}/lab/liar@${img.desc.digest}: more than the expected ${img.desc.size} bytes`) });
  });
});

describe('immutable tags', () => {
  test('a registry refusing to move a tag (412, or 400/409 saying immutable) gives a ConflictError naming the tag', async () => {
    const img = await seedImage('lab/immutable', 'v1');
    const answers: Array<{ status: number; body: string }> = [
      { status: 412, body: '{"errors":[{"code":"PRECONDITION","message":"Failed to process request due to \'lab/immutable:v1\' configured as immutable."}]}' },
      { status: 409, body: '{"errors":[{"code":"DENIED","message":"The tag is immutable"}]}' },
      { status: 400, body: '{"errors":[{"code":"TAG_INVALID","message":"tag is immutable"}]}' },
    ];
    let next = 0;
    const proxy = await server((req, res) => {
      if (req.method === 'PUT' && MANIFEST_PATH.test(req.url ?? '')) {
        const a = answers[next++]!;
        req.resume();
        return void res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
      }
      forward(registry.url, req, res);
    });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/immutable' });
    for (let i = 0; i < answers.length; i++) {
      await assert.rejects(r.pushReference(img.desc, img.bytes, 'v1'), (e: unknown) => {
        assert.equal((e as { code?: string }).code, 'TAG_IMMUTABLE', String(e));
        assert.equal((e as { exitCode?: number }).exitCode, ExitCode.conflict);
        assert.match((e as Error).message, new RegExp(`image ${proxy.host}/lab/immutable:v1 is immutable`));
        assert.match((e as { hint?: string }).hint ?? '', /new tag/);
        return true;
      });
    }
  });
});

describe('cancellation', () => {
  test('aborting mid-download ends the stream with AbortedError', async () => {
    const desc = await seedBlob('lab/abort', 1024 * 1024, 13);
    const proxy = await server((req, res) => {
      if (!(req.method === 'GET' && BLOB_PATH.test(req.url ?? ''))) return forward(registry.url, req, res);
      res.writeHead(200, { 'content-length': String(desc.size), 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(64 * 1024)); // then stall forever
    });
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/abort' });
    const ac = new AbortController();
    const stream = await r.fetch(desc, { signal: ac.signal });
    // The server stalls forever: the stream ending at all shows the abort ended it.
    await assert.rejects(
      (async () => {
        for await (const _ of stream) ac.abort();
      })(),
      { name: 'AbortedError', code: 'ABORTED', exitCode: ExitCode.interrupted },
    );
  });
});
