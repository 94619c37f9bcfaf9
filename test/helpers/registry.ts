// Start a real docker-registry (distribution 2.8) as a plain process on a free loopback port.
// Every test that needs a registry uses this; it is stopped by its PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { htpasswdFile, makeCa, makeServerCert } from './tls.ts';
import { startTokenIssuer, type TokenIssuer, type TokenIssuerOptions } from './token-issuer.ts';

export interface RunningRegistry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string;
  /** http://host:port or https://host:port */
  url: string;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

export interface RegistryStartOptions {
  /** Extra YAML merged under the top level (e.g. auth, http.tls), as a string of YAML lines. */
  extraConfig?: (dir: string, port: number) => Promise<{ yaml: string; https?: boolean }>;
  readonly?: boolean;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (typeof addr !== 'object' || addr === null) return reject(new Error('no port'));
      const port = addr.port;
      srv.close(() => resolve(port));
    });
  });
}

/** Stop a child by its PID: SIGTERM, wait up to 5 s, then SIGKILL. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, 'SIGTERM');
  // Unref'd: a pending 5 s timer would otherwise hold every test process open after the child exits.
  const timer = sleep(5000, undefined, { ref: false }).then(() => 'timeout');
  if ((await Promise.race([exited.then(() => 'ok'), timer])) === 'timeout' && child.exitCode === null) {
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }
}

export async function startRegistry(opts: RegistryStartOptions = {}): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-registry-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const instance = randomUUID();
    const extra = opts.extraConfig ? await opts.extraConfig(dir, port) : { yaml: '' };
    const https = extra.https === true;
    const cfg = [
      'version: 0.1',
      'log: {level: error, accesslog: {disabled: true}}',
      'storage:',
      `  filesystem: {rootdirectory: ${join(dir, 'data')}}`,
      '  delete: {enabled: true}',
      opts.readonly ? '  maintenance: {readonly: {enabled: true}}' : '',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '  secret: airlock-test-secret',
      '  draintimeout: 200ms',
      // A per-start marker: readiness is "this very process answers", not "something holds the port".
      `  headers: {X-Airlock-Instance: [${instance}]}`,
      extra.yaml,
    ].join('\n');
    await writeFile(join(dir, 'config.yml'), cfg);
    const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 20000) stderr += d.toString();
    });
    const spawnError = new Promise<Error>((r) => child.once('error', r));
    const host = `127.0.0.1:${port}`;
    const url = `${https ? 'https' : 'http'}://${host}`;
    const ready = await waitForInstance(port, https, instance, 10_000, child);
    if (!ready) {
      await stopChild(child);
      if (attempt < 3 && /address already in use/.test(stderr)) continue;
      const err = await Promise.race([spawnError, sleep(10).then(() => undefined)]);
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start${err ? `: ${err.message}` : ''}\n${stderr}\n(install it with: apt-get install docker-registry)`);
    }
    return {
      host,
      url,
      dir,
      pid: child.pid!,
      async stop() {
        await stopChild(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

async function waitForInstance(port: number, https: boolean, instance: string, timeoutMs: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    const answer = await new Promise<string | undefined>((resolve) => {
      // Certificates are checked by the tests themselves; readiness only asks who answers.
      const req = (https ? httpsRequest : httpRequest)({ host: '127.0.0.1', port, path: '/v2/', method: 'GET', rejectUnauthorized: false, timeout: 1000 }, (res) => {
        res.resume();
        const h = res.headers['x-airlock-instance'];
        resolve(Array.isArray(h) ? h[0] : h);
      });
      req.on('timeout', () => req.destroy());
      // A registry that demands client certificates (mTLS) cannot show its marker to this probe;
      // its handshake refusal is the best evidence available that it is up.
      req.on('error', (e: NodeJS.ErrnoException) => resolve(https && /ALERT_BAD_CERTIFICATE|CERTIFICATE_REQUIRED/.test(e.code ?? '') ? instance : undefined));
      req.end();
    });
    if (answer === instance) return true;
    await sleep(30);
  }
  return false;
}

// --- authenticated registries (additive: built on startRegistry's extraConfig) ---

export interface TlsRegistry extends RunningRegistry {
  /** PEM of the CA that signed the registry's certificate (SANs 127.0.0.1 and localhost). */
  caFile: string;
  /** A directory holding only that CA as ca.crt: the shape skopeo --cert-dir / containerd hosts dirs want. */
  certDir: string;
}

/**
 * docker-registry over HTTPS with a fresh test CA; with `users`, also htpasswd (bcrypt) Basic auth.
 * Trust it with `caFile` (e.g. undici `new Agent({ connect: { ca } })`) or `certDir` (skopeo).
 */
export async function startTlsRegistry(opts: { users?: Record<string, string>; readonly?: boolean } = {}): Promise<TlsRegistry> {
  let caFile = '';
  const reg = await startRegistry({
    ...(opts.readonly ? { readonly: true } : {}),
    async extraConfig(dir) {
      const ca = await makeCa(join(dir, 'tls'));
      const leaf = await makeServerCert(ca, { name: 'server', ips: ['127.0.0.1'], dns: ['localhost'] });
      caFile = ca.certFile;
      await mkdir(join(dir, 'certs.d'), { recursive: true });
      await copyFile(ca.certFile, join(dir, 'certs.d', 'ca.crt'));
      const lines = [`  tls: {certificate: ${leaf.certFile}, key: ${leaf.keyFile}}`];
      if (opts.users) {
        const path = await htpasswdFile(join(dir, 'auth'), opts.users);
        lines.push('auth:', `  htpasswd: {realm: airlock-test, path: ${path}}`);
      }
      return { yaml: lines.join('\n'), https: true };
    },
  });
  return { ...reg, caFile, certDir: join(reg.dir, 'certs.d') };
}

export interface TokenRegistry extends RunningRegistry {
  issuer: TokenIssuer;
}

/**
 * Plain-HTTP docker-registry on loopback with `auth.token`, backed by a test token issuer
 * (startTokenIssuer) that checks `users` and grants what `access` allows. stop() stops both.
 */
export async function startTokenRegistry(
  opts: TokenIssuerOptions & { readonly?: boolean } = {},
): Promise<TokenRegistry> {
  const { readonly, ...issuerOpts } = opts;
  const issuer = await startTokenIssuer(issuerOpts);
  let reg: RunningRegistry;
  try {
    reg = await startRegistry({
      ...(readonly ? { readonly: true } : {}),
      async extraConfig() {
        const q = (s: string) => JSON.stringify(s);
        return {
          yaml: [
            'auth:',
            '  token:',
            `    realm: ${q(issuer.realm)}`,
            `    service: ${q(issuer.service)}`,
            `    issuer: ${q(issuer.issuer)}`,
            `    rootcertbundle: ${q(issuer.rootCertBundle)}`,
          ].join('\n'),
        };
      },
    });
  } catch (e) {
    await issuer.close();
    throw e;
  }
  return {
    ...reg,
    issuer,
    async stop() {
      await reg.stop();
      await issuer.close();
    },
  };
}
