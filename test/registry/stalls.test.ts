// The registry client against connections that stall, trickle or never answer, and registries
// that answer 500 now and then: loopback proxies in front of a real docker-registry. What a user
// relies on: a stalled or crawling transfer is cut after the timeout (never the 300 s of undici's
// defaults), retried (a download resumes with Range), and every cut and retry is explained; a
// silent host is never "connect timed out"; one 500 does not end the work, many end it with the
// number of attempts. Every timeout here is a few hundred milliseconds and every test is bounded.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { createSecureContext } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { ExitCode, NetworkError, RegistryError } from '../../src/core/errors.ts';
import type { Descriptor } from '../../src/core/manifest.ts';
import { MediaType } from '../../src/core/media-types.ts';
import { MAX_RESUMES } from '../../src/registry/blob-download.ts';
import { RegistryClient, type RegistryOptions } from '../../src/registry/client.ts';
import { LeanHttp } from '../../src/registry/lean-http.ts';
import { TransferStallError } from '../../src/registry/transfer-watch.ts';
import { Agent, request } from '../../src/registry/undici.ts';
import { watchedConnector } from '../../src/registry/undici-watch.ts';
import { startRegistry, startTokenRegistry, type RunningRegistry, type TokenRegistry } from '../helpers/registry.ts';
import { bytesDescriptor, digestOfStream, forward, json, patternDescriptor, patternStream, startServer, type LoopbackServer } from './support.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const TIMEOUT_MS = 300;
/** undici's header timer ticks every ~0.5 s: a 300 ms wait for headers may end up to a second later. */
const UNDICI_TIMER_SLACK = 1000;
/** Every test ends within this, whatever the code under test does (the old code waited 300 s). */
const TEST_BOUND = { timeout: 30_000 };
const BLOB_PATH = /^\/v2\/.+\/blobs\/sha256:[a-f0-9]{64}$/;
const MANIFEST_PATH = /^\/v2\/.+\/manifests\/[^/]+$/;
const noCredentials = { get: async () => undefined };
const HOST = String.raw`127\.0\.0\.1:\d+`;

let registry: RunningRegistry;
let tokenRegistry: TokenRegistry;
let direct: RegistryClient;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  [registry, tokenRegistry] = await Promise.all([startRegistry(), startTokenRegistry({ users: { alice: 'alice-pw' } })]);
  direct = new RegistryClient({ credentials: noCredentials });
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await direct?.close();
  await registry?.stop();
  await tokenRegistry?.stop();
});

/** A client with a short timeout whose warnings are collected. */
function newClient(opts: RegistryOptions = {}): { client: RegistryClient; warnings: string[] } {
  const warnings: string[] = [];
  const client = new RegistryClient({
    credentials: noCredentials,
    retryBaseDelayMs: 5,
    timeoutMs: TIMEOUT_MS,
    onWarning: (w) => {
      assert.equal(w.code, 'REGISTRY_RETRY');
      warnings.push(w.message);
    },
    ...opts,
  });
  cleanups.push(() => client.close());
  return { client, warnings };
}

async function server(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<LoopbackServer> {
  const s = await startServer(handler);
  cleanups.push(() => s.close());
  return s;
}

async function seedBlob(repository: string, size: number, seed: number): Promise<Descriptor> {
  const desc = await patternDescriptor(size, seed);
  await direct.repository({ registry: registry.host, repository }).push(desc, patternStream(size, seed));
  return desc;
}

async function seedImage(repository: string, tag: string): Promise<{ desc: Descriptor; bytes: Buffer }> {
  const r = direct.repository({ registry: registry.host, repository });
  const cfg = bytesDescriptor(json({ os: 'linux', tag }), MediaType.ociConfig);
  await r.push(cfg.desc, Readable.from([cfg.bytes]));
  const bytes = json({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: cfg.desc, layers: [], annotations: { pad: 'x'.repeat(2000) } });
  const { desc } = bytesDescriptor(bytes, MediaType.ociManifest);
  await r.pushReference(desc, bytes, tag);
  return { desc, bytes };
}

/**
 * Answer from the registry, but deliver the body the way `mode` says: `stall` sends the first
 * `after` bytes and then nothing (the connection stays open); `trickle` sends `step` bytes every
 * 20 ms. Stops when the client goes away.
 */
function misbehave(req: IncomingMessage, res: ServerResponse, mode: { stall: number } | { trickle: number }, target = registry): void {
  const up = httpRequest(`${target.url}${req.url}`, { method: req.method, headers: { ...req.headers, host: target.host } }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    const chunks: Buffer[] = [];
    upRes.on('data', (c: Buffer) => chunks.push(c));
    upRes.on('end', () => {
      const body = Buffer.concat(chunks);
      if ('stall' in mode) {
        res.write(body.subarray(0, mode.stall));
        return;
      }
      let at = 0;
      const timer = setInterval(() => {
        if (at >= body.length) return void clearInterval(timer);
        res.write(body.subarray(at, at + mode.trickle));
        at += mode.trickle;
      }, 20);
      res.on('close', () => clearInterval(timer));
    });
  });
  up.end();
}

