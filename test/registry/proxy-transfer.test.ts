// The registry client through a real forward proxy (tinyproxy), with the guarantees it has on a
// direct connection: an HTTPS registry is reached through a CONNECT tunnel and its certificate is
// still checked against the registry's own CA settings; a download cut mid-body resumes with Range
// through the proxy; bytes that do not match their digest are refused.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { IntegrityError, NetworkError } from '../../src/core/errors.ts';
import type { Descriptor } from '../../src/core/manifest.ts';
import { proxyConfigFromEnv } from '../../src/registry/proxy.ts';
import { RegistryClient, type RegistryOptions } from '../../src/registry/client.ts';
import { ChartHttpClient } from '../../src/helm/http-client.ts';
import { startRegistry, startTlsRegistry, startTokenRegistry, type RunningRegistry, type TlsRegistry } from '../helpers/registry.ts';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.ts';
import { bytesDescriptor, digestOfStream, forward, patternDescriptor, patternStream, startServer, type LoopbackServer } from './support.ts';

const noCredentials = { get: async () => undefined };
const BLOB_PATH = /^\/v2\/.+\/blobs\/sha256:[a-f0-9]{64}$/;

let registry: RunningRegistry;
let tlsRegistry: TlsRegistry;
let proxy: ForwardProxy;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  [registry, tlsRegistry, proxy] = await Promise.all([startRegistry(), startTlsRegistry(), startForwardProxy()]);
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await Promise.all([registry?.stop(), tlsRegistry?.stop(), proxy?.stop()]);
});

function proxiedClient(opts: RegistryOptions = {}): RegistryClient {
  const c = new RegistryClient({
    credentials: noCredentials,
    retryBaseDelayMs: 5,
    proxy: proxyConfigFromEnv({ HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url }),
    ...opts,
  });
  cleanups.push(() => c.close());
  return c;
}

async function server(handler: Parameters<typeof startServer>[0]): Promise<LoopbackServer> {
  const s = await startServer(handler);
  cleanups.push(() => s.close());
  return s;
}

async function seedBlob(repository: string, size: number, seed: number): Promise<Descriptor> {
  const direct = new RegistryClient({ credentials: noCredentials, proxy: proxyConfigFromEnv({}) });
  try {
    const desc = await patternDescriptor(size, seed);
    await direct.repository({ registry: registry.host, repository }).push(desc, patternStream(size, seed));
    return desc;
  } finally {
    await direct.close();
  }
}

describe('an HTTPS registry through a CONNECT tunnel', () => {
  test('push and fetch with the registry CA; the proxy sees only the tunnel, never a request in clear', async () => {
    const before = (await proxy.requests()).length;
    const r = proxiedClient({ caFile: tlsRegistry.caFile }).repository({ registry: tlsRegistry.host, repository: 'lab/tunnel' });
    const { desc, bytes } = bytesDescriptor('through the tunnel', 'application/octet-stream');
    await r.push(desc, Readable.from([bytes]));
    const chunks: Buffer[] = [];
    for await (const c of await r.fetch(desc)) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), bytes);
    const seen = (await proxy.requests()).slice(before);
    assert.ok(seen.length > 0 && seen.every((l) => l === `CONNECT ${tlsRegistry.host}`), seen.join('\n'));
  });

  test('without the CA the certificate is refused inside the tunnel, naming the registry', async () => {
    const r = proxiedClient().repository({ registry: tlsRegistry.host, repository: 'lab/untrusted' });
    await assert.rejects(r.resolve('latest'), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.code, 'TLS_UNTRUSTED');
      assert.match(e.message, new RegExp(`TLS certificate of ${tlsRegistry.host.replace(/\./g, '\\.')} is not trusted`));
      return true;
    });
  });
});

describe('a token-auth registry through the proxy', () => {
  test('the token endpoint is reached through the proxy too, with the credentials for the registry', async () => {
    const reg = await startTokenRegistry({ users: { builder: 'b-pass' } });
    cleanups.push(() => reg.stop());
    const credentials = { get: async (host: string) => (host === reg.host ? { username: 'builder', password: 'b-pass' } : undefined) };
    const r = proxiedClient({ credentials }).repository({ registry: reg.host, repository: 'team/app' });
    const { desc, bytes } = bytesDescriptor('token through the proxy', 'application/octet-stream');
    await r.push(desc, Readable.from([bytes]));
    assert.equal(await r.exists(desc), true);
    assert.ok(reg.issuer.requests.some((q) => q.user === 'builder' && q.status === 200), 'a token was issued to builder');
    const seen = await proxy.requests();
    assert.ok(seen.some((l) => l.startsWith(`GET ${reg.issuer.realm}?`)), `the token request went through the proxy:\n${seen.join('\n')}`);
  });
});

