// `airlock capture ARGS --json` as a child process, as a user runs it: started, waited for
// (bounded) until it says it listens, stopped by its PID with SIGTERM; its result line parsed.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testEnv } from '../helpers/cli.ts';

export interface RunningCapture {
  url: string;
  port: number;
  /** host:port, for mirrors-config and skopeo. */
  host: string;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, wait for the exit (bounded). */
  stop(): Promise<{ code: number | null; result: Record<string, any> | undefined }>;
}

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export async function startCapture(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunningCapture> {
  const child = spawn(process.execPath, [MAIN, 'capture', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: testEnv(opts.env) });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4 * 1024 * 1024) stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const lines = (): Record<string, any>[] =>
    stdout
      .split('\n')
      .slice(0, -1)
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>);
  const listening = await new Promise<Record<string, any>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`airlock capture did not start within ${opts.timeoutMs ?? 20_000} ms:\n${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const l = lines().find((e) => e.type === 'listening');
      if (l) {
        clearTimeout(timer);
        resolve(l);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`airlock capture exited (${code}) before listening:\n${stderr}\n${stdout}`));
    });
  });
  return {
    url: listening.url,
    port: listening.port,
    host: `127.0.0.1:${listening.port}`,
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 45_000);
      const code = await exited;
      clearTimeout(t);
      return { code, result: lines().find((e) => e.type === 'result') };
    },
  };
}
