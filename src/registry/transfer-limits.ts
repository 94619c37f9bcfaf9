// How long a registry connection may stay silent and how slow a transfer may get before it is cut
// (and retried): the settings, their defaults, the flag syntax (`30s`, `10KiB/s`) and the wording
// of sizes, rates and durations in messages.
import { formatBytes } from '../core/bytes.ts';
import { UsageError } from '../core/errors.ts';

export interface TransferLimits {
  /**
   * Milliseconds a connect, a wait for response headers, or a transfer may go without a byte
   * before it is cut. Time the consumer itself holds a download back (a full disk queue, an upload
   * it feeds) does not count. Also the window the minimum rate is averaged over.
   */
  timeoutMs: number;
  /** Bytes per second a transfer must average over a `timeoutMs` window; 0 turns the check off. */
  minRate: number;
}

/**
 * 30 s without a byte: far beyond any round trip or registry hiccup, short enough that a stalled
 * transfer costs a retry rather than the 300 s of undici's defaults.
 */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * 1 KiB/s over 30 s: a link that slow is broken (a modem moves 7 KiB/s, and the check counts only
 * time the other side is to blame), yet a trickle of a few bytes a second, which the idle timeout
 * never catches, is cut after one window instead of running for days. `--min-rate 0` turns it off.
 */
export const DEFAULT_MIN_RATE = 1024;

export const DEFAULT_TRANSFER_LIMITS: TransferLimits = { timeoutMs: DEFAULT_TIMEOUT_MS, minRate: DEFAULT_MIN_RATE };

/**
 * After an upload's last byte the registry may take a while to answer: storage backends copy the
 * blob into place (S3 does it server-side, minutes for a large layer). That wait gets this many
 * timeouts.
 */
export const COMMIT_WAIT_FACTOR = 10;

const MAX_TIMEOUT_MS = 24 * 3600_000;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3600_000 };

/** `30s`, `500ms`, `2m`, `1.5s`, `1h`; a bare number is seconds. */
export function parseDuration(text: string, what = 'timeout'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$/i.exec(text);
  const ms = m ? Number(m[1]) * DURATION_UNITS[(m[2] ?? 's').toLowerCase()]! : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new UsageError(`${what}: "${text}" is not a duration`, { code: 'TIMEOUT_INVALID', hint: 'use a number with a unit: ms, s, m or h, e.g. 30s (a bare number is seconds)' });
  }
  return checkTimeout(Math.round(ms), what);
}

/** A timeout in ms, checked: at least 1 ms, at most a day. */
export function checkTimeout(ms: number, what = 'timeout'): number {
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > MAX_TIMEOUT_MS) {
    throw new UsageError(`${what} must be from 1 ms to 24 h, got ${Number.isFinite(ms) ? formatDuration(ms) : String(ms)}`, { code: 'TIMEOUT_INVALID' });
  }
  return ms;
}

/**
 * `10KiB/s`, `1MB/s`, `512B/s`, `2M`, `0`: bytes per second, `/s` optional; K/M/G and KiB/MiB/GiB
 * are powers of 1024, KB/MB/GB of 1000; a bare number is bytes. `0` turns the check off.
 */
export function parseRate(text: string, what = 'minimum rate'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(i?b)?|(b))?\s*(?:\/\s*s)?\s*$/i.exec(text);
  if (!m) {
    throw new UsageError(`${what}: "${text}" is not a rate`, { code: 'MIN_RATE_INVALID', hint: 'use bytes per second with an optional unit, e.g. 10KiB/s, 1MB/s or 0 (off)' });
  }
  const power = ' kmg'.indexOf((m[2] ?? ' ').toLowerCase());
  const decimal = m[3] !== undefined && m[3].toLowerCase() === 'b';
  return checkMinRate(Math.floor(Number(m[1]) * (decimal ? 1000 : 1024) ** Math.max(0, power)), what);
}

/** A minimum rate in bytes/s, checked: 0 (off) or a whole positive number. */
export function checkMinRate(rate: number, what = 'minimum rate'): number {
  if (!Number.isSafeInteger(rate) || rate < 0) throw new UsageError(`${what} must be a whole number of bytes per second (0: off), got ${rate}`, { code: 'MIN_RATE_INVALID' });
  return rate;
}

/** Settings as a caller gives them (ms or `30s`; bytes/s or `10KiB/s`), checked, defaults filled in. */
export function transferLimits(timeout: number | string | undefined, minRate: number | string | undefined): TransferLimits {
  return {
    timeoutMs: timeout === undefined ? DEFAULT_TIMEOUT_MS : typeof timeout === 'string' ? parseDuration(timeout) : checkTimeout(timeout),
    minRate: minRate === undefined ? DEFAULT_MIN_RATE : typeof minRate === 'string' ? parseRate(minRate) : checkMinRate(minRate),
  };
}

/** `300 ms`, `30 s`, `1.5 s`, `5 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms >= 120_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/** `12 B/s`, `1.2 KiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}
