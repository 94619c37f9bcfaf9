// A content-addressed blob directory (`<root>/blobs/<alg>/<hex>`, the shape of an OCI image
// layout): the pack cache. Every write is verified while it streams into a temp file in the same
// folder, then published by the shared atomic writer (util/atomic-file.ts publishFile: fsync,
// rename, folder fsync), so a blob path holds the right bytes or nothing. Every read from a later
// run verifies them too (`feed`, `fetch`), and a damaged one is fetched again. Several processes may
// share one cache (packs, pushes, serves at once): every temp name carries its process id, so no
// two write one file; interrupted downloads keep a `<hex>.<pid>.partial` file that a later ingest,
// once that process is gone, takes over and resumes from; temp files of gone processes are removed.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Hash } from 'node:crypto';
import { AbortedError, IntegrityError, NetworkError, NotFoundError, throwIfAborted, UsageError } from '../core/errors.ts';
import { createDigester, digestAlgorithm, digestEncoded, parseDigest, verifyBytes } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import { isRangePumper, type ChunkSink, type Feeder, type Fetcher, type OpOptions, type PumpedBody, type RangeFetcher, type RangePumper, type Storage } from './types.ts';
import { DIRECT_ALIGNMENT, directWorthwhile, giveSlot, isDirectRefusal, openDirect, roundUp, SLOT_BYTES, takeSlot } from './direct-io.ts';
import { pumpedStream } from './pumped.ts';
import { processIsGone, publishFile } from '../util/atomic-file.ts';
import { fileError, writeError } from '../util/file-error.ts';
import { destroyOnAbort, VerifyStream, type VerifyTarget } from './verify-stream.ts';

export interface IngestOptions {
  signal?: AbortSignal | undefined;
  /**
   * Bytes of the blob that reached disk during this call. A resumed prefix is reported once, at
   * the start (`resumed`), so the calls of one successful ingest add up to the blob's size.
   */
  onBytes?: ((n: number, resumed?: boolean) => void) | undefined;
  /**
   * Also hand every byte of the blob, in order, to this sink as it goes (pack writes the bundle in
   * the same pass), a resumed prefix included; a blob already stored is fed from disk. A failed
   * attempt may be followed by one that starts over: positions then repeat.
   */
  also?: ChunkSink | undefined;
}

/** Ingests running in this process, by final path: a second caller waits for the first. */
const inflight = new Map<string, Promise<void>>();

export class FileStore implements Storage, Feeder {
  readonly root: string;

  get label(): string {
    return `the blob cache ${this.root}`;
  }
  /** Digests this instance wrote and hashed itself (ingest, push): read back without a second hash. */
  readonly #verified = new Set<string>();

  readonly #trustOwnWrites: boolean;
  readonly #dirs = new Set<string>();
  /** Per folder, read once: partial downloads that killed runs left, by blob (hex), to resume from. */
  readonly #leftovers = new Map<string, Promise<Map<string, string[]>>>();
  /** Downloads are written around the page cache on local disks, until the filesystem refuses it once. */
  #direct: boolean | undefined;

  /**
   * @param opts.trustOwnWrites read back blobs this instance wrote (and hashed while writing) without
   *   hashing them again. For one short-lived run (pack: download, then write the bundle) this saves a
   *   full sha256 pass; it trades away catching a file damaged on disk in between, which
   *   `airlock verify` of the bundle still catches.
   */
  constructor(root: string, opts: { trustOwnWrites?: boolean } = {}) {
    this.root = resolve(root);
    this.#trustOwnWrites = opts.trustOwnWrites === true;
  }

  /** Where a blob lives (or will live); for callers that want positioned reads. */
  path(desc: Pick<Descriptor, 'digest'>): string {
    // Re-validated here because the digest becomes a file name.
    const d = parseDigest(desc.digest, 'blob digest');
    return join(this.root, 'blobs', digestAlgorithm(d), digestEncoded(d));
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    const p = this.path(desc);
    let s;
    try {
      s = await stat(p);
    } catch (e) {
      if (isNotFound(e)) return false;
      throw fileError(e, p, 'read the cache entry');
    }
    // Not something airlock wrote: it cannot be replaced by a blob without deleting what is there.
    if (!s.isFile()) {
      throw new UsageError(`the blob cache entry ${p} is not a file`, { code: 'CACHE_ENTRY_INVALID', hint: `remove it (rm -r ${p}) or use another cache folder` });
    }
    return s.size === desc.size;
  }

