// A real forward proxy (Debian's tinyproxy) on a free loopback port, as the connected side of an
// air-gapped site has one: CONNECT tunnels and absolute-URI requests, optionally Basic proxy auth.
// Its log lists every request it was asked to forward; it is stopped by its PID.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
