// Run the airlock CLI as a user would: a child process of Node 24 on src/cli/main.ts.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

let stateDir: string | undefined;
/**
 * The environment every airlock child of a test gets: the caller's, with airlock's state (the
 * import history that push and serve append to) in a per-process temp dir, never the user's home.
 */
export function testEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  if (stateDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-state-'));
    stateDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return { ...process.env, AIRLOCK_STATE: stateDir, ...extra };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function airlock(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd: opts.cwd,
    env: testEnv(opts.env),
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const code = await new Promise<number>((resolve) => child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1))));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** The NDJSON lines of a --json run, parsed. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function resultOf(stdout: string): Record<string, any> {
  const r = jsonLines(stdout).find((l) => l.type === 'result');
  if (!r) throw new Error(`no result line in:\n${stdout}`);
  return r;
}