  /** Open a stored blob for reading; a missing one is a NotFoundError naming the store. */
  async #open(desc: Descriptor): Promise<{ fh: FileHandle; p: string }> {
    const p = this.path(desc);
    try {
      return { fh: await open(p, 'r'), p };
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`blob ${desc.digest} is not in the store ${this.root}`, { code: 'BLOB_UNKNOWN', cause: e });
      throw e;
    }
  }

  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    throwIfAborted(opts.signal);
    const { fh, p } = await this.#open(desc);
    const { size } = await fh.stat();
    if (size !== desc.size) {
      await fh.close();
      throw new IntegrityError(`${p}: blob ${desc.digest} is ${size} bytes on disk, expected ${desc.size}`, {
        code: 'SIZE_MISMATCH',
        hint: `delete ${p}; it is fetched again on the next run`,
      });
    }
    const stream = fh.createReadStream({ highWaterMark: 1024 * 1024 });
    // Written and hashed by this very store moments ago (pack: download, then write the bundle):
    // hashing every byte again would cost a second sha256 pass over the whole bundle.
    if (this.#trustOwnWrites && this.#verified.has(desc.digest)) return stream;
    return verifiedStream(stream, desc, `blob ${desc.digest} in ${this.root}`, opts.signal);
  }

  async push(desc: Descriptor, content: Readable, opts: OpOptions = {}): Promise<void> {
    if (await this.exists(desc, opts)) {
      content.destroy();
      return;
    }
    await this.#storeVia(desc, opts, (tmp) =>
      pipeline(content, new VerifyStream(desc, `blob ${desc.digest}`), createWriteStream(tmp, { flags: 'wx' }), { signal: opts.signal }),
    );
  }

  /**
   * Store a blob whose digest is not known beforehand (a file fetched at lock, to be pinned by what
   * it hashes to): hashed (sha256) while it streams into a temp file, at most `limit` bytes, then
   * published under its digest. Returns its descriptor (media type `mediaType`).
   */
  async pushUnknown(content: Readable, opts: OpOptions & { limit: number; what: string; mediaType: string }): Promise<Descriptor> {
    const dir = join(this.root, 'blobs', 'sha256');
    await this.#mkdir(dir);
    await this.#leftoversIn(dir);
    // Named like the store's other temp files (64 hex standing for the digest not known yet), so
    // the one a killed run leaves is removed like theirs.
    const tmp = join(dir, `${randomBytes(32).toString('hex')}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const hash = createDigester('sha256');
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        if (size > opts.limit) return callback(new IntegrityError(`${opts.what} is more than the ${opts.limit}-byte limit`, { code: 'TOO_LARGE' }));
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(content, count, createWriteStream(tmp, { flags: 'wx' }), { signal: opts.signal });
      const desc: Descriptor = { mediaType: opts.mediaType, digest: `sha256:${hash.digest('hex')}`, size };
      if (await this.exists(desc, opts)) await unlink(tmp);
      else {
        await publishFile(tmp, this.path(desc), { sync: DURABLE });
        this.#verified.add(desc.digest);
      }
      return desc;
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw asAborted(writeError(e, tmp), opts.signal);
    }
  }

  /** Store bytes already in memory (a manifest or config, small): checked, written, renamed. */
  async write(desc: Descriptor, bytes: Uint8Array, opts: OpOptions = {}): Promise<void> {
    verifyBytes(bytes, desc, `blob ${desc.digest}`);
    if (await this.exists(desc, opts)) return;
    await this.#storeVia(desc, opts, (tmp) => writeFile(tmp, bytes, { flag: 'wx', signal: opts.signal }));
  }

  /** Write a blob through a fresh temp file beside its place, then rename it there; the temp file never outlives a failure. */
  async #storeVia(desc: Descriptor, opts: OpOptions, put: (tmp: string) => Promise<void>): Promise<void> {
    const final = this.path(desc);
    const dir = join(final, '..');
    await this.#mkdir(dir);
    const tmp = join(dir, `${digestEncoded(desc.digest)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await put(tmp);
      await publishFile(tmp, final, { sync: DURABLE });
      this.#verified.add(desc.digest);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw asAborted(writeError(e, final), opts.signal);
    }
  }

  /** mkdir -p, once per directory per store (a pack writes dozens of blobs into one). */
  async #mkdir(dir: string): Promise<void> {
    if (this.#dirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.#dirs.add(dir);
  }

  /**
   * This process's partial file for `final`: its own from an earlier attempt, else one a killed run
   * left (taken over by renaming it: when two processes race for it, one gets it), else a new name.
   */
  async #claimPartial(final: string): Promise<string> {
    const mine = `${final}.${process.pid}.partial`;
    if ((await sizeOf(mine)) !== undefined) return mine;
    const left = (await this.#leftoversIn(dirname(final))).get(basename(final));
    for (let p = left?.shift(); p !== undefined; p = left?.shift()) {
      try {
        await rename(p, mine);
        return mine;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw writeError(e, p);
      }
    }
    return mine;
  }

  #leftoversIn(dir: string): Promise<Map<string, string[]>> {
    let found = this.#leftovers.get(dir);
    if (!found) {
      found = scanLeftovers(dir);
      this.#leftovers.set(dir, found);
    }
    return found;
  }

  /**
   * Download `desc` from `src` into the store, resumably: bytes land in `<hex>.<pid>.partial`, which
   * an interrupted call leaves behind and the next call (or, once this process is gone, another's)
   * rehashes and continues with
   * `src.fetchFrom(desc, offset)` (or starts over when `src` cannot fetch ranges). The whole blob is
   * verified before it is renamed into place. Concurrent ingests of one digest share one download.
   */
  async ingest(desc: Descriptor, src: Fetcher & Partial<RangeFetcher> & Partial<RangePumper>, opts: IngestOptions = {}): Promise<void> {
    const key = this.path(desc);
    await this.#leftoversIn(dirname(key));
    for (let running = inflight.get(key); running; running = inflight.get(key)) {
      await raceAbort(
        running.catch(() => {}),
        opts.signal,
      );
    }
    // Registered before the first await so a concurrent caller cannot slip in between.
    const work = (async () => {
      if (await this.exists(desc, opts)) {
        if (!opts.also) return;
        try {
          await this.feed(desc, opts.also, opts);
          return;
        } catch (e) {
          // A damaged copy (now removed) is fetched again; the sink takes the bytes anew.
          if (!(e instanceof IntegrityError)) throw e;
        }
      }
      await this.#ingestOnce(desc, src, opts);
    })();
    inflight.set(key, work);
    try {
      await work;
    } finally {
      if (inflight.get(key) === work) inflight.delete(key);
    }
  }

  async #ingestOnce(desc: Descriptor, src: Fetcher & Partial<RangeFetcher> & Partial<RangePumper>, opts: IngestOptions): Promise<void> {
    const final = this.path(desc);
    await this.#mkdir(join(final, '..'));
    const partial = await this.#claimPartial(final);
    const what = `blob ${desc.digest}`;
    const also = opts.also;

    let offset = 0;
    let prefix: Hash | undefined;
    const have = await sizeOf(partial);
    const canResume = typeof src.fetchFrom === 'function' || isRangePumper(src);
    if (have !== undefined && have > 0 && (have === desc.size || (have < desc.size && canResume))) {
      // One read of the prefix: hashed, and handed on in the same pass.
      const hash = await hashFile(partial, desc, opts.signal, also);
      if (have < desc.size) {
        offset = have;
        prefix = hash;
      } else if (`${digestAlgorithm(desc.digest)}:${hash.digest('hex')}` === desc.digest) {
        // A previous run got every byte but stopped before the rename.
        opts.onBytes?.(have, true);
        await publishFile(partial, final, { sync: DURABLE });
        this.#verified.add(desc.digest);
        return;
      }
    }

    // Raw bytes when the source offers them: they are hashed here, once, not also by the source.
    const raw = (from: number): Promise<PumpedBody> =>
      isRangePumper(src) ? src.openFrom(desc, from, { signal: opts.signal }) : src.fetchFrom!(desc, from, { signal: opts.signal }).then(pumpedStream);
    let input: PumpedBody | undefined;
    let refused = false;
    if (prefix) {
      try {
        input = await raw(offset);
      } catch (e) {
        // Only a refused range (not a network failure or an abort) is worth a fresh start.
        if (e instanceof NetworkError || e instanceof AbortedError || opts.signal?.aborted) throw asAborted(e, opts.signal);
        prefix = undefined;
        offset = 0;
        refused = true;
      }
    }
    input ??= canResume && !refused ? await raw(0) : pumpedStream(await src.fetch(desc, { signal: opts.signal }));
    if (offset > 0) opts.onBytes?.(offset, true);
    const hash = prefix ?? createDigester(digestAlgorithm(desc.digest));
    // Positioned writes at explicit offsets (a resumed prefix is kept, a fresh start truncates),
    // around the page cache where the filesystem allows it (direct-io.ts), else buffered.
    let direct: FileHandle | undefined;
    let fh: FileHandle;
    try {
      this.#direct ??= await directWorthwhile(join(final, '..'));
      if (this.#direct && offset % DIRECT_ALIGNMENT === 0) {
        direct = await openDirect(partial, !prefix);
        if (direct === undefined) this.#direct = false;
      }
      fh = direct ?? (await open(partial, prefix ? 'r+' : 'w'));
    } catch (e) {
      input.cancel();
      throw e;
    }
    // Where the blob's bytes on disk end: a padded last write leaves zeros after it until the cut.
    let dataEnd = offset;
    const toDisk = async (chunk: Buffer, position: number): Promise<void> => {
      if (direct !== undefined) {
        // The last batch is padded to the alignment with zeros; the file is cut to size after it.
        const padded = Buffer.from(chunk.buffer, chunk.byteOffset, roundUp(chunk.length)).fill(0, chunk.length);
        try {
          await writevAll(direct, [padded], position);
          dataEnd = Math.max(dataEnd, position + chunk.length);
          return;
        } catch (e) {
          if (!isDirectRefusal(e)) throw e;
          // Opened, yet refused at the first write (some FUSE filesystems): buffered from here on.
          this.#direct = false;
          await direct.close();
          direct = undefined;
          fh = await open(partial, 'r+');
        }
      }
      await writevAll(fh, [chunk], position);
      dataEnd = Math.max(dataEnd, position + chunk.length);
    };
    try {
      await pumpToDisk(input, desc, offset, what, opts.signal, hash, (chunk, position) => {
        const reported = toDisk(chunk, position).then(() => opts.onBytes?.(chunk.length));
        return also ? Promise.all([reported, also([chunk], position)]).then(() => {}) : reported;
      });
      const actual = `${digestAlgorithm(desc.digest)}:${hash.digest('hex')}`;
      if (actual !== desc.digest) throw new IntegrityError(`${what}: digest mismatch, expected ${desc.digest}, got ${actual}`, { code: 'DIGEST_MISMATCH' });
      if (direct !== undefined) await direct.truncate(desc.size);
    } catch (e) {
      input.cancel();
      // The good prefix stays for the resume, without the padding of a last direct write.
      if (direct !== undefined) await direct.truncate(dataEnd).catch(() => {});
      await fh.close().catch(() => {});
      // Wrong bytes cannot be resumed from; anything else (network, abort) keeps the prefix.
      if (e instanceof IntegrityError) await unlink(partial).catch(() => {});
      throw asAborted(writeError(e, partial), opts.signal);
    }
    await publishFile(partial, final, { handle: fh, sync: DURABLE });
    this.#verified.add(desc.digest);
  }

  /**
   * Hand a stored blob's bytes, in order, to `sink`, verifying size and digest as they are read
   * (the pack's one pass over cached blobs). A blob that fails the check is removed from the store,
   * so the next ingest fetches it again.
   */
  async feed(desc: Descriptor, sink: ChunkSink, opts: OpOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    const { fh, p } = await this.#open(desc);
    const corrupt = async (why: string, code: 'SIZE_MISMATCH' | 'DIGEST_MISMATCH'): Promise<IntegrityError> => {
      await unlink(p).catch(() => {});
      this.#verified.delete(desc.digest);
      return new IntegrityError(`${p}: blob ${desc.digest} ${why}`, { code, hint: 'it was removed from the cache: the next run fetches it again' });
    };
    try {
      const { size } = await fh.stat();
      if (size !== desc.size) throw await corrupt(`is ${size} bytes on disk, expected ${desc.size}`, 'SIZE_MISMATCH');
      // Written and hashed by this very store moments ago (pack with --split: download, then write).
      const hash = this.#trustOwnWrites && this.#verified.has(desc.digest) ? undefined : createDigester(digestAlgorithm(desc.digest));
      // Two buffers: one is being handed on while the next is read.
      const buffers = [Buffer.allocUnsafe(FEED_CHUNK), Buffer.allocUnsafe(FEED_CHUNK)];
      let pending: Promise<void> | undefined;
      try {
        for (let n = 0, i = 0; n < desc.size; i ^= 1) {
          throwIfAborted(opts.signal);
          const buf = buffers[i]!;
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, desc.size - n), n);
          if (bytesRead === 0) throw await corrupt(`ends after ${n} of ${desc.size} bytes`, 'SIZE_MISMATCH');
          const chunk = buf.subarray(0, bytesRead);
          hash?.update(chunk);
          await pending;
          pending = sink([chunk], n);
          pending.catch(() => {});
          n += bytesRead;
        }
      } catch (e) {
        await pending?.catch(() => {});
        throw e;
      }
      await pending;
      const actual = hash && `${digestAlgorithm(desc.digest)}:${hash.digest('hex')}`;
      if (actual !== undefined && actual !== desc.digest) throw await corrupt(`has the digest ${actual}`, 'DIGEST_MISMATCH');
    } finally {
      await fh.close();
    }
  }
}

