// When and how long to wait before trying a request again.
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError } from '../core/errors.ts';

/**
 * Statuses that mean "busy or briefly broken, try again later". 500 too: registries answer it for
 * a storage backend's hiccup as often as for a real fault, and a bounded retry of a fault costs
 * seconds while giving up on a hiccup costs the whole lock or pack.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** Error codes of transient connection trouble (undici and node:net). */
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  // airlock's own cuts (transfer-watch.ts)
  'TRANSFER_STALLED',
  'TRANSFER_TOO_SLOW',
  'NO_RESPONSE_HEADERS',
  'CONNECT_TIMEOUT',
]);

export function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function isRetryableError(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/** Seconds or an HTTP date; undefined when absent or unparseable. Capped so a registry cannot stall us for hours. */
export function parseRetryAfter(value: string | undefined, now = Date.now(), capMs = 60_000): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 0), capMs);
}

/** Exponential backoff with "equal jitter": never less than half the step, so retries still back off, yet spread out. */
export function backoffDelay(attempt: number, baseMs: number, maxMs = 10_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
}

export async function sleepWithSignal(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0) return;
  try {
    await sleep(ms, undefined, signal ? { signal } : undefined);
  } catch (e) {
    if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
    throw e;
  }
}

const GERUNDS: Record<string, string> = {
  fetch: 'fetching',
  check: 'checking',
  push: 'pushing',
  mount: 'mounting',
  list: 'listing',
  start: 'starting',
  upload: 'uploading',
  cancel: 'cancelling',
  get: 'getting',
};

/** "fetch blob …" → "while downloading blob …", for messages that say what was going on. */
export function whileDoing(what: string): string {
  if (what.startsWith('fetch blob ')) return `while downloading ${what.slice('fetch '.length)}`;
  const space = what.indexOf(' ');
  const gerund = GERUNDS[space < 0 ? what : what.slice(0, space)];
  return gerund === undefined ? `while trying to ${what}` : `while ${gerund}${space < 0 ? '' : what.slice(space)}`;
}

/** "…; retrying (2 of 4)": the tail of a warning about a failed attempt. */
export function retryingNote(retry: number, of: number, waitMs = 0): string {
  return `retrying (${retry} of ${of})${waitMs >= 1000 ? ` in ${(waitMs / 1000).toFixed(1)} s` : ''}`;
}