describe('downloads through the proxy keep their guarantees', () => {
  test('a download cut mid-body resumes with Range through the proxy, digest intact', async () => {
    const desc = await seedBlob('lab/resume', 3 * 1024 * 1024, 5);
    const ranges: Array<string | undefined> = [];
    // Between the proxy and the registry: cuts the first blob GET after 1 MiB.
    const cutter = await server((req, res) => {
      if (!(req.method === 'GET' && BLOB_PATH.test(req.url ?? ''))) return forward(registry.url, req, res);
      ranges.push(req.headers.range);
      if (ranges.length > 1) return forward(registry.url, req, res);
      const up = httpRequest(`${registry.url}${req.url}`, { headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        let sent = 0;
        upRes.on('data', (chunk: Buffer) => {
          if (sent >= 1024 * 1024) return;
          const part = chunk.subarray(0, 1024 * 1024 - sent);
          sent += part.length;
          res.write(part, () => {
            if (sent >= 1024 * 1024) {
              upRes.destroy();
              res.socket?.destroy();
            }
          });
        });
      });
      up.end();
    });
    const warnings: string[] = [];
    const r = proxiedClient({ onWarning: (w) => warnings.push(w.code) }).repository({ registry: cutter.host, repository: 'lab/resume' });
    assert.deepEqual(await digestOfStream(await r.fetch(desc)), { digest: desc.digest, size: desc.size });
    assert.equal(ranges.length, 2);
    const start = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
    assert.ok(start > 0 && start <= 1024 * 1024, `resumed at ${ranges[1]}`);
    const blobGets = (await proxy.requests()).filter((l) => l === `GET ${cutter.url}/v2/lab/resume/blobs/${desc.digest}`);
    assert.equal(blobGets.length, 2, 'both the cut GET and the resumed one went through the proxy');
  });

  test('bytes that do not match the digest are refused (IntegrityError), as on a direct connection', async () => {
    const desc = await seedBlob('lab/liar', 200_000, 12);
    const liar = await server((req, res) => {
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
    const r = proxiedClient().repository({ registry: liar.host, repository: 'lab/liar' });
    await assert.rejects(digestOfStream(await r.fetch(desc)), (e: unknown) => {
      assert.ok(e instanceof IntegrityError, String(e));
      assert.equal(e.code, 'DIGEST_MISMATCH');
      return true;
    });
    assert.ok((await proxy.requests()).includes(`GET ${liar.url}/v2/lab/liar/blobs/${desc.digest}`));
  });
});

describe('a proxy that closes after every answer (tinyproxy)', () => {
  test('a reader slower than the proxy still gets every byte of each answer, none cut short', async () => {
    // tinyproxy closes the connection after each answer without a `Connection: close`; a reader
    // still behind at that moment used to get "other side closed" with every byte already in.
    const body = Buffer.alloc(1024 * 1024, 0x5a);
    const files = await server((_req, res) => void res.writeHead(200, { 'content-length': String(body.length) }).end(body));
    const http = new ChartHttpClient({ credentials: noCredentials, attempts: 1, proxy: proxyConfigFromEnv({ HTTP_PROXY: proxy.url }) });
    cleanups.push(() => http.close());
    for (let i = 0; i < 20; i++) {
      const { body: stream } = await http.stream(`${files.url}/file-${i}`, { what: `file ${i}`, limit: 2 * body.length });
      let got = 0;
      for await (const chunk of stream) {
        got += (chunk as Buffer).length;
        // The reader's own pace (a disk, a hash): not a wait for anything.
        await sleep(1);
      }
      assert.equal(got, body.length, `answer ${i}`);
    }
    assert.equal((await proxy.requests()).filter((l) => l.startsWith(`GET ${files.url}/file-`)).length, 20);
  });
});

