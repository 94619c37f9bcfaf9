// Hashing byte ranges of a bundle (one file or its volumes), either on the main thread (small jobs:
// no start-up cost) or on worker threads (big bundles: sha256 runs ~350 MiB/s per core, so each
// core counts). Workers read the same file descriptors with positioned reads (a range that crosses
// volumes is several parts); nothing is copied between threads but the result.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ByteSource, FilePart, PositionedReader } from './source.ts';
import { AbortedError, throwIfAborted } from '../core/errors.ts';
import { createDigester, type DigestAlgorithm } from '../core/digest.ts';

export interface HashJob {
  offset: number;
  size: number;
  algorithm: DigestAlgorithm;
}


export interface RangeHasher {
  /** `alg:hex` of the range; `onBytes` hears progress in chunks. */
  hash(job: HashJob, onBytes: (n: number) => void): Promise<string>;
  close(): Promise<void>;
}

const CHUNK = 1024 * 1024;
/** Below this many bytes, 'auto' hashes on the main thread: starting workers would cost more than they save. */
const AUTO_THREADS_MIN_BYTES = 64 * 1024 * 1024;

export interface HashingOptions {
  /** Ranges hashed at once (default: the number of cores). */
  concurrency?: number | undefined;
  /** Worker threads: 0 hashes on the main thread; 'auto' (the default) decides by the bytes to hash. */
  threads?: number | 'auto' | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The hasher for `total` bytes of `src`, and how many ranges to hash at once: for 'auto', one
 * worker thread per core (up to the concurrency) when the bytes add up to 64 MiB or more.
 */
export function hasherFor(src: ByteSource, total: number, opts: HashingOptions): { hasher: RangeHasher; limit: number } {
  const cores = availableParallelism();
  const concurrency = Math.max(1, opts.concurrency ?? cores);
  const threads = opts.threads === undefined || opts.threads === 'auto' ? (total >= AUTO_THREADS_MIN_BYTES && cores > 1 ? Math.min(cores, concurrency) : 0) : Math.max(0, Math.floor(opts.threads));
  const hasher = threads > 0 ? workerHasher(src, threads, opts.signal) : mainThreadHasher(src, opts.signal);
  return { hasher, limit: threads > 0 ? Math.max(concurrency, threads) : concurrency };
}

/** Hash on this thread with async positioned reads; `concurrency` bounds reads in flight via the caller. */
export function mainThreadHasher(fh: PositionedReader, signal?: AbortSignal): RangeHasher {
  return {
    async hash(job, onBytes) {
      const h = createDigester(job.algorithm);
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(job.size, 1)));
      let done = 0;
      while (done < job.size) {
        throwIfAborted(signal);
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, job.size - done), job.offset + done);
        if (bytesRead === 0) throw new Error(`unexpected end of file at offset ${job.offset + done}`);
        h.update(buf.subarray(0, bytesRead));
        done += bytesRead;
        onBytes(bytesRead);
      }
      return `${job.algorithm}:${h.digest('hex')}`;
    },
    async close() {},
  };
}

// CommonJS source so the worker needs no file on disk (works from a single-executable build too).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(${CHUNK});
const REPORT = 16 * 1024 * 1024;
parentPort.on('message', (t) => {
  try {
    const h = createHash(t.algorithm);
    let since = 0;
    for (const p of t.parts) {
      let done = 0;
      while (done < p.length) {
        const n = readSync(p.fd, buf, 0, Math.min(buf.length, p.length - done), p.position + done);
        if (n === 0) throw new Error('unexpected end of file ' + p.path + ' at offset ' + (p.position + done));
        h.update(buf.subarray(0, n));
        done += n; since += n;
        if (since >= REPORT) { parentPort.postMessage({ progress: since }); since = 0; }
      }
    }
    parentPort.postMessage({ progress: since, digest: t.algorithm + ':' + h.digest('hex') });
  } catch (e) {
    parentPort.postMessage({ error: String((e && e.message) || e) });
  }
});
`;

interface Slot {
  worker: Worker;
  current?: { resolve: (d: string) => void; reject: (e: Error) => void; onBytes: (n: number) => void };
}

/** `threads` workers, each hashing one range at a time; jobs queue in the order given. */
export function workerHasher(src: Pick<ByteSource, 'locate'>, threads: number, signal?: AbortSignal): RangeHasher {
  const queue: { job: HashJob; resolve: (d: string) => void; reject: (e: Error) => void; onBytes: (n: number) => void }[] = [];
  const slots: Slot[] = [];
  let failure: Error | undefined;

  const failAll = (e: Error): void => {
    failure ??= e;
    for (const s of slots) {
      s.current?.reject(failure);
      s.current = undefined;
    }
    for (const q of queue.splice(0)) q.reject(failure);
  };
  const dispatch = (): void => {
    for (const s of slots) {
      while (!s.current && queue.length > 0) {
        const next = queue.shift()!;
        let parts: FilePart[];
        try {
          parts = src.locate(next.job.offset, next.job.size);
        } catch (e) {
          next.reject(e as Error);
          continue;
        }
        s.current = next;
        s.worker.postMessage({ parts, algorithm: next.job.algorithm });
      }
    }
  };
  for (let i = 0; i < threads; i++) {
    const slot: Slot = { worker: new Worker(WORKER_SOURCE, { eval: true }) };
    slot.worker.on('message', (m: { progress?: number; digest?: string; error?: string }) => {
      const cur = slot.current;
      if (!cur) return;
      if (m.progress) cur.onBytes(m.progress);
      if (m.error !== undefined) {
        slot.current = undefined;
        cur.reject(new Error(m.error));
        dispatch();
      } else if (m.digest !== undefined) {
        slot.current = undefined;
        cur.resolve(m.digest);
        dispatch();
      }
    });
    slot.worker.on('error', (e) => failAll(e));
    slot.worker.on('exit', (code) => {
      if (code !== 0 && !failure) failAll(new Error(`hash worker exited with code ${code}`));
    });
    slots.push(slot);
  }
  const onAbort = (): void => failAll(new AbortedError('interrupted', { cause: signal?.reason }));
  signal?.addEventListener('abort', onAbort, { once: true });

  return {
    hash(job, onBytes) {
      if (failure) return Promise.reject(failure);
      return new Promise<string>((resolve, reject) => {
        queue.push({ job, resolve, reject, onBytes });
        dispatch();
      });
    },
    async close() {
      signal?.removeEventListener('abort', onAbort);
      failure ??= new Error('hash pool closed');
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