/** A proxy that misbehaves on the first `times` requests `match` accepts, and forwards the rest. */
async function faultyProxy(match: (req: IncomingMessage) => boolean, times: number, mode: { stall: number } | { trickle: number }) {
  const seen: Array<string | undefined> = [];
  const proxy = await server((req, res) => {
    if (!match(req)) return forward(registry.url, req, res);
    seen.push(req.headers.range);
    if (seen.length <= times) return misbehave(req, res, mode);
    forward(registry.url, req, res);
  });
  return { proxy, seen };
}

const isBlobGet = (req: IncomingMessage): boolean => req.method === 'GET' && BLOB_PATH.test(req.url ?? '');

describe('stalled downloads', () => {
  test('a blob body that stops after 256 KiB is cut after the timeout and resumed with Range', TEST_BOUND, async () => {
    const desc = await seedBlob('lab/stall', 2 * MiB, 1);
    const { proxy, seen } = await faultyProxy(isBlobGet, 1, { stall: 256 * KiB });
    const { client, warnings } = newClient();
    const started = Date.now();
    const got = await digestOfStream(await client.repository({ registry: proxy.host, repository: 'lab/stall' }).fetch(desc));
    const elapsed = Date.now() - started;
    assert.deepEqual(got, { digest: desc.digest, size: desc.size });
    assert.ok(elapsed < TIMEOUT_MS * 1.25 + 2000, `took ${elapsed} ms with a ${TIMEOUT_MS} ms timeout`);
    assert.equal(seen.length, 2);
    assert.equal(seen[0], undefined);
    const from = Number(/^bytes=(\d+)-$/.exec(seen[1] ?? '')?.[1]);
    assert.ok(from > 0 && from <= 256 * KiB, `resumed with ${seen[1]}`);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(
      warnings[0]!,
      new RegExp(`^no bytes from ${HOST} for 300 ms while downloading blob ${desc.digest} of ${HOST}/lab/stall \\(after \\d+\\.\\d KiB\\); retrying \\(1 of ${MAX_RESUMES}\\)$`),
    );
  });

  test('the same through storage a registry redirects to (the full HTTP client)', TEST_BOUND, async () => {
    const desc = await seedBlob('lab/stall', 2 * MiB, 2);
    let stalled = 0;
    const storage = await server((req, res) => {
      if (stalled++ === 0) return misbehave(req, res, { stall: 256 * KiB });
      forward(registry.url, req, res, { ...req.headers, host: registry.host });
    });
    const proxy = await server((req, res) => {
      if (isBlobGet(req)) return void res.writeHead(307, { location: `${storage.url}${req.url}` }).end();
      forward(registry.url, req, res);
    });
    const { client, warnings } = newClient();
    const started = Date.now();
    const got = await digestOfStream(await client.repository({ registry: proxy.host, repository: 'lab/stall' }).fetch(desc));
    assert.deepEqual(got, { digest: desc.digest, size: desc.size });
    assert.ok(Date.now() - started < TIMEOUT_MS * 1.25 + 2000, `took ${Date.now() - started} ms`);
    assert.equal(stalled, 2);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, new RegExp(`^no bytes from ${HOST} for 300 ms while downloading blob ${desc.digest}`));
  });

  test('a consumer that holds the download back for longer than the timeout does not get it cut', TEST_BOUND, async () => {
    const desc = await seedBlob('lab/stall', 4 * MiB, 3);
    const { client, warnings } = newClient();
    const stream = await client.repository({ registry: registry.host, repository: 'lab/stall' }).fetch(desc);
    // Read a little, then nothing for three timeouts: the bytes wait in buffers, nobody stalled.
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setTimeout(r, 3 * TIMEOUT_MS));
    const rest = await digestOfStream({ [Symbol.asyncIterator]: () => it } as AsyncIterable<Buffer>);
    assert.ok(rest.size > 0);
    assert.deepEqual(warnings, []);
  });
});

