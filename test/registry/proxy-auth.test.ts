// Proxy credentials from the proxy URL, against a real squid that answers 407 as the standard
// says: they are sent on CONNECT tunnels and on plain-HTTP (absolute-URI) requests alike; a wrong
// or missing password is an auth error naming the proxy and the variable, never the password.
// And an https:// proxy (squid with TLS), trusted through the CA settings or refused by name.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { AuthError, ExitCode, NetworkError } from '../../src/core/errors.ts';
import { proxyConfigFromEnv } from '../../src/registry/proxy.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { ChartHttpClient } from '../../src/helm/http-client.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { startSquid, type ForwardProxy } from '../helpers/forward-proxy.ts';
import { makeCa, makeServerCert } from '../helpers/tls.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesDescriptor, startServer, type LoopbackServer } from './support.ts';

const noCredentials = { get: async () => undefined };
const INDEX = 'apiVersion: v1\nentries: {}\n';

let registry: RunningRegistry;
let squid: ForwardProxy;
let charts: LoopbackServer;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  [registry, squid, charts] = await Promise.all([
    startRegistry(),
    startSquid({ user: 'alice', password: 'pa:ss@word' }),
    startServer((req, res) => {
      if (req.url === '/index.yaml') res.writeHead(200, { 'content-type': 'text/yaml' }).end(INDEX);
      else res.writeHead(404).end();
    }),
  ]);
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await Promise.all([registry?.stop(), squid?.stop(), charts?.close()]);
});

/** The proxy settings with `password` in the URL, as a user writes it (percent-encoded). */
function withPassword(password: string | undefined): ReturnType<typeof proxyConfigFromEnv> {
  const u = new URL(squid.url);
  if (password !== undefined) {
    u.username = 'alice';
    u.password = encodeURIComponent(password);
  }
  return proxyConfigFromEnv({ HTTPS_PROXY: u.href, http_proxy: u.href });
}

function registryClient(password: string | undefined): RegistryClient {
  const c = new RegistryClient({ credentials: noCredentials, retryBaseDelayMs: 5, proxy: withPassword(password) });
  cleanups.push(() => c.close());
  return c;
}

function chartClient(password: string | undefined): ChartHttpClient {
  const c = new ChartHttpClient({ credentials: noCredentials, retryBaseDelayMs: 5, proxy: withPassword(password) });
  cleanups.push(() => c.close());
  return c;
}

function refused(variable: string, has: boolean) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof AuthError, String(e));
    assert.equal(e.code, 'PROXY_AUTH_REJECTED');
    assert.equal(e.exitCode, ExitCode.auth);
    assert.match(e.message, new RegExp(`the proxy ${squid.url.replace(/\./g, '\\.')} \\(from ${variable}\\) ${has ? 'refused the credentials' : 'asks for credentials'}`));
    assert.match(e.message, /HTTP 407/);
    assert.doesNotMatch(`${e.message} ${e.hint ?? ''}`, /pa:ss|ss@word|wrong-one/);
    return true;
  };
}

describe('proxy auth (squid, 407)', () => {
  test('the right password: a plain-HTTP registry and a chart repository work through the proxy', async () => {
    const r = registryClient('pa:ss@word').repository({ registry: registry.host, repository: 'lab/auth' });
    const { desc, bytes } = bytesDescriptor('behind squid', 'application/octet-stream');
    await r.push(desc, Readable.from([bytes]));
    assert.equal(await r.exists(desc), true);
    const index = await chartClient('pa:ss@word').get(`${charts.url}/index.yaml`, { what: 'index.yaml', limit: 1024 });
    assert.equal(index.toString(), INDEX);
    const seen = await squid.requests();
    assert.ok(seen.includes(`CONNECT ${registry.host}`), seen.join('\n'));
    assert.ok(seen.some((l) => l.startsWith(`PUT ${registry.url}/v2/lab/auth/blobs/uploads/`)), seen.join('\n'));
    assert.ok(seen.includes(`GET ${charts.url}/index.yaml`), seen.join('\n'));
  });

  test('a wrong password is refused by name: on the CONNECT tunnel and on a plain-HTTP request', async () => {
    await assert.rejects(registryClient('wrong-one').repository({ registry: registry.host, repository: 'lab/auth' }).resolve('latest'), refused('HTTPS_PROXY', true));
    await assert.rejects(chartClient('wrong-one').get(`${charts.url}/index.yaml`, { what: 'index.yaml', limit: 1024 }), refused('http_proxy', true));
  });

  test('no credentials at all: the error says where they go', async () => {
    await assert.rejects(chartClient(undefined).get(`${charts.url}/index.yaml`, { what: 'index.yaml', limit: 1024 }), (e: unknown) => {
      refused('http_proxy', false)(e);
      assert.match((e as AuthError).hint ?? '', /http_proxy=http:\/\/USER:PASSWORD@host:port/);
      return true;
    });
  });
});

describe('an https:// proxy (squid with TLS)', () => {
  let tlsSquid: ForwardProxy;
  let caFile: string;
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'airlock-proxy-tls-'));
    const ca = await makeCa(join(work, 'ca'));
    const leaf = await makeServerCert(ca, { name: 'proxy', ips: ['127.0.0.1'], dns: ['localhost'] });
    caFile = ca.certFile;
    tlsSquid = await startSquid({ tls: leaf });
  });
  after(async () => {
    await tlsSquid?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const client = (ca: string | undefined): RegistryClient => {
    const c = new RegistryClient({ credentials: noCredentials, retries: 0, caFile: ca, proxy: proxyConfigFromEnv({ HTTPS_PROXY: tlsSquid.url, HTTP_PROXY: tlsSquid.url }) });
    cleanups.push(() => c.close());
    return c;
  };

  test('trusted through the CA file: requests go through it', async () => {
    const r = client(caFile).repository({ registry: registry.host, repository: 'lab/tls-proxy' });
    const { desc, bytes } = bytesDescriptor('behind an https proxy', 'application/octet-stream');
    await r.push(desc, Readable.from([bytes]));
    assert.equal(await r.exists(desc), true);
    assert.ok((await tlsSquid.requests()).includes(`CONNECT ${registry.host}`));
  });

  test("without the CA: the proxy's certificate is the one named as untrusted, not the registry's", async () => {
    await assert.rejects(client(undefined).repository({ registry: registry.host, repository: 'lab/tls-proxy' }).resolve('latest'), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.code, 'TLS_UNTRUSTED');
      assert.match(e.message, new RegExp(`the TLS certificate of the proxy ${tlsSquid.url.replace(/\./g, '\\.')} \\(from HTTPS_PROXY\\) is not trusted`));
      assert.doesNotMatch(e.message, /--use-system-ca/);
      return true;
    });
  });
});
