// Which blobs of a bundle set hash to their digests. serve sends no blob as complete before its
// bytes in the tar were checked: a whole-blob answer streams at once but holds back its last chunk
// until the check passed; a range is answered only from a blob checked whole. Each blob is hashed
// once per process (requests for it meanwhile share that one check) and the outcome remembered:
// one entry per blob the set holds, so the memory is bounded by the bundles' own entry tables.
// Hashing runs on worker threads when there is a core to spare (the main thread keeps sending),
// small blobs on the main thread (a few milliseconds, no queue behind a large layer).
import { availableParallelism } from 'node:os';
import { IntegrityError } from '../core/errors.ts';
import { digestAlgorithm, type Digest } from '../core/digest.ts';
import { mainThreadHasher, workerHasher, type RangeHasher } from '../bundle/hash-pool.ts';
import type { Bundle, BundleEntry } from '../bundle/read.ts';
import type { FilePart } from '../bundle/source.ts';

/** One blob checked (once per process): whether its bytes in the bundle hash to its digest. */
export interface BlobCheckEvent {
  type: 'blob-check';
  digest: string;
  /** The bundle whose bytes were hashed. */
  bundle: string;
  size: number;
  ok: boolean;
  ms: number;
  /** Why it is not served (ok false). */
  error?: string | undefined;
}

export interface BlobVerifierOptions {
  onCheck?: ((e: BlobCheckEvent) => void) | undefined;
  /** Worker threads for large blobs (default: one per core but one, up to 4; 0: the main thread). */
  threads?: number | undefined;
}

/** Blobs up to this size are hashed on the main thread. */
const MAIN_THREAD_MAX_BYTES = 4 * 1024 * 1024;
/** Workers idle this long are stopped (a long-running server has checked its hot blobs by then). */
const WORKER_IDLE_MS = 30_000;

const VERIFIED = true;
type State = typeof VERIFIED | Promise<void> | IntegrityError;

export class BlobVerifier {
  readonly #bundles: readonly Bundle[];
  readonly #offsets = new Map<Bundle, number>();
  readonly #state = new Map<string, State>();
  readonly #onCheck: BlobVerifierOptions['onCheck'];
  readonly #threads: number;
  #workers: RangeHasher | undefined;
  #workerJobs = 0;
  /** A job failed other than by a mismatch: the pool may be lost (it then fails every job). */
  #workersSuspect = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Rejects on close(), so no check (and no response waiting on one) outlives the set. */
  readonly #closing: Promise<never>;
  #close!: (e: Error) => void;

  constructor(bundles: readonly Bundle[], opts: BlobVerifierOptions = {}) {
    this.#bundles = bundles;
    // The workers see the bundles laid end to end: one pool, one offset space.
    let at = 0;
    for (const b of bundles) {
      this.#offsets.set(b, at);
      at += b.fileSize;
    }
    this.#onCheck = opts.onCheck;
    this.#threads = Math.max(0, Math.floor(opts.threads ?? Math.min(4, availableParallelism() - 1)));
    this.#closing = new Promise<never>((_, reject) => (this.#close = reject));
    this.#closing.catch(() => {});
  }

  /** `key`: a blob's digest, or the key a check `as` other content was made under. */
  isVerified(key: string): boolean {
    return this.#state.get(key) === VERIFIED;
  }

  /** Why the blob (or other content, by its key) is not served, once its check failed. */
  damage(key: string): IntegrityError | undefined {
    const s = this.#state.get(key);
    return s instanceof IntegrityError ? s : undefined;
  }