describe('trickles', () => {
  const minRate = 64 * KiB;

  test('a blob body below the minimum rate is cut and the retry, served normally, completes', TEST_BOUND, async () => {
    const desc = await seedBlob('lab/trickle', 1 * MiB, 4);
    const { proxy, seen } = await faultyProxy(isBlobGet, 1, { trickle: 64 });
    const { client, warnings } = newClient({ minRate });
    const got = await digestOfStream(await client.repository({ registry: proxy.host, repository: 'lab/trickle' }).fetch(desc));
    assert.deepEqual(got, { digest: desc.digest, size: desc.size });
    assert.equal(seen.length, 2);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, new RegExp(`^${HOST} sent \\d+(\\.\\d)? (B|KiB)/s, below the minimum 64\\.0 KiB/s while downloading blob ${desc.digest} .*; retrying \\(1 of ${MAX_RESUMES}\\)$`));
  });

  test('when every attempt trickles, the download fails with the rate, the attempts counted (exit 6)', TEST_BOUND, async () => {
    const desc = await seedBlob('lab/trickle', 1 * MiB, 5);
    const { proxy, seen } = await faultyProxy(isBlobGet, Infinity, { trickle: 64 });
    const { client, warnings } = newClient({ minRate });
    const started = Date.now();
    await assert.rejects(
      async () => digestOfStream(await client.repository({ registry: proxy.host, repository: 'lab/trickle' }).fetch(desc)),
      (e: unknown) => {
        assert.ok(e instanceof NetworkError, String(e));
        assert.equal(e.code, 'TRANSFER_TOO_SLOW');
        assert.equal(e.exitCode, ExitCode.network);
        assert.match(e.message, new RegExp(`^cannot fetch blob ${desc.digest} of ${HOST}/lab/trickle: ${HOST} sent .*/s, below the minimum 64\\.0 KiB/s \\(${MAX_RESUMES + 1} attempts`));
        assert.match(e.hint ?? '', /--min-rate/);
        return true;
      },
    );
    assert.equal(seen.length, MAX_RESUMES + 1);
    assert.equal(warnings.length, MAX_RESUMES);
    assert.ok(Date.now() - started < (MAX_RESUMES + 1) * (TIMEOUT_MS * 1.25 + 500), `took ${Date.now() - started} ms`);
  });

  test('a manifest body that trickles is cut and fetched again', TEST_BOUND, async () => {
    const img = await seedImage('lab/trickle', 'v1');
    const { proxy, seen } = await faultyProxy((req) => req.method === 'GET' && MANIFEST_PATH.test(req.url ?? ''), 1, { trickle: 4 });
    // The default minimum rate (1 KiB/s) is what cuts a 200 B/s manifest.
    const { client, warnings } = newClient();
    const r = client.repository({ registry: proxy.host, repository: 'lab/trickle' });
    assert.deepEqual((await r.fetchManifest('v1')).bytes, img.bytes);
    assert.equal(seen.length, 2);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, new RegExp(`^${HOST} sent .*, below the minimum 1\\.0 KiB/s \\(after \\d+ B\\) while fetching image ${HOST}/lab/trickle:v1; retrying \\(1 of 4\\)`));
  });
});