const PARTIAL_NAME = /^([0-9a-f]{64,128})(?:\.(\d+))?\.partial$/;
const TEMP_NAME = /^([0-9a-f]{64,128})\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * What runs that were killed left in a cache folder: their partial downloads (by blob, to resume
 * from; a `<hex>.partial` without a process id is an older airlock's), and their temp files, which
 * are removed. Files of processes still running are theirs and left alone.
 */
async function scanLeftovers(dir: string): Promise<Map<string, string[]>> {
  const partials = new Map<string, string[]>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return partials;
  }
  for (const name of names) {
    const partial = PARTIAL_NAME.exec(name);
    if (partial) {
      if (partial[2] === undefined || processIsGone(Number(partial[2]))) partials.set(partial[1]!, [...(partials.get(partial[1]!) ?? []), join(dir, name)]);
      continue;
    }
    const temp = TEMP_NAME.exec(name);
    if (temp && processIsGone(Number(temp[2]))) await unlink(join(dir, name)).catch(() => {});
  }
  return partials;
}

/**
 * Cache entries are published without fsync (file or folder). Every read of the cache is verified
 * (a torn entry after a crash is fetched again), so syncing buys no correctness; and a pack of a
 * thousand small images publishes thousands of entries, each sync a disk flush.
 */
const DURABLE = false;

