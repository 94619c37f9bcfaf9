// The registry client over TLS: a real docker-registry with a certificate from a CA made by
// openssl in the test, trusted through --ca-file or a certs.d dir, refused without either.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { AuthError, ExitCode, NetworkError, RegistryError } from '../../src/core/errors.ts';
import { RegistryClient, type RegistryOptions } from '../../src/registry/client.ts';
import { startRegistry, startTlsRegistry, type RunningRegistry, type TlsRegistry } from '../helpers/registry.ts';
import { makeCa, makeServerCert } from '../helpers/tls.ts';
import { bytesDescriptor, makeClientCert } from './support.ts';

const noCredentials = { get: async () => undefined };

let tlsRegistry: TlsRegistry;
let work: string;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  tlsRegistry = await startTlsRegistry();
  work = await mkdtemp(join(tmpdir(), 'airlock-tls-test-'));
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await tlsRegistry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function newClient(opts: RegistryOptions): RegistryClient {
  const c = new RegistryClient({ credentials: noCredentials, retryBaseDelayMs: 5, ...opts });
  cleanups.push(() => c.close());
  return c;
}

async function roundTrip(client: RegistryClient, host: string, repository: string): Promise<void> {
  const r = client.repository({ registry: host, repository });
  const { desc, bytes } = bytesDescriptor(`over TLS to ${repository}`, 'application/octet-stream');
  await r.push(desc, Readable.from([bytes]));
  const chunks: Buffer[] = [];
  for await (const c of await r.fetch(desc)) chunks.push(c as Buffer);
  assert.deepEqual(Buffer.concat(chunks), bytes);
}

describe('server certificates', () => {
  test('trusted through --ca-file', async () => {
    await roundTrip(newClient({ caFile: tlsRegistry.caFile }), tlsRegistry.host, 'lab/ca-file');
  });

  test('trusted through a certs.d dir (<dir>/<host:port>/ca.crt)', async () => {
    const certsd = join(work, 'certs.d');
    await mkdir(join(certsd, tlsRegistry.host), { recursive: true });
    await copyFile(tlsRegistry.caFile, join(certsd, tlsRegistry.host, 'ca.crt'));
    await roundTrip(newClient({ certsDirs: [join(work, 'missing.d'), certsd] }), tlsRegistry.host, 'lab/certs-d');
  });

  test('refused without the CA: the error names the host and suggests trusting a CA file, and nothing falls back to HTTP', async () => {
    const r = newClient({}).repository({ registry: tlsRegistry.host, repository: 'lab/untrusted' });
    await assert.rejects(r.resolve('latest'), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.code, 'TLS_UNTRUSTED');
      assert.equal(e.exitCode, ExitCode.network);
      assert.match(e.message, new RegExp(`TLS certificate of ${tlsRegistry.host.replace(/\./g, '\\.')} is not trusted`));
      assert.match(e.hint ?? '', /a CA file/);
      return true;
    });
  });

  test('a CA for another host in certs.d does not help', async () => {
    const certsd = join(work, 'certs-other.d');
    await mkdir(join(certsd, '127.0.0.1:1'), { recursive: true });
    await copyFile(tlsRegistry.caFile, join(certsd, '127.0.0.1:1', 'ca.crt'));
    const r = newClient({ certsDirs: [certsd] }).repository({ registry: tlsRegistry.host, repository: 'lab/untrusted' });
    await assert.rejects(r.resolve('latest'), { code: 'TLS_UNTRUSTED' });
  });

  test('--insecure skips verification for that registry only', async () => {
    await roundTrip(newClient({ insecure: [tlsRegistry.host] }), tlsRegistry.host, 'lab/insecure');
  });

  test('an unreadable --ca-file is a usage error naming the file', async () => {
    const r = newClient({ caFile: join(work, 'nope.pem') }).repository({ registry: tlsRegistry.host, repository: 'lab/x' });
    await assert.rejects(r.resolve('latest'), (e: unknown) => {
      assert.equal((e as { exitCode?: number }).exitCode, ExitCode.usage);
      assert.match((e as Error).message, /nope\.pem/);
      return true;
    });
  });
});

describe('client certificates and passwords', () => {
  let mtls: RunningRegistry | undefined;
  let caDir = '';

  before(async () => {
    mtls = await startRegistry({
      async extraConfig(dir) {
        const ca = await makeCa(join(dir, 'pki'));
        caDir = ca.dir;
        const leaf = await makeServerCert(ca, { name: 'server', ips: ['127.0.0.1'], dns: ['localhost'] });
        return { yaml: `  tls: {certificate: ${leaf.certFile}, key: ${leaf.keyFile}, clientcas: [${ca.certFile}]}`, https: true };
      },
    });
  });
  after(async () => {
    await mtls?.stop();
  });

  test('mutual TLS with client.cert + client.key from certs.d', async () => {
    const certsd = join(work, 'mtls.d');
    const hostDir = join(certsd, mtls!.host);
    await mkdir(hostDir, { recursive: true });
    await copyFile(join(caDir, 'ca.crt'), join(hostDir, 'ca.crt'));
    const withoutCert = newClient({ certsDirs: [certsd] }).repository({ registry: mtls!.host, repository: 'lab/mtls' });
    await assert.rejects(withoutCert.resolve('latest'), (e: unknown) => {
      assert.ok(e instanceof NetworkError, String(e));
      assert.equal(e.exitCode, ExitCode.network);
      assert.ok(e.message.includes(mtls!.host), e.message);
      return true;
    });
    await makeClientCert(caDir, hostDir, 'client');
    await roundTrip(newClient({ certsDirs: [certsd] }), mtls!.host, 'lab/mtls');
  });

  test('Basic auth over TLS: credentials from the store are used, wrong ones are refused', async () => {
    const basic = await startTlsRegistry({ users: { alice: 'wonderland' } });
    cleanups.push(() => basic.stop());
    const good = newClient({
      caFile: basic.caFile,
      credentials: { get: async (reg: string) => (reg === basic.host ? { username: 'alice', password: 'wonderland' } : undefined) },
    });
    await roundTrip(good, basic.host, 'lab/basic');
    const bad = newClient({ caFile: basic.caFile, credentials: { get: async () => ({ username: 'alice', password: 'nope' }) } });
    await assert.rejects(bad.repository({ registry: basic.host, repository: 'lab/basic' }).resolve('latest'), (e: unknown) => {
      assert.ok(e instanceof AuthError || e instanceof RegistryError, String(e));
      assert.equal((e as AuthError).exitCode, ExitCode.auth);
      assert.match((e as Error).message, new RegExp(basic.host.replace(/\./g, '\\.')));
      return true;
    });
    const anonymous = newClient({ caFile: basic.caFile });
    await assert.rejects(anonymous.repository({ registry: basic.host, repository: 'lab/basic' }).resolve('latest'), (e: unknown) => {
      assert.equal((e as AuthError).exitCode, ExitCode.auth);
      assert.match((e as AuthError).hint ?? '', /docker login/);
      return true;
    });
  });
});
