// Start a real nginx as a reverse proxy in front of a loopback registry, on a free port, with
// everything it writes (pid, logs, temp paths) in a temp dir. Stopped by its PID.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, stopChild } from './registry.ts';

export interface RunningNginx {
  /** host:port of the proxy. */
  host: string;
  pid: number;
  /** The access log so far: one line a request, `METHOD STATUS REQUEST_LENGTH`. */
  accessLog(): Promise<string>;
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** client_max_body_size, e.g. `1m`. */
  maxBody: string;
  /**
   * proxy_request_buffering (default off: bodies stream through). On, nginx takes each request
   * body whole (in memory up to maxBody) before it passes it on: a broken request never reaches
   * the registry.
   */
  requestBuffering?: boolean;
}

/** nginx proxying everything to `upstream` (host:port). */
export async function startNginx(upstream: string, opts: NginxOptions): Promise<RunningNginx> {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-nginx-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const cfg = [
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'worker_processes 1;',
      'events { worker_connections 256; }',
      'http {',
      // One line a request: method, status, request length (headers and body) as nginx took it.
      "  log_format airlock '$request_method $status $request_length';",
      `  access_log ${join(dir, 'access.log')} airlock;`,
      `  client_body_temp_path ${join(dir, 'body')};`,
      `  proxy_temp_path ${join(dir, 'proxy')};`,
      `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
      `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
      `  scgi_temp_path ${join(dir, 'scgi')};`,
      '  server {',
      `    listen 127.0.0.1:${port};`,
      `    client_max_body_size ${opts.maxBody};`,
      `    client_body_buffer_size ${opts.requestBuffering === true ? opts.maxBody : '16k'};`,
      '    location / {',
      `      proxy_pass http://${upstream};`,
      '      proxy_http_version 1.1;',
      `      proxy_request_buffering ${opts.requestBuffering === true ? 'on' : 'off'};`,
      '      proxy_buffering off;',
      // Without it the registry's upload Location points past nginx.
      '      proxy_set_header Host $http_host;',
      '    }',
      '  }',
      '}',
    ].join('\n');
    await writeFile(join(dir, 'nginx.conf'), cfg);
    const child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off; user root;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 20000) stderr += d.toString();
    });
    const failed = new Promise<Error>((resolve) => child.once('error', resolve));
    const host = `127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    let up = false;
    while (!up && Date.now() < deadline && child.exitCode === null) {
      up = await new Promise<boolean>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/v2/', timeout: 1000 }, (res) => {
          res.resume();
          resolve(true);
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(false));
        req.end();
      });
      if (!up) await sleep(30);
    }
    if (!up) {
      await stopChild(child);
      if (attempt < 3 && /Address already in use/i.test(stderr)) continue;
      const err = await Promise.race([failed, sleep(10).then(() => undefined)]);
      await rm(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start${err ? `: ${err.message}` : ''}\n${stderr}\n(install it with: apt-get install nginx)`);
    }
    return {
      host,
      pid: child.pid!,
      accessLog: () => readFile(join(dir, 'access.log'), 'utf8').catch(() => ''),
      async stop() {
        await stopChild(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}
