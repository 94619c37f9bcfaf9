// Every default a command or a library caller gets without asking: one place, read by the CLI's
// help text and by the library alike.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { DEFAULT_CERTS_DIRS } from '../registry/tls.ts';
import { DEFAULT_MIN_RATE, DEFAULT_TIMEOUT_MS } from '../registry/transfer-limits.ts';
import { historyPath } from '../history/history.ts';

export { DEFAULT_CERTS_DIRS, DEFAULT_MIN_RATE, DEFAULT_TIMEOUT_MS, historyPath as defaultHistoryFile };

/** Transfers in flight at once (per registry host, and blobs of a pack or push). */
export const DEFAULT_CONCURRENCY = 8;
export const MAX_CONCURRENCY = 64;

/** The blob cache of pack: $AIRLOCK_CACHE, else $XDG_CACHE_HOME/airlock, else ~/.cache/airlock. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AIRLOCK_CACHE) return env.AIRLOCK_CACHE;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'airlock');
}

/** A concurrency as asked for, checked: a whole number from 1 to MAX_CONCURRENCY. */
export function checkConcurrency(n: number | undefined): number {
  if (n === undefined) return DEFAULT_CONCURRENCY;
  if (!Number.isInteger(n) || n < 1 || n > MAX_CONCURRENCY) {
    throw new UsageError(`concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}, got ${n}`, { code: 'CONCURRENCY_INVALID' });
  }
  return n;
}
