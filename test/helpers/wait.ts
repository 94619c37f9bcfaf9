// Waiting on events in tests, bounded: a promise raced against a deadline, a condition polled until
// it holds, a file that appears. The deadline only turns a hang into a clear failure; no test
// passes because time went by.
import { readFileSync, watch } from 'node:fs';
import { access } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { setImmediate as nextTurn, setTimeout as delay } from 'node:timers/promises';

/** `p`, or an Error naming `what` once `ms` passed without it settling. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolve once `cond()` holds, checked every few ms; an Error naming `what` after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await delay(5);
  }
}

/** Resolve once `path` exists (its folder must exist); an Error naming it after `ms`. */
export async function fileAppears(path: string, ms = 10_000): Promise<void> {
  const exists = (): Promise<boolean> => access(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    },
  );
  const ac = new AbortController();
  const seen = new Promise<void>((resolve, reject) => {
    const w = watch(dirname(path), { signal: ac.signal }, (_event, name) => {
      if (name === basename(path)) resolve();
    });
    w.on('error', (e) => {
      if ((e as Error).name !== 'AbortError') reject(e);
    });
  });
  try {
    // Watch first, then look: a file created in between is not missed.
    if (await exists()) return;
    await within(seen, ms, `${path} to appear`);
  } finally {
    ac.abort();
  }
}

/** A few turns of the event loop: lets callbacks already due run (no time passes on purpose). */
export async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await nextTurn();
}

/** Is the process running (a zombie nobody has reaped yet is not)? Linux: read from /proc. */
export function running(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) [ZX] /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch (e) {
    // Gone: not running. Anything else is a failure of the test, not an answer.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}
