// Real forward proxies (Debian's tinyproxy, and squid where 407 matters) on a free loopback port, as the connected side of an
// air-gapped site has one: CONNECT tunnels and absolute-URI requests, optionally Basic proxy auth.
// Its log lists every request it was asked to forward; it is stopped by its PID.
import { execFile, spawn } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild } from './registry.ts';
import { until } from './wait.ts';

export interface ForwardProxy {
  /** http://127.0.0.1:PORT (no credentials). */
  url: string;
  port: number;
  /** The request lines the proxy was asked for, in order: `CONNECT 127.0.0.1:5000`, `GET http://127.0.0.1:5000/v2/`. */
  requests(): Promise<string[]>;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * `upstream` (host:port) hands every request on to that server as an absolute-URI request instead
 * of resolving and connecting to the named host: a test can then ask for `http://charts.invalid/…`
 * (a name that clients which never proxy loopback do proxy) and nothing leaves this machine.
 */
export async function startForwardProxy(opts: { user?: string; password?: string; upstream?: string } = {}): Promise<ForwardProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-proxy-'));
  const port = await freePort();
  const log = join(dir, 'tinyproxy.log');
  const lines = [`Port ${port}`, 'Listen 127.0.0.1', 'Allow 127.0.0.1', `LogFile "${log}"`, 'LogLevel Info', 'MaxClients 200', 'Timeout 60'];
  if (opts.user !== undefined) lines.push(`BasicAuth ${opts.user} ${opts.password ?? ''}`);
  if (opts.upstream !== undefined) lines.push(`Upstream http ${opts.upstream}`);
  await writeFile(join(dir, 'tinyproxy.conf'), `${lines.join('\n')}\n`);
  const child = spawn('tinyproxy', ['-d', '-c', join(dir, 'tinyproxy.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new Error(`tinyproxy could not be started (${e.message}): run \`bash scripts/setup.sh\``)));
  });
  await spawned;
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`tinyproxy exited with ${child.exitCode}: ${stderr}`);
      return await accepts(port);
    }, 'tinyproxy to listen');
  } catch (e) {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async requests() {
      const text = await readFile(log, 'utf8').catch(() => '');
      return [...text.matchAll(/Request \(file descriptor \d+\): (\S+ \S+) HTTP/g)].map((m) => m[1]!);
    },
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Debian's squid, for what tinyproxy does not do: Basic proxy auth answered 407 as the standard
 * says (tinyproxy 1.11 answers 401), with `user` and `password` in an htpasswd file; and with `tls`
 * an https:// proxy (TLS between client and proxy). Its access log lists `METHOD target` per
 * request, like ForwardProxy.requests().
 */
export async function startSquid(opts: { user?: string; password?: string; tls?: { certFile: string; keyFile: string } }): Promise<ForwardProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-squid-'));
  // Started as root, squid works as the user `proxy`: its logs and pid file must be writable by it.
  await chmod(dir, 0o777);
  const port = await freePort();
  const auth = opts.user !== undefined;
  if (auth) {
    await new Promise<void>((resolve, reject) =>
      execFile('htpasswd', ['-bc', join(dir, 'passwd'), opts.user!, opts.password ?? ''], (e) => (e ? reject(new Error(`htpasswd failed: ${e.message}`)) : resolve())),
    );
    await chmod(join(dir, 'passwd'), 0o644);
  }
  if (opts.tls) {
    // Read by the user `proxy` too.
    await copyFile(opts.tls.certFile, join(dir, 'proxy.crt'));
    await copyFile(opts.tls.keyFile, join(dir, 'proxy.key'));
    await chmod(join(dir, 'proxy.key'), 0o644);
  }
  const conf = [
    opts.tls ? `https_port 127.0.0.1:${port} tls-cert=${join(dir, 'proxy.crt')} tls-key=${join(dir, 'proxy.key')}` : `http_port 127.0.0.1:${port}`,
    `pid_filename ${join(dir, 'squid.pid')}`,
    `cache_log ${join(dir, 'cache.log')}`,
    `access_log stdio:${join(dir, 'access.log')}`,
    'cache deny all',
    `coredump_dir ${dir}`,
    ...(auth
      ? [`auth_param basic program /usr/lib/squid/basic_ncsa_auth ${join(dir, 'passwd')}`, 'auth_param basic realm airlock-test-proxy', 'acl authed proxy_auth REQUIRED']
      : []),
    'acl local src 127.0.0.1/32',
    auth ? 'http_access allow local authed' : 'http_access allow local',
    'http_access deny all',
    'shutdown_lifetime 0 seconds',
  ];
  await writeFile(join(dir, 'squid.conf'), `${conf.join('\n')}\n`);
  const child = spawn(existsSync('/usr/sbin/squid') ? '/usr/sbin/squid' : 'squid', ['-N', '-f', join(dir, 'squid.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new Error(`squid could not be started (${e.message}): run \`bash scripts/setup.sh\``)));
  });
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`squid exited with ${child.exitCode}: ${stderr}`);
      return await accepts(port);
    }, 'squid to listen');
  } catch (e) {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    async requests() {
      const text = await readFile(join(dir, 'access.log'), 'utf8').catch(() => '');
      return text
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length >= 7)
        .map((f) => `${f[5]} ${f[6]}`);
    },
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