describe('stalled uploads', () => {
  test('a registry that stops reading a streamed upload: cut after the timeout, the error says so', TEST_BOUND, async () => {
    const proxy = await server((req, res) => {
      if (req.method !== 'PUT') return forward(registry.url, req, res);
      let taken = 0;
      req.on('data', (c: Buffer) => {
        taken += c.length;
        if (taken >= MiB) req.pause();
      });
    });
    const { client } = newClient();
    const size = 32 * MiB;
    const desc = await patternDescriptor(size, 6);
    const started = Date.now();
    await assert.rejects(client.repository({ registry: proxy.host, repository: 'lab/upload' }).push(desc, patternStream(size, 6)), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      // A streamed body cannot be sent again within the request: the copy retries the blob whole.
      assert.equal(e.code, 'STREAM_NOT_REPLAYABLE');
      assert.match(e.message, new RegExp(`^cannot upload blob ${desc.digest} of ${HOST}/lab/upload: ${HOST} took no bytes for 300 ms \\(after \\d+\\.\\d MiB\\)`));
      return true;
    });
    assert.ok(Date.now() - started < TIMEOUT_MS * 1.25 + 3000, `took ${Date.now() - started} ms`);
  });

  test('a registry that takes a streamed upload slower than the minimum rate: cut, the error gives the rate', TEST_BOUND, async () => {
    const proxy = await server((req, res) => {
      if (req.method !== 'PUT') return forward(registry.url, req, res);
      // One socket read (up to 64 KiB) every few ms: a steady stream, yet far below 256 MiB/s. (A
      // much slower reader would leave the sender's socket full for long stretches, as the kernel
      // reports room only once a good part of the buffer is free: that reads as a stall.)
      req.on('data', () => {
        req.pause();
        setTimeout(() => req.resume(), 2);
      });
    });
    const { client } = newClient({ minRate: 256 * MiB });
    const size = 48 * MiB;
    const desc = await patternDescriptor(size, 8);
    await assert.rejects(client.repository({ registry: proxy.host, repository: 'lab/upload' }).push(desc, patternStream(size, 8)), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.code, 'STREAM_NOT_REPLAYABLE');
      assert.match(e.message, new RegExp(`^cannot upload blob ${desc.digest} of ${HOST}/lab/upload: ${HOST} took \\d+(\\.\\d)? (KiB|MiB)/s, below the minimum 256\\.0 MiB/s \\(after \\d+\\.\\d MiB\\)`));
      return true;
    });
  });

  test('an upload fed by a slow source is not cut: only the registry is timed', TEST_BOUND, async () => {
    const { client, warnings } = newClient();
    const size = 3 * MiB;
    const desc = await patternDescriptor(size, 7);
    // The source pauses for two timeouts after its first MiB.
    const inner = patternStream(size, 7, 256 * KiB);
    let sent = 0;
    const slow = new Readable({
      read() {
        const c = inner.read() as Buffer | null;
        if (c === null) {
          if (inner.readableEnded) return void this.push(null);
          inner.once('readable', () => this.read(0));
          inner.once('end', () => this.read(0));
          return;
        }
        sent += c.length;
        if (sent === MiB) setTimeout(() => this.push(c), 2 * TIMEOUT_MS);
        else this.push(c);
      },
    });
    await client.repository({ registry: registry.host, repository: 'lab/upload' }).push(desc, slow);
    assert.equal(await direct.repository({ registry: registry.host, repository: 'lab/upload' }).exists(desc), true);
    assert.deepEqual(warnings, []);
  });
});

