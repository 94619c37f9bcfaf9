// Start a real docker-registry (distribution 2.8) as a plain process on a free loopback port.
// Every test that needs a registry uses this; it is stopped by its PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

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
  const timer = sleep(5000).then(() => 'timeout');
  if ((await Promise.race([exited.then(() => 'ok'), timer])) === 'timeout' && child.exitCode === null) {
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }
}

export async function startRegistry(opts: RegistryStartOptions = {}): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-registry-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
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
    const ready = await waitForPort(port, 10_000, child);
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

async function waitForPort(port: number, timeoutMs: number, child: ChildProcess): Promise<boolean> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await sleep(30);
  }
  return false;
}
