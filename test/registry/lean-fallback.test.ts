// Blob downloads through the registry client, where the lean fast path (src/registry/lean-http.ts)
// meets answers it leaves to undici: a 503, a Bearer-token 401, bodies cut mid-way. What a user
// relies on: the download completes with the right digest, the token is fetched once and reused,
// resumes ask for the bytes still missing, and close() leaves no connection behind.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Descriptor } from '../../src/core/manifest.ts';
import { FileStore } from '../../src/content/file-store.ts';
import { RegistryClient, type RegistryOptions } from '../../src/registry/client.ts';
import { startRegistry, startTokenRegistry, type RunningRegistry, type TokenRegistry } from '../helpers/registry.ts';
import { forward, patternDescriptor, patternStream, startServer, type LoopbackServer } from './support.ts';
import { until } from '../helpers/wait.ts';

const MiB = 1024 * 1024;
const BLOB_PATH = /^\/v2\/.+\/blobs\/(sha256:[a-f0-9]{64})$/;
const noCredentials = { get: async () => undefined };
const alice = { get: async () => ({ username: 'alice', password: 'alice-pw' }) };

let registry: RunningRegistry;
let tokenRegistry: TokenRegistry;
let home: string;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  [registry, tokenRegistry, home] = await Promise.all([
    startRegistry(),
    startTokenRegistry({ users: { alice: 'alice-pw' } }),
    mkdtemp(join(tmpdir(), 'airlock-lean-fallback-')),
  ]);
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await registry?.stop();
  await tokenRegistry?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

function newClient(opts: RegistryOptions = {}): RegistryClient {
  const c = new RegistryClient({ credentials: noCredentials, retryBaseDelayMs: 5, ...opts });
  cleanups.push(() => c.close());
  return c;
}

/** A proxy on 127.0.0.1 that counts the client connections it has open. */
async function proxyServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<LoopbackServer & { open(): number; accepted(): number }> {
  const s = await startServer(handler);
  let open = 0;
  let accepted = 0;
  s.server.on('connection', (socket: Socket) => {
    open++;
    accepted++;
    socket.once('close', () => open--);
  });
  cleanups.push(() => s.close());
  return Object.assign(s, { open: () => open, accepted: () => accepted });
}

let nextStore = 0;
function newStore(): FileStore {
  return new FileStore(join(home, `store-${nextStore++}`));
}

async function seedBlob(target: RunningRegistry, credentials: RegistryOptions['credentials'], repository: string, size: number, seed: number): Promise<Descriptor> {
  const desc = await patternDescriptor(size, seed);
  const c = new RegistryClient({ credentials, retryBaseDelayMs: 5 });
  try {
    await c.repository({ registry: target.host, repository }).push(desc, patternStream(size, seed));
  } finally {
    await c.close();
  }
  return desc;
}

/** The digest of what the store holds for `desc`, read back from disk. */
async function storedDigest(store: FileStore, desc: Descriptor): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(store.path(desc))) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}


interface Seen {
  method: string;
  path: string;
  digest: string | undefined;
  authorization: string | undefined;
  range: string | undefined;
  /** The status the proxy answered with (set once the answer is under way). */
  status: number;
}

/** Records every request as it passes and the status it got; `answer` decides (default: forward). */
function recording(target: string, seen: Seen[], answer?: (req: IncomingMessage, res: ServerResponse, entry: Seen) => boolean) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const entry: Seen = {
      method: req.method ?? '',
      path: req.url ?? '',
      digest: BLOB_PATH.exec(req.url ?? '')?.[1],
      authorization: req.headers.authorization,
      range: req.headers.range,
      status: 0,
    };
    seen.push(entry);
    // 'close' fires even when the client drops the connection before the answer is finished
    res.once('close', () => (entry.status = res.statusCode));
    if (answer?.(req, res, entry)) return;
    forward(target, req, res);
  };
}