describe('silent hosts', () => {
  /** A TCP server that accepts every connection and never sends a byte. */
  async function silentServer(): Promise<{ host: string; accepted: () => number }> {
    const sockets = new Set<Socket>();
    let accepted = 0;
    const s = createNetServer((socket) => {
      accepted++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    });
    return { host: `127.0.0.1:${(s.address() as AddressInfo).port}`, accepted: () => accepted };
  }

  test('a host that accepts the connection and never answers: "sent no response headers", within the timeout', TEST_BOUND, async () => {
    const silent = await silentServer();
    const { client, warnings } = newClient({ retries: 1 });
    const started = Date.now();
    await assert.rejects(client.repository({ registry: silent.host, repository: 'lab/x' }).resolve('1.0'), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.code, 'NO_RESPONSE_HEADERS');
      assert.equal(e.exitCode, ExitCode.network);
      assert.equal(e.message, `cannot fetch image ${silent.host}/lab/x:1.0: ${silent.host} accepted the connection but sent no response headers within 300 ms (2 attempts)`);
      assert.doesNotMatch(e.message, /connect timed out/);
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2 * (TIMEOUT_MS + UNDICI_TIMER_SLACK) + 1000, `took ${elapsed} ms`);
    assert.equal(silent.accepted(), 2);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, new RegExp(`^${silent.host} accepted the connection but sent no response headers within 300 ms while fetching image ${silent.host}/lab/x:1\\.0; retrying \\(1 of 1\\)$`));
  });

  test('a host that accepts and never finishes the TLS handshake: both HTTP clients say so, after the timeout', TEST_BOUND, async () => {
    const silent = await silentServer();
    const url = new URL(`https://${silent.host}/v2/`);
    const expected = `${silent.host} accepted the connection but sent no response headers within 300 ms (the TLS handshake did not complete)`;
    const limits = { timeoutMs: TIMEOUT_MS, minRate: 0 };
    const lean = new LeanHttp({ tls: async () => ({ secureContext: createSecureContext(), rejectUnauthorized: true }), limits });
    const agent = new Agent({ connect: watchedConnector({}, TIMEOUT_MS) });
    try {
      for (const attempt of [() => lean.get(url, {}), () => request(url, { dispatcher: agent })]) {
        const started = Date.now();
        await assert.rejects(attempt(), (e: unknown) => {
          assert.ok(e instanceof TransferStallError, String(e));
          assert.equal(e.code, 'NO_RESPONSE_HEADERS');
          assert.equal(e.message, expected);
          return true;
        });
        assert.ok(Date.now() - started < TIMEOUT_MS + 1000, `took ${Date.now() - started} ms`);
      }
    } finally {
      lean.close();
      await agent.destroy();
    }
  });

  test('a registry that answers /v2/ and then goes silent: manifest HEADs and blob GETs end with the same message', TEST_BOUND, async () => {
    const held: ServerResponse[] = [];
    const s = await server((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      held.push(res);
    });
    const { client } = newClient({ retries: 1 });
    const r = client.repository({ registry: s.host, repository: 'lab/x' });
    const blob: Descriptor = { mediaType: MediaType.ociLayerGzip, digest: `sha256:${'a'.repeat(64)}`, size: 10 };
    for (const [what, call] of [
      [`fetch image ${s.host}/lab/x:1.0`, () => r.resolve('1.0')],
      [`fetch blob ${blob.digest} of ${s.host}/lab/x`, () => r.fetch(blob)],
    ] as const) {
      const started = Date.now();
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof NetworkError, String(e));
        assert.equal(e.code, 'NO_RESPONSE_HEADERS');
        assert.equal(e.message, `cannot ${what}: ${s.host} accepted the connection but sent no response headers within 300 ms (2 attempts)`);
        return true;
      });
      assert.ok(Date.now() - started < 2 * (TIMEOUT_MS + UNDICI_TIMER_SLACK) + 1000, `${what}: took ${Date.now() - started} ms`);
    }
    for (const res of held) res.destroy();
  });
});

