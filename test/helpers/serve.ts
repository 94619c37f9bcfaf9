// `airlock serve` as a child process, as a user runs it: started, waited for (bounded) until it
// says it listens, stopped by its PID.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testEnv } from './cli.ts';

export interface RunningServe {
  url: string;
  port: number;
  /** host:port for image references. */
  host: string;
  pid: number;
  /** The `listening` event (images and their served names). */
  listening: Record<string, any>;
  stderr(): string;
  stdout(): string;
  /** SIGTERM (or `signal`), wait for the exit; resolves to the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/**
 * Start `airlock serve ARGS --json` and wait for its `listening` event (bounded). `env` goes over
 * testEnv's. `program`: another airlock (the single executable), run with exactly its `env`.
 */
export async function startServe(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; program?: { path: string; env: NodeJS.ProcessEnv; cwd?: string } } = {}): Promise<RunningServe> {
  const [cmd, pre] = opts.program ? [opts.program.path, []] : [process.execPath, [MAIN]];
  const child = spawn(cmd, [...pre, 'serve', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.program?.env ?? testEnv(opts.env), ...(opts.program?.cwd ? { cwd: opts.program.cwd } : {}) });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4 * 1024 * 1024) stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const listening = await new Promise<Record<string, any>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`airlock serve did not start within ${opts.timeoutMs ?? 20_000} ms:\n${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // Complete lines only: the last one may still be arriving.
      for (const line of stdout.split('\n').slice(0, -1)) {
        if (!line.startsWith('{')) continue;
        let e: Record<string, any>;
        try {
          e = JSON.parse(line) as Record<string, any>;
        } catch (err) {
          child.kill('SIGKILL');
          reject(new Error(`airlock serve --json printed a line that is not JSON: ${line}`, { cause: err }));
          return;
        }
        if (e.type === 'listening') {
          clearTimeout(timer);
          resolve(e);
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`airlock serve exited (${code}) before listening:\n${stderr}`), { code, stderr, stdout }));
    });
  });
  return {
    url: listening.url,
    port: listening.port,
    host: `127.0.0.1:${listening.port}`,
    pid: child.pid!,
    listening,
    stderr: () => stderr,
    stdout: () => stdout,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      process.kill(child.pid!, signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