describe('falling back from the lean path', () => {
  test('the first blob GET answered 503: the download still succeeds with the right digest', async () => {
    const desc = await seedBlob(registry, noCredentials, 'lab/lean', 2 * MiB + 5, 21);
    const other = await seedBlob(registry, noCredentials, 'lab/lean', 300_000, 22);
    const seen: Seen[] = [];
    let failed = 0;
    const proxy = await proxyServer(
      recording(registry.url, seen, (req, res, entry) => {
        if (entry.digest === undefined || req.method !== 'GET' || failed > 0) return false;
        failed++;
        req.resume();
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
        return true;
      }),
    );
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/lean' });
    const store = newStore();
    await store.ingest(desc, r);
    assert.equal(await storedDigest(store, desc), desc.digest);
    const gets = seen.filter((s) => s.method === 'GET' && s.digest === desc.digest);
    assert.deepEqual(
      gets.map((s) => s.status),
      [503, 200],
    );
    // the registry stays on the fast path: the next blob is one GET
    await store.ingest(other, r);
    assert.equal(await storedDigest(store, other), other.digest);
    assert.deepEqual(
      seen.filter((s) => s.digest === other.digest).map((s) => [s.method, s.status]),
      [['GET', 200]],
    );
  });

  test('a blob GET cut after N bytes, twice: the ingest completes, resuming with Range bytes=N- and bytes=2N-', async () => {
    const N = 700_000;
    const desc = await seedBlob(registry, noCredentials, 'lab/lean', 3 * MiB, 23);
    const seen: Seen[] = [];
    let cuts = 0;
    const proxy = await proxyServer(
      recording(registry.url, seen, (req, res, entry) => {
        if (entry.digest === undefined || req.method !== 'GET' || cuts >= 2) return false;
        cuts++;
        const up = httpRequest(`${registry.url}${req.url}`, { headers: req.headers }, (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          let sent = 0;
          upRes.on('data', (chunk: Buffer) => {
            if (sent >= N) return;
            const part = chunk.subarray(0, N - sent);
            sent += part.length;
            res.write(part, () => {
              if (sent >= N) {
                upRes.destroy();
                res.socket?.destroy();
              }
            });
          });
        });
        up.on('error', () => res.destroy());
        up.end();
        return true;
      }),
    );
    const r = newClient().repository({ registry: proxy.host, repository: 'lab/lean' });
    const store = newStore();
    let reported = 0;
    await store.ingest(desc, r, { onBytes: (n) => (reported += n) });
    assert.equal(await storedDigest(store, desc), desc.digest);
    assert.equal(reported, desc.size);
    const gets = seen.filter((s) => s.method === 'GET' && s.digest === desc.digest);
    assert.deepEqual(
      gets.map((s) => s.range),
      [undefined, `bytes=${N}-`, `bytes=${2 * N}-`],
    );
    assert.deepEqual(
      gets.map((s) => s.status),
      [200, 206, 206],
    );
  });

  test('client.close() with nothing in flight: every connection the client opened is closed', async () => {
    const desc = await seedBlob(registry, noCredentials, 'lab/lean', 1 * MiB, 24);
    const proxy = await proxyServer((req, res) => forward(registry.url, req, res));
    const client = newClient();
    const r = client.repository({ registry: proxy.host, repository: 'lab/lean' });
    const store = newStore();
    // a pumped download (lean) and a HEAD (undici): both leave a kept-alive connection behind
    await store.ingest(desc, r);
    assert.equal(await r.exists(desc), true);
    assert.ok(proxy.open() >= 1, 'the client keeps connections open between requests');
    await client.close();
    await until(() => proxy.open() === 0, `closing ${proxy.open()} client connections`, 3000);
  });
});

describe('Bearer-token registry', () => {
  async function tokenSetup() {
    const [one, two] = await Promise.all([
      seedBlob(tokenRegistry, alice, 'team/lean', 1 * MiB + 1, 31),
      seedBlob(tokenRegistry, alice, 'team/lean', 600_000, 32),
    ]);
    const seen: Seen[] = [];
    const proxy = await proxyServer(recording(tokenRegistry.url, seen));
    const r = newClient({ credentials: alice }).repository({ registry: proxy.host, repository: 'team/lean' });
    return { one, two, seen, r };
  }

  test('ingest of two blobs succeeds; the second blob GET carries the cached token and is answered at once', async () => {
    const { one, two, seen, r } = await tokenSetup();
    const tokensBefore = tokenRegistry.issuer.requests.length;
    const store = newStore();
    await store.ingest(one, r);
    await store.ingest(two, r);
    assert.equal(await storedDigest(store, one), one.digest);
    assert.equal(await storedDigest(store, two), two.digest);
    const secondGets = seen.filter((s) => s.method === 'GET' && s.digest === two.digest);
    assert.equal(secondGets.length, 1, JSON.stringify(secondGets));
    assert.match(secondGets[0]!.authorization ?? '', /^Bearer ey/);
    assert.equal(secondGets[0]!.status, 200);
    // the token served both blobs: one token request in all
    const asked = tokenRegistry.issuer.requests.slice(tokensBefore);
    assert.deepEqual(
      asked.map((q) => [q.user, q.scopes.join(' '), q.status]),
      [['alice', 'repository:team/lean:pull', 200]],
    );
  });

  test('at most one 401 per scope: the lean path’s 401 is not followed by a second unauthenticated GET', async () => {
    const { one, two, seen, r } = await tokenSetup();
    const store = newStore();
    await store.ingest(one, r);
    await store.ingest(two, r);
    const refusals = seen.filter((s) => s.status === 401);
    assert.ok(
      refusals.length <= 1,
      `401s seen by the proxy for one scope: ${refusals.length} (${seen.map((s) => `${s.method} ${s.digest?.slice(7, 15)} auth=${s.authorization ? 'yes' : 'no'} → ${s.status}`).join('; ')})`,
    );
  });
});
