// The one counting semaphore: at most `limit` holders at once, waiters served in FIFO order.
// Used for blob transfers, per-host request slots, serve's responses in flight and mapLimit.
// A waiter whose signal aborts leaves the queue at once, so an interrupted copy does not sit
// behind work it will never do; a slot is handed straight from releaser to waiter, so it is never
// lost between the two, and each release function frees its slot once however often it is called.
import { AbortedError } from '../core/errors.ts';

/** Gives a slot back; calling it again does nothing. */
export type Release = () => void;

export class Limiter {
  readonly limit: number;
  #active = 0;
  // Grants of the waiters in arrival order; a grant hands over a slot without touching #active.
  readonly #waiting: (() => void)[] = [];
  #idle: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  /** Slots held now. */
  get active(): number {
    return this.#active;
  }

  /** Callers waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Wait for a slot (FIFO); rejects with AbortedError, and leaves the queue, when `signal` aborts first. */
  async acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) throw aborted(signal);
    if (this.#active < this.limit) {
      this.#active++;
      return this.#releaser();
    }
    await this.#wait(signal);
    return this.#releaser();
  }

  /**
   * Like acquire, but resolves `undefined` at once instead of queueing behind `maxQueued` waiters:
   * for shedding load (a server answers 503) rather than letting the queue grow without bound.
   */
  async tryAcquire(maxQueued: number, signal?: AbortSignal): Promise<Release | undefined> {
    if (signal?.aborted) throw aborted(signal);
    if (this.#active >= this.limit && this.#waiting.length >= maxQueued) return undefined;
    return this.acquire(signal);
  }

  /** Run `task` in a slot; the slot is given back however the task ends. */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      // The signal may have fired while the grant was on its way.
      if (signal?.aborted) throw aborted(signal);
      return await task();
    } finally {
      release();
    }
  }

  /** Resolves when no slot is held and nobody waits. */
  idle(): Promise<void> {
    return this.#active === 0 ? Promise.resolve() : new Promise((resolve) => this.#idle.push(resolve));
  }

  #wait(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(grant);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(aborted(signal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(grant);
    });
  }

  #releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#waiting.shift();
      if (next) next();
      else if (--this.#active === 0) for (const f of this.#idle.splice(0)) f();
    };
  }
}

function aborted(signal: AbortSignal | undefined): AbortedError {
  return new AbortedError('interrupted', { cause: signal?.reason });
}

/** Run `fn` over items with a concurrency limit; rejects with the first error after in-flight work settles. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const limiter = new Limiter(limit);
  const results = await Promise.allSettled(items.map((item, i) => limiter.run(() => fn(item, i), signal)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<R>).value);
}