describe('transient 500s', () => {
  /** Answer 500 to the first `times` requests `match` accepts; forward everything else to `target`. */
  async function flaky(match: (req: IncomingMessage) => boolean, times: number, target = registry) {
    const hits = { matched: 0 };
    const proxy = await server((req, res) => {
      if (match(req) && hits.matched++ < times) {
        req.resume();
        return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"storage hiccup"}]}');
      }
      forward(target.url, req, res, { ...req.headers, host: target.host });
    });
    return { proxy, hits };
  }

  test('one 500 on a manifest GET is retried and the fetch succeeds', TEST_BOUND, async () => {
    const img = await seedImage('lab/flaky', 'get');
    const { proxy, hits } = await flaky((req) => req.method === 'GET' && MANIFEST_PATH.test(req.url ?? ''), 1);
    const { client, warnings } = newClient();
    assert.deepEqual((await client.repository({ registry: proxy.host, repository: 'lab/flaky' }).fetchManifest('get')).bytes, img.bytes);
    assert.equal(hits.matched, 2);
    assert.deepEqual(warnings.map((w) => w.replace(/ in \d\.\d s$/, '')), [
      `${proxy.host} answered 500 Internal Server Error while fetching image ${proxy.host}/lab/flaky:get; retrying (1 of 4)`,
    ]);
  });

  test('one 500 on a manifest HEAD is retried and the tag resolves', TEST_BOUND, async () => {
    const img = await seedImage('lab/flaky', 'head');
    const { proxy, hits } = await flaky((req) => req.method === 'HEAD' && MANIFEST_PATH.test(req.url ?? ''), 1);
    const { client } = newClient();
    assert.deepEqual(await client.repository({ registry: proxy.host, repository: 'lab/flaky' }).resolve('head'), img.desc);
    assert.equal(hits.matched, 2);
  });

  test('one 500 on a tag list is retried and every tag is listed', TEST_BOUND, async () => {
    await seedImage('lab/flaky-tags', 'a');
    await seedImage('lab/flaky-tags', 'b');
    const { proxy, hits } = await flaky((req) => /\/tags\/list/.test(req.url ?? ''), 1);
    const { client } = newClient();
    assert.deepEqual((await client.repository({ registry: proxy.host, repository: 'lab/flaky-tags' }).listTags()).sort(), ['a', 'b']);
    assert.equal(hits.matched, 2);
  });

  test('one 500 on a token request is retried and the pull succeeds', TEST_BOUND, async () => {
    const issuer = tokenRegistry.issuer;
    const tokens = await flaky(() => true, 1, { ...tokenRegistry, host: new URL(issuer.url).host, url: issuer.url });
    // The registry's challenges name the flaky token endpoint instead of the issuer.
    const front = await server((req, res) => {
      const up = httpRequest(`${tokenRegistry.url}${req.url}`, { method: req.method, headers: req.headers }, (upRes) => {
        const headers = { ...upRes.headers };
        const challenge = headers['www-authenticate'];
        if (typeof challenge === 'string') headers['www-authenticate'] = challenge.replace(issuer.url, tokens.proxy.url);
        res.writeHead(upRes.statusCode ?? 502, headers);
        upRes.pipe(res);
      });
      req.pipe(up);
    });
    const alice = { get: async () => ({ username: 'alice', password: 'alice-pw' }) };
    const { client: pusher } = newClient({ credentials: alice });
    const b = bytesDescriptor('behind a flaky token server', 'application/octet-stream');
    await pusher.repository({ registry: front.host, repository: 'lab/token' }).push(b.desc, Readable.from([b.bytes]));
    assert.equal(tokens.hits.matched, 2, 'the token request was retried once');
    const { client, warnings } = newClient({ credentials: alice });
    assert.equal(await client.repository({ registry: front.host, repository: 'lab/token' }).exists(b.desc), true);
    assert.deepEqual(warnings, []);
  });

  test('a registry that keeps answering 500: a network error (exit 6) that counts the attempts', TEST_BOUND, async () => {
    await seedImage('lab/flaky', 'down');
    const { proxy, hits } = await flaky((req) => MANIFEST_PATH.test(req.url ?? ''), Infinity);
    const { client, warnings } = newClient({ retries: 2 });
    await assert.rejects(client.repository({ registry: proxy.host, repository: 'lab/flaky' }).fetchManifest('down'), (e: unknown) => {
      assert.ok(e instanceof RegistryError, String(e));
      assert.equal(e.status, 500);
      assert.equal(e.exitCode, ExitCode.network);
      assert.equal(e.message, `cannot fetch image ${proxy.host}/lab/flaky:down: ${proxy.host} answered 500 UNKNOWN: storage hiccup after 3 attempts`);
      return true;
    });
    assert.equal(hits.matched, 3);
    assert.equal(warnings.length, 2);
  });

  test('a token server that keeps answering 500: a network error that counts the attempts', TEST_BOUND, async () => {
    const issuer = tokenRegistry.issuer;
    const tokens = await flaky(() => true, Infinity, { ...tokenRegistry, host: new URL(issuer.url).host, url: issuer.url });
    const front = await server((req, res) => {
      const up = httpRequest(`${tokenRegistry.url}${req.url}`, { method: req.method, headers: req.headers }, (upRes) => {
        const headers = { ...upRes.headers };
        const challenge = headers['www-authenticate'];
        if (typeof challenge === 'string') headers['www-authenticate'] = challenge.replace(issuer.url, tokens.proxy.url);
        res.writeHead(upRes.statusCode ?? 502, headers);
        upRes.pipe(res);
      });
      req.pipe(up);
    });
    const { client } = newClient({ credentials: { get: async () => ({ username: 'alice', password: 'alice-pw' }) }, retries: 1 });
    await assert.rejects(client.repository({ registry: front.host, repository: 'lab/token' }).resolve('1.0'), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.code, 'TOKEN_SERVER_UNAVAILABLE');
      assert.equal(e.exitCode, ExitCode.network);
      assert.match(e.message, /answered HTTP 500 after 2 attempts$/);
      return true;
    });
  });
});
