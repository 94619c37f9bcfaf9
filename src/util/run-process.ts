// The one way airlock starts other programs: helm, kubectl, docker-credential-* helpers, and the
// sandbox's ip/nft, DNS-sink helper and the user's command.
//
// A program is somebody else's code: it may hang, print without end, or start children of its own.
// So each run has an optional deadline, a cap on what it may print and an AbortSignal, and when it
// is stopped the stop reaches its whole process group (it is started as a group leader): SIGTERM,
// then SIGKILL after a grace period, so no child of the child keeps running or keeps our pipes
// open. A program that cannot be started is one typed error naming it; findExecutable answers
// beforehand whether it is there. Nothing here logs.
import { spawn, spawnSync, type ChildProcess, type StdioNull, type StdioPipe } from 'node:child_process';
import { constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { AbortedError, NotFoundError, type AirlockErrorOptions } from '../core/errors.ts';

export const DEFAULT_KILL_GRACE_MS = 3_000;
const DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024;
// stderr is for an error message; its head is what explains a failure.
const STDERR_KEPT = 1024 * 1024;
const SIGKILL_WAIT_MS = 1_000;

/** The program is not there, or is not an executable file. */
export class BinaryNotFoundError extends NotFoundError {
  readonly binary: string;
  readonly reason: 'missing' | 'not-executable';
  constructor(binary: string, reason: 'missing' | 'not-executable', options: AirlockErrorOptions = {}) {
    const message =
      reason === 'not-executable'
        ? `"${binary}" is not an executable file`
        : binary.includes('/')
          ? `"${binary}" does not exist`
          : `"${binary}" was not found on PATH`;
    super(message, {
      code: 'BINARY_NOT_FOUND',
      hint: reason === 'not-executable' ? `chmod +x ${binary}, or give the path of the real program` : `install ${basename(binary)} and put it on PATH, or give its full path`,
      ...options,
    });
    this.binary = binary;
    this.reason = reason;
  }
}

export interface FindExecutableOptions {
  /** Whose PATH (default process.env). */
  env?: NodeJS.ProcessEnv | undefined;
  /** What a relative path is relative to (default the process's working directory). */
  cwd?: string | undefined;
  /** Looked in after PATH (root's sbin dirs, which a sudo shell's PATH may leave out). */
  extraDirs?: readonly string[];
}

/**
 * The executable file `name` stands for: a name with a slash is a path (relative to `cwd`), a bare
 * name is looked up on PATH like a shell would. Undefined when there is none, so the caller can
 * say what it needed the program for and how to get it.
 */
export async function findExecutable(name: string, opts: FindExecutableOptions = {}): Promise<string | undefined> {
  if (name.includes('/')) {
    const full = isAbsolute(name) ? name : resolve(opts.cwd ?? process.cwd(), name);
    return (await isExecutableFile(full)) ? full : undefined;
  }
  const dirs = [...((opts.env ?? process.env).PATH ?? '').split(delimiter), ...(opts.extraDirs ?? [])];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** A regular file this process may execute (false for a folder, a plain file or nothing). */
export async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface ExitStatus {
  /** The exit status, or null when a signal ended it. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessResult extends ExitStatus {
  stdout: string;
  /** At most the first MiB. */
  stderr: string;
  /** Set when the runner stopped the program: its deadline passed, or it printed more than allowed. */
  stopped?: 'timeout' | 'output-limit';
}

export interface RunProcessOptions {
  env?: NodeJS.ProcessEnv | undefined;
  cwd?: string | undefined;
  /** Written to stdin, which is then closed; without it stdin is empty. */
  input?: string | undefined;
  /** Stop the program after this long; the result says `stopped: 'timeout'`. */
  timeoutMs?: number | undefined;
  /** Stop the program and reject with AbortedError. */
  signal?: AbortSignal | undefined;
  /** stdout and stderr together may not exceed this (default 256 MiB); past it the program is stopped. */
  maxOutputBytes?: number | undefined;
  /** Between SIGTERM and SIGKILL when stopping (default 3 s). */
  killGraceMs?: number | undefined;
}

type StdioSpec = StdioPipe | StdioNull | 'inherit' | number;

export interface StartProcessOptions {
  env?: NodeJS.ProcessEnv | undefined;
  cwd?: string | undefined;
  /** stdin, stdout, stderr: 'pipe' (default), 'inherit', 'ignore' or a file descriptor of ours. */
  stdio?: [StdioSpec, StdioSpec, StdioSpec];
  /**
   * Start the program as the leader of a new process group (default true), so stop() reaches its
   * children too and a Ctrl-C at the terminal does not reach it. False keeps it in our group, on
   * the terminal: for an interactive command, which must get Ctrl-C and may read the terminal.
   */
  ownGroup?: boolean;
}

/** A program started by startProcess. */
export interface RunningProcess {
  readonly pid: number | undefined;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves when it exits; rejects with BinaryNotFoundError (or the spawn error) when it could not start. */
  readonly exited: Promise<ExitStatus>;
  /** Still running (not exited, not failed to start). */
  readonly running: boolean;
  /**
   * SIGTERM, then SIGKILL after `graceMs` to whatever is still there: the whole group when it has
   * one of its own, else the process. Resolves when it has exited and its group is gone or killed.
   */
  stop(graceMs?: number): Promise<void>;
  /** Send a signal (to the group when it has its own). */
  kill(signal: NodeJS.Signals): void;
}

// Groups started and not yet known to be gone: if airlock itself exits (a second Ctrl-C), they are
// killed on the way out rather than left running.
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function killLiveGroups(): void {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
}

/**
 * A member of the group that has not exited. kill(-pgid, 0) alone also counts zombies, which a
 * container's init may never reap; on Linux /proc tells them apart.
 */
function groupHasLiveMember(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return true;
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^[0-9]+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so split after the last ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
    }
    return false;
  } catch {
    return true;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Start `bin` with `args`, streaming; the caller reads its pipes and waits on `exited`. */
export function startProcess(bin: string, args: readonly string[], opts: StartProcessOptions = {}): RunningProcess {
  const ownGroup = opts.ownGroup ?? true;
  const child: ChildProcess = spawn(bin, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: opts.stdio ?? ['pipe', 'pipe', 'pipe'],
    detached: ownGroup,
    windowsHide: true,
  });
  const pid = child.pid;
  if (ownGroup && pid !== undefined) {
    liveGroups.add(pid);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', killLiveGroups);
    }
  }
  // A program that exits without reading its stdin makes our writes fail with EPIPE; its exit
  // status tells the story.
  child.stdin?.on('error', () => {});
  let done = false;
  const exited = new Promise<ExitStatus>((resolve, reject) => {
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      reject(startError(bin, opts.cwd, e));
    });
    child.once('exit', (exitCode, signal) => {
      done = true;
      resolve({ exitCode, signal });
    });
  });
  // Callers that only stop() a process must not get an unhandled rejection.
  exited.catch(() => {});

  // Once the leader is gone and its group seen empty, the number is free for the system to reuse:
  // never signal it again.
  let groupGone = !ownGroup || pid === undefined;
  const groupAlive = (): boolean => {
    if (groupGone) return false;
    const alive = groupHasLiveMember(pid!);
    if (!alive && done) groupGone = true;
    return alive;
  };

  const kill = (signal: NodeJS.Signals): void => {
    if (pid === undefined) return;
    if (!ownGroup) {
      if (!done) child.kill(signal);
    } else if (!groupGone) signalGroup(pid, signal);
  };

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = DEFAULT_KILL_GRACE_MS): Promise<void> => {
    stopping ??= (async () => {
      if (pid === undefined) return;
      if (!done || groupAlive()) kill('SIGTERM');
      const deadline = Date.now() + graceMs;
      await Promise.race([exited.catch(() => undefined), wait(graceMs)]);
      // The leader may be gone while a child that ignores SIGTERM lives on in the group.
      while (groupAlive() && Date.now() < deadline) await wait(50);
      if (!done || groupAlive()) kill('SIGKILL');
      await exited.catch(() => undefined);
      // SIGKILL is not instant (a process in uninterruptible sleep); give it a bounded moment.
      const killDeadline = Date.now() + SIGKILL_WAIT_MS;
      while (groupAlive() && Date.now() < killDeadline) await wait(10);
      liveGroups.delete(pid);
    })();
    return stopping;
  };
  // What a program that ended by itself left in its group is its own business (an agent it
  // started on purpose); only stop() and airlock's own exit reach into the group.
  const forget = (): void => {
    if (pid !== undefined && !stopping) liveGroups.delete(pid);
  };
  void exited.then(forget, forget);

  return {
    pid,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    exited,
    get running() {
      return !done;
    },
    stop,
    kill,
  };
}

