// Watching one transfer for stalls and trickles. The hot path only adds to a byte counter; a timer
// a few times per timeout window looks at it. Time the other side is not to blame for (the consumer
// holds a download back, an upload waits for its source) is excluded with pause()/resume(), so a
// slow disk or a slow source never gets a healthy connection cut.
import { performance } from 'node:perf_hooks';
import { formatBytes } from '../core/bytes.ts';
import { formatDuration, formatRate, type TransferLimits } from './transfer-limits.ts';

/** Codes of the cuts: transient, so retried like a reset connection (see retry.ts). */
export type StallCode = 'TRANSFER_STALLED' | 'TRANSFER_TOO_SLOW' | 'NO_RESPONSE_HEADERS' | 'CONNECT_TIMEOUT';

/**
 * A connection cut by airlock because it stalled or crawled. The message names the host and what
 * happened; callers add what was being transferred and what happens next.
 */
export class TransferStallError extends Error {
  readonly code: StallCode;
  /** Bytes this exchange moved before the cut (body bytes; 0 before the headers). */
  readonly bytes: number;
  /** The message without "(after N bytes)", for callers that count bytes their own way (a resumed download). */
  readonly reason: string;
  constructor(code: StallCode, reason: string, bytes = 0) {
    super(bytes > 0 ? `${reason} (after ${formatBytes(bytes)})` : reason);
    this.name = 'TransferStallError';
    this.code = code;
    this.bytes = bytes;
    this.reason = reason;
  }
}

export type Direction = 'download' | 'upload';

/** "no bytes from HOST for 30 s" / "HOST sent 12 B/s, below the minimum 1.0 KiB/s". */
export function stallError(kind: 'idle' | 'slow', host: string, direction: Direction, limits: TransferLimits, bytes: number, rate: number): TransferStallError {
  if (kind === 'idle') {
    const reason = direction === 'download' ? `no bytes from ${host} for ${formatDuration(limits.timeoutMs)}` : `${host} took no bytes for ${formatDuration(limits.timeoutMs)}`;
    return new TransferStallError('TRANSFER_STALLED', reason, bytes);
  }
  const verb = direction === 'download' ? 'sent' : 'took';
  return new TransferStallError('TRANSFER_TOO_SLOW', `${host} ${verb} ${formatRate(rate)}, below the minimum ${formatRate(limits.minRate)}`, bytes);
}

/** The connection is up (TCP, maybe TLS too) yet no response headers came. */
export function noHeadersError(host: string, waitedMs: number, detail?: string): TransferStallError {
  return new TransferStallError('NO_RESPONSE_HEADERS', `${host} accepted the connection but sent no response headers within ${formatDuration(waitedMs)}${detail ? ` (${detail})` : ''}`);
}

export function connectTimeoutError(host: string, waitedMs: number): TransferStallError {
  return new TransferStallError('CONNECT_TIMEOUT', `cannot connect to ${host} within ${formatDuration(waitedMs)}`);
}

/** Checks per timeout window: a stall is noticed between 1 and 1.25 windows after the last byte. */
const TICKS_PER_WINDOW = 4;

export class TransferWatch {
  /** Bytes moved so far: the transfer adds to it directly. */
  bytes = 0;
  readonly #limits: TransferLimits;
  readonly #onTrip: (kind: 'idle' | 'slow', rate: number) => void;
  readonly #timer: NodeJS.Timeout;
  /** Active (unpaused) milliseconds before the current stretch, and when that stretch began. */
  #activeMs = 0;
  #since = 0;
  #paused: boolean;
  #lastBytes = 0;
  #lastProgress = 0;
  /** [active ms, bytes] at earlier checks, oldest first: the start of the rate window. */
  #samples: Array<[number, number]> = [[0, 0]];
  #stopped = false;

  constructor(limits: TransferLimits, onTrip: (kind: 'idle' | 'slow', rate: number) => void, opts: { paused?: boolean } = {}) {
    this.#limits = limits;
    this.#onTrip = onTrip;
    this.#paused = opts.paused === true;
    this.#since = performance.now();
    this.#timer = setInterval(this.#check, Math.max(1, Math.floor(limits.timeoutMs / TICKS_PER_WINDOW)));
    // The transfer's socket keeps the process alive while it matters.
    this.#timer.unref();
  }

  /** The wait from now on is not the other side's doing. */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#activeMs += performance.now() - this.#since;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#since = performance.now();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  readonly #check = (): void => {
    if (this.#stopped) return;
    const active = this.#activeMs + (this.#paused ? 0 : performance.now() - this.#since);
    const bytes = this.bytes;
    const window = this.#limits.timeoutMs;
    if (bytes !== this.#lastBytes) {
      // The last byte came at or before now: counting from now never cuts early.
      this.#lastBytes = bytes;
      this.#lastProgress = active;
    } else if (active - this.#lastProgress >= window) {
      this.#trip('idle', 0);
      return;
    }
    if (this.#limits.minRate <= 0) return;
    const samples = this.#samples;
    if (active > samples[samples.length - 1]![0]) samples.push([active, bytes]);
    // Keep one sample at or before the window's start, none older.
    while (samples.length > 1 && samples[1]![0] <= active - window) samples.shift();
    const [from, fromBytes] = samples[0]!;
    if (active - from < window) return;
    const rate = ((bytes - fromBytes) * 1000) / (active - from);
    if (rate < this.#limits.minRate) this.#trip('slow', rate);
  };

  #trip(kind: 'idle' | 'slow', rate: number): void {
    this.stop();
    this.#onTrip(kind, rate);
  }
}
