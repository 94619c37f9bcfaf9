// Shared by the benchmarks: running the airlock CLI as a user would (with its peak RSS recorded),
// running other children with a bound, and telling how much CPU other work took meanwhile.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The package's bin, i.e. what `npx airlock` runs (it imports src/cli/main.ts).
export const BIN = fileURLToPath(new URL('../bin/airlock.mjs', import.meta.url));
const PRELOAD = pathToFileURL(fileURLToPath(new URL('./rss-preload.mjs', import.meta.url))).href;
export const MiB = 1024 * 1024;
/** Generous bound: a hang must not run forever. */
export const CHILD_TIMEOUT_MS = 10 * 60_000;

/** Progress for the human watching; stderr so --json stdout stays one clean document. */
export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

// --- child processes -----------------------------------------------------------------------

/** Aborted on SIGINT/SIGTERM: the running child is killed and `finally` blocks clean up. */
export const interrupt = new AbortController();

export interface ChildRun {
  seconds: number;
  stdout: string;
  stderr: string;
  peakRssBytes: number;
}

/**
 * Run the airlock CLI as a user would: the package's bin executed through its shebang (what
 * `npx airlock` does, V8 flags included) by Node 24, with the RSS preload added through NODE_OPTIONS.
 */
export async function airlock(args: string[], opts: { dir: string; cpuProf?: string | undefined; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<ChildRun> {
  const rssFile = join(opts.dir, `rss-${process.hrtime.bigint()}.txt`);
  const nodeOptions = [`--import=${PRELOAD}`, ...(opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`] : [])];
  const env = {
    ...process.env,
    // The shebang's `env node` finds this very Node 24 first.
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
    NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', ...nodeOptions].join(' ').trim(),
    AIRLOCK_BENCH_RSS_FILE: rssFile,
    // No credentials of the machine's user: both registries are anonymous loopback ones.
    DOCKER_CONFIG: join(opts.dir, 'docker-config'),
    REGISTRY_AUTH_FILE: join(opts.dir, 'no-auth.json'),
    ...opts.env,
  };
  const started = performance.now();
  const r = await runChild(BIN, args, env, opts.timeoutMs ?? CHILD_TIMEOUT_MS);
  const seconds = (performance.now() - started) / 1000;
  if (r.code !== 0) throw new Error(`airlock ${args.join(' ')} exited with ${r.code}${r.timedOut ? ' (timed out)' : ''}:\n${r.stderr.slice(-4000)}`);
  const peakRssBytes = Number(await readFile(rssFile, 'utf8'));
  return { seconds, stdout: r.stdout, stderr: r.stderr, peakRssBytes };
}

export function runChild(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < 4 * MiB) stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < MiB) stderr += d.toString();
    });
    const kill = (): void => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    interrupt.signal.addEventListener('abort', kill, { once: true });
    child.once('error', (e) => {
      clearTimeout(timer);
      interrupt.signal.removeEventListener('abort', kill);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      interrupt.signal.removeEventListener('abort', kill);
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr, timedOut });
    });
  });
}

/**
 * How busy the machine's CPUs are (0-100 %) over `ms` while this benchmark does nothing: anything
 * above a few percent is someone else's work competing with the timed runs. Linux /proc/stat.
 */
export async function cpuBusyPercent(ms: number): Promise<number> {
  const a = await cpuSnapshot([]);
  await sleep(ms);
  const b = await cpuSnapshot([]);
  const total = b.total - a.total;
  return total > 0 ? (100 * (b.busy - a.busy)) / total : 0;
}

export interface CpuSnapshot {
  /** Jiffies of all CPUs, and the busy ones among them (/proc/stat). */
  total: number;
  busy: number;
  /** Jiffies used by this benchmark, its reaped children (airlock, skopeo) and the given PIDs. */
  mine: number;
}

export async function cpuSnapshot(pids: number[]): Promise<CpuSnapshot> {
  // user nice system idle iowait irq softirq steal: idle + iowait count as idle.
  const v = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  // Fields after "pid (comm) ": state is [0], utime [11], stime [12], cutime [13], cstime [14].
  const ticks = async (pid: number | 'self', withChildren: boolean): Promise<number> => {
    const f = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ') ')).split(') ')[1]!.split(' ').map(Number);
    return (f[11] ?? 0) + (f[12] ?? 0) + (withChildren ? (f[13] ?? 0) + (f[14] ?? 0) : 0);
  };
  let mine = await ticks('self', true);
  for (const pid of pids) mine += await ticks(pid, false);
  return { total, busy: total - v[3]! - v[4]!, mine };
}

/**
 * Run `fn` and tell how much CPU other work took meanwhile: machine-wide busy time minus ours
 * (this process, the children it reaped during `fn`, and the registries' PIDs), in % of all CPUs.
 * Kernel threads writing back our files count as "other", so a quiet machine shows a few %.
 */
export async function withOthers<T>(pids: () => number[], fn: () => Promise<T>): Promise<{ value: T; others: number }> {
  const a = await cpuSnapshot(pids());
  const value = await fn();
  const b = await cpuSnapshot(pids());
  const total = b.total - a.total;
  return { value, others: total > 0 ? Math.max(0, (100 * (b.busy - a.busy - (b.mine - a.mine))) / total) : 0 };
}

/**
 * Before a timed step: flush dirty pages (so one tool's writes are not written back on the other's
 * clock), then wait up to `maxMs` for the CPUs to be idle (< 10 % busy over 2 s in a row); a step
 * that starts on busy CPUs anyway is logged as noisy.
 */
export async function settle(maxMs: number): Promise<void> {
  await sync();
  const deadline = Date.now() + maxMs;
  let busy = await cpuBusyPercent(1000);
  if (busy >= 10 && maxMs > 0) log(`  waiting up to ${maxMs / 1000} s for other work to finish (CPUs ${busy.toFixed(0)}% busy)`);
  // Two quiet seconds in a row: a single one is often just a gap between someone's test steps.
  for (let quiet = busy < 10 ? 1 : 0; quiet < 2 && Date.now() < deadline; quiet = busy < 10 ? quiet + 1 : 0) {
    checkInterrupted();
    busy = await cpuBusyPercent(1000);
  }
  if (busy >= 10) log(`  starting with the CPUs ${busy.toFixed(0)}% busy from other work: times will be noisy`);
}

/** Flush dirty pages so the next timed step does not pay for the previous one's writes. */
export async function sync(): Promise<void> {
  await runChild('sync', [], process.env, 60_000);
}

export function checkInterrupted(): void {
  if (interrupt.signal.aborted) throw new Error('interrupted');
}

/** The JSON result line of an `airlock … --json` run. */
export function resultOf(stdout: string): Record<string, unknown> {
  for (const line of stdout.split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    const doc = JSON.parse(line) as Record<string, unknown>;
    if (doc.type === 'result') return doc;
  }
  throw new Error(`no result line in airlock output:\n${stdout.slice(-2000)}`);
}

/** A text table, the first column left-aligned, the others right-aligned. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