/** Read size for `feed`. */
const FEED_CHUNK = 1024 * 1024;

/**
 * Pump `input` (the blob's bytes from `offset` on) into `hash` and, copied into pooled page-aligned
 * SLOT_BYTES buffers, into `write`, one write at a time (a `.partial` file grows without holes, so
 * an interruption leaves a resumable prefix). The source waits while two batches are queued. Each
 * chunk given to `write` starts a slot; the slot's bytes after it are scratch (room for padding).
 * Refuses more than the blob's size and ends with an IntegrityError when the input ends short.
 */
async function pumpToDisk(
  input: PumpedBody,
  desc: Descriptor,
  offset: number,
  what: string,
  signal: AbortSignal | undefined,
  hash: Hash,
  write: (chunk: Buffer, position: number) => Promise<void>,
): Promise<void> {
  const batchSize = Math.max(1, Math.min(SLOT_BYTES, desc.size - offset));
  const free: Buffer[] = [];
  const taken: Buffer[] = [];
  let current: Buffer | undefined;
  let fill = 0;
  let position = offset;
  let queued = 0;
  let chain: Promise<void> = Promise.resolve();
  let failure: unknown;
  let wake: (() => void) | undefined;
  const flush = (): void => {
    if (current === undefined || fill === 0) return;
    const buf = current;
    const chunk = buf.subarray(0, fill);
    const at = position;
    position += fill;
    current = undefined;
    fill = 0;
    queued++;
    chain = chain.then(async () => {
      try {
        if (failure === undefined) await write(chunk, at);
      } catch (e) {
        failure ??= e;
      } finally {
        queued--;
        free.push(buf);
        const w = wake;
        wake = undefined;
        w?.();
      }
    });
  };
  throwIfAborted(signal);
  const onAbort = (): void => input.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await input.pump((chunk) => {
      if (failure !== undefined) throw failure;
      if (position + fill + chunk.length > desc.size) throw new IntegrityError(`${what}: more than the expected ${desc.size} bytes`, { code: 'SIZE_MISMATCH' });
      hash.update(chunk);
      for (let i = 0; i < chunk.length; ) {
        if (current === undefined) {
          current = free.pop();
          if (current === undefined) taken.push((current = takeSlot()));
        }
        const n = chunk.copy(current, fill, i, i + Math.min(chunk.length - i, batchSize - fill));
        fill += n;
        i += n;
        if (fill === batchSize) flush();
      }
      if (queued >= 2) {
        return new Promise<void>((resolve) => {
          wake = resolve;
        }).then(() => {
          if (failure !== undefined) throw failure;
        });
      }
    });
    flush();
    await chain;
    if (failure !== undefined) throw failure;
    throwIfAborted(signal);
  } catch (e) {
    // Good bytes gathered before a broken connection or an abort are kept for the resume.
    if (!(e instanceof IntegrityError) && failure === undefined) flush();
    await chain;
    // The abort cancels the source, which then fails in its own words.
    if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // Every write has settled (the chain was awaited): nothing holds the slots any more.
    for (const b of taken) giveSlot(b);
  }
  if (position !== desc.size) throw new IntegrityError(`${what}: truncated, got ${position} of ${desc.size} bytes`, { code: 'SIZE_MISMATCH' });
}