/**
 * Run `bin` to the end and collect what it prints. Resolves with the exit status (a non-zero one
 * is the caller's to judge); rejects with BinaryNotFoundError when it cannot be started and with
 * AbortedError when `signal` aborts (after it has been stopped).
 */
export async function runProcess(bin: string, args: readonly string[], opts: RunProcessOptions = {}): Promise<ProcessResult> {
  if (opts.signal?.aborted) throw new AbortedError('interrupted', { cause: opts.signal.reason });
  const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const p = startProcess(bin, args, { env: opts.env, cwd: opts.cwd, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let size = 0;
  let errKept = 0;
  let stopped: ProcessResult['stopped'] | 'aborted' | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (why: NonNullable<typeof stopped>): void => {
    stopped ??= why;
    stopping ??= p.stop(opts.killGraceMs).then(() => {
      // Something outside the group (it made a session of its own) may still hold our pipes.
      p.stdout?.destroy();
      p.stderr?.destroy();
    });
  };
  const onData = (into: Buffer[] | undefined) => (chunk: Buffer) => {
    size += chunk.length;
    if (size > max) return stop('output-limit');
    if (into) into.push(chunk);
    else if (errKept < STDERR_KEPT) {
      err.push(chunk);
      errKept += chunk.length;
    }
  };
  p.stdout!.on('data', onData(out));
  p.stderr!.on('data', onData(undefined));
  if (opts.input !== undefined) p.stdin!.end(opts.input);
  const timer = opts.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), opts.timeoutMs) : undefined;
  const onAbort = (): void => stop('aborted');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let status: ExitStatus;
  try {
    // Both pipes ended as well as the exit: all output is in.
    [status] = await Promise.all([p.exited, ended(p.stdout!), ended(p.stderr!)]);
    await stopping;
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (stopped === 'aborted') throw new AbortedError('interrupted', { cause: opts.signal?.reason });
  return {
    ...status,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    ...(stopped ? { stopped } : {}),
  };
}

export interface RunProcessSyncOptions {
  env?: NodeJS.ProcessEnv | undefined;
  timeoutMs: number;
}

/**
 * Run `bin` synchronously, for the one place nothing asynchronous can run: cleanup while airlock
 * exits. No group of its own (spawnSync cannot make one), so use it only for programs that start
 * no children.
 */
export function runProcessSync(bin: string, args: readonly string[], opts: RunProcessSyncOptions): ProcessResult {
  const r = spawnSync(bin, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw startError(bin, undefined, r.error as NodeJS.ErrnoException);
  return {
    exitCode: r.status,
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    ...((r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT' ? { stopped: 'timeout' as const } : {}),
  };
}

function startError(bin: string, cwd: string | undefined, e: NodeJS.ErrnoException): Error {
  if (e.code === 'ENOENT' && cwd !== undefined && !isDirectory(cwd)) {
    return new NotFoundError(`cannot run ${bin}: its working directory ${cwd} does not exist`, { code: 'NOT_FOUND', cause: e });
  }
  if (e.code === 'ENOENT') return new BinaryNotFoundError(bin, 'missing', { cause: e });
  if (e.code === 'EACCES' || e.code === 'ENOEXEC' || e.code === 'EISDIR') return new BinaryNotFoundError(bin, 'not-executable', { cause: e });
  return e;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function ended(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