  /**
   * Resolves once `digest`'s bytes at `entry` of `bundle` hashed to it; rejects with an
   * IntegrityError (now and for every later call) when they did not. Other failures (the set
   * closing, a worker lost) reject the calls waiting and leave the blob to be checked again.
   * `as`: content other than a blob (a carried tool), remembered under its own key and named by its label.
   */
  verify(digest: string, bundle: Bundle, entry: BundleEntry, as?: { key: string; label: string }): Promise<void> {
    const key = as?.key ?? digest;
    const label = as?.label ?? `blob ${digest}`;
    const s = this.#state.get(key);
    if (s === VERIFIED) return Promise.resolve();
    if (s instanceof IntegrityError) return Promise.reject(s);
    if (s) return s;
    const started = performance.now();
    const check = Promise.race([this.#hash(digest as Digest, bundle, entry), this.#closing]).then(
      (actual) => {
        if (actual !== digest) throw new IntegrityError(`${label} in ${bundle.describe(entry.offset, entry.size)}: digest mismatch, got ${actual}`, { code: 'DIGEST_MISMATCH' });
      },
      (e: unknown) => {
        // The tar is shorter than its entry table says (cut after serve opened it): as damaged as a flip.
        if (!this.#closed && e instanceof Error && /unexpected end of file/.test(e.message)) {
          throw new IntegrityError(`${label} in ${bundle.describe(entry.offset, entry.size)}: ${e.message}`, { code: 'TAR_TRUNCATED', cause: e });
        }
        throw e;
      },
    );
    const settled = check.then(
      () => {
        this.#state.set(key, VERIFIED);
        this.#report(digest, bundle, entry, started, undefined);
      },
      (e: unknown) => {
        if (e instanceof IntegrityError) {
          this.#state.set(key, e);
          this.#report(digest, bundle, entry, started, e);
        } else {
          this.#state.delete(key);
        }
        throw e;
      },
    );
    // Nobody may be waiting (the client left): the outcome is remembered all the same.
    settled.catch(() => {});
    this.#state.set(key, settled);
    return settled;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#close(new Error('the bundle set is closed'));
    await this.#workers?.close();
    this.#workers = undefined;
  }

  #hash(digest: Digest, bundle: Bundle, entry: BundleEntry): Promise<string> {
    if (this.#closed) return Promise.reject(new Error('the bundle set is closed'));
    const algorithm = digestAlgorithm(digest);
    if (entry.size <= MAIN_THREAD_MAX_BYTES || this.#threads === 0) {
      return mainThreadHasher(bundle.fileHandle()).hash({ offset: entry.offset, size: entry.size, algorithm }, () => {});
    }
    clearTimeout(this.#idleTimer);
    this.#workers ??= workerHasher({ locate: (position, length) => this.#locate(position, length) }, this.#threads);
    this.#workerJobs++;
    const job = this.#workers.hash({ offset: this.#offsets.get(bundle)! + entry.offset, size: entry.size, algorithm }, () => {});
    // The pool is replaced or stopped only once no job is in it: a closed pool never settles its jobs.
    const done = (): void => {
      if (--this.#workerJobs > 0 || this.#closed) return;
      if (this.#workersSuspect) this.#dropWorkers();
      else this.#idleTimer = setTimeout(() => this.#dropWorkers(), WORKER_IDLE_MS).unref();
    };
    job.then(done, () => {
      this.#workersSuspect = true;
      done();
    });
    return job;
  }

  #locate(position: number, length: number): FilePart[] {
    for (const b of this.#bundles) {
      const base = this.#offsets.get(b)!;
      if (position >= base && position < base + b.fileSize) return b.fileHandle().locate(position - base, length);
    }
    throw new RangeError(`offset ${position} is in none of the bundles`);
  }

  #dropWorkers(): void {
    const w = this.#workers;
    this.#workers = undefined;
    this.#workersSuspect = false;
    void w?.close().catch(() => {});
  }

  #report(digest: string, bundle: Bundle, entry: BundleEntry, started: number, error: IntegrityError | undefined): void {
    try {
      this.#onCheck?.({ type: 'blob-check', digest, bundle: bundle.path, size: entry.size, ok: error === undefined, ms: Math.round((performance.now() - started) * 10) / 10, ...(error ? { error: error.message } : {}) });
    } catch {
      // A log sink that fails must not change what is served.
    }
  }
}