/** pwritev until every byte is down (a regular file may take fewer bytes than asked). */
export async function writevAll(fh: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let rest = chunks;
  let at = position;
  while (rest.length > 0) {
    let n = (await fh.writev(rest, at)).bytesWritten;
    at += n;
    while (rest.length > 0 && n >= rest[0]!.length) {
      n -= rest[0]!.length;
      rest = rest.slice(1);
    }
    if (n > 0) rest = [rest[0]!.subarray(n), ...rest.slice(1)];
  }
}

/**
 * Pipe `source` through a VerifyStream and return the verified stream: errors of either side reach
 * the consumer, a consumer that stops early releases the source, and `signal` aborts both.
 */
function verifiedStream(source: Readable, target: VerifyTarget, what: string, signal?: AbortSignal): Readable {
  const v = new VerifyStream(target, what);
  source.once('error', (e) => v.destroy(e));
  v.once('close', () => {
    if (!source.destroyed) source.destroy();
  });
  destroyOnAbort(v, signal);
  source.pipe(v);
  return v;
}

async function hashFile(path: string, desc: Descriptor, signal: AbortSignal | undefined, also?: ChunkSink): Promise<Hash> {
  const hash = createDigester(digestAlgorithm(desc.digest));
  const fh = await open(path, 'r');
  try {
    const reused = also ? undefined : Buffer.allocUnsafe(FEED_CHUNK);
    for (let n = 0; ; ) {
      throwIfAborted(signal);
      // A fresh buffer per read when the bytes are handed on (the sink may hold them until written).
      const buf = reused ?? Buffer.allocUnsafe(FEED_CHUNK);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      if (also) await also([chunk], n);
      n += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return hash;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** Turn the stream machinery's AbortError into airlock's AbortedError when our signal fired. */
export function asAborted(e: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted && !(e instanceof AbortedError) && (e as Error | undefined)?.name === 'AbortError') {
    return new AbortedError('interrupted', { cause: signal.reason });
  }
  return e;
}

async function raceAbort(p: Promise<unknown>, signal: AbortSignal | undefined): Promise<void> {
  throwIfAborted(signal);
  if (!signal) {
    await p;
    return;
  }
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(new AbortedError('interrupted', { cause: signal.reason }));
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
