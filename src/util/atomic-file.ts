// The one way airlock writes a file the user will see (bundles, volumes, locks, specs, keys,
// overlays, mirror configs, exports): into a temp file beside the target (same folder, so the rename
// cannot cross file systems), fsynced, renamed over the target, then the folder fsynced so the new
// name survives a crash too. A reader sees the old file or the new one, never half of one; on any
// failure or abort the temp file is removed and the target is untouched.
//
// Only a regular file (or nothing) is replaced: a directory, a device node (/dev/null, /dev/sda), a
// FIFO or a socket at the target is refused before anything is written, and again just before the
// rename, with an error naming it. Failures of the file system itself become typed errors naming
// the target (file-error.ts).
//
//   writeFileAtomic(path, data)          whole content in memory (writeFilesAtomic: several, together)
//   openAtomic(path) → file.handle …     streams and positioned writes; then file.commit() or file.discard()
//   commitAll([a, b, …])                 files that appear together (bundle volumes with their parity)
//   publishFile(temp, path)              a temp file written elsewhere by its own rules (the blob cache)
//   removeLeftovers(path)                temp files a killed run left beside `path` (their process is gone)
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { Writable } from 'node:stream';
import { basename, dirname, join, resolve } from 'node:path';
import { AbortedError, ConflictError, IoError, UsageError } from '../core/errors.ts';
import { formatBytes } from '../core/bytes.ts';
import { fileError, fileErrorFromErrno, writeError } from './file-error.ts';

export interface AtomicFileOptions {
  /**
   * Permission bits of the file. Default: those of the file it replaces, else 0o666 less the umask.
   * A given mode is passed to open(2), so the umask still narrows it (0o600 stays 0o600).
   */
  mode?: number | undefined;
  /** Never replace an existing file: the commit fails with FILE_EXISTS instead (keys without --force). */
  exclusive?: boolean | undefined;
  /** Create the target's folder (and its parents) when missing. */
  mkdir?: boolean | undefined;
  /** An abort makes the commit fail with AbortedError (the temp file is removed). */
  signal?: AbortSignal | undefined;
}

type State = 'open' | 'finished' | 'committed' | 'discarded';

/** A file being written beside its target; it appears there only on commit. */
export class AtomicFile {
  /** The absolute path the file will have. */
  readonly path: string;
  /** Where the bytes are until the commit (readable by path once `finish()`ed, for a second pass). */
  readonly tempPath: string;
  readonly exclusive: boolean;
  readonly signal: AbortSignal | undefined;
  #fh: FileHandle | undefined;
  #handle: FileHandle;
  #state: State = 'open';

  constructor(path: string, tempPath: string, fh: FileHandle, opts: AtomicFileOptions) {
    this.path = path;
    this.tempPath = tempPath;
    this.#fh = fh;
    this.#handle = namingTarget(fh, path);
    this.exclusive = opts.exclusive === true;
    this.signal = opts.signal;
  }

  /**
   * The open temp file; writes at any position. Its failures (a full disk) are typed errors naming
   * the target, wherever they surface (a download that writes through it). Gone after `finish()`.
   */
  get handle(): FileHandle {
    if (!this.#fh) throw new Error(`${this.path}: the temp file is no longer open (${this.#state})`);
    return this.#handle;
  }

  get state(): State {
    return this.#state;
  }

  /**
   * A stream writing on from the start of the file, one write at a time, leaving the handle open
   * for the commit (a FileHandle's own write stream holds the handle until it is destroyed).
   */
  createWriteStream(): Writable {
    const fh = this.handle;
    let position = 0;
    return new Writable({
      highWaterMark: 1024 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        const at = position;
        position += chunk.length;
        writeAll(fh, chunk, at).then(() => callback(), callback);
      },
    });
  }

  /** Flush the bytes to disk and close the handle; the file stays pending until commit or discard. */
  async finish(): Promise<void> {
    if (this.#state !== 'open') return;
    const fh = this.#fh!;
    try {
      await fh.sync();
    } catch (e) {
      throw failure(e, this);
    } finally {
      this.#fh = undefined;
      this.#state = 'finished';
      await fh.close().catch(() => {});
    }
  }

  /** Put the file in place: fsync, rename over the target, fsync the folder. */
  commit(): Promise<void> {
    return commitAll([this]);
  }

  /** Remove the temp file; safe to call at any time and more than once, never throws. */
  async discard(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'discarded') return;
    const fh = this.#fh;
    this.#fh = undefined;
    this.#state = 'discarded';
    await fh?.close().catch(() => {});
    await unlink(this.tempPath).catch(() => {});
  }

  /** For commitAll only: the rename (or link, when exclusive) happened. */
  markCommitted(): void {
    this.#state = 'committed';
  }
}

/** Open a temp file beside `path`; nothing is written at `path` until `commit()`. */
export async function openAtomic(path: string, opts: AtomicFileOptions = {}): Promise<AtomicFile> {
  const target = resolve(path);
  throwIfAbortedFor(opts.signal, target);
  if (opts.mkdir) await ensureFolder(target);
  const existing = await replaceable(target, opts.exclusive === true);
  // What a killed earlier write of this file left goes now (a command that reports it, pack, has
  // already called removeLeftovers itself).
  await removeLeftovers(target);
  const tempPath = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fh: FileHandle;
  try {
    fh = await open(tempPath, 'wx', opts.mode ?? (existing ? existing.mode & 0o7777 : 0o666));
  } catch (e) {
    throw writeError(e, target);
  }
  const file = new AtomicFile(target, tempPath, fh, opts);
  // open(2) narrows the mode by the umask; a replaced file keeps exactly the mode it had.
  if (opts.mode === undefined && existing) await fh.chmod(existing.mode & 0o7777).catch(async (e: unknown) => {
    await file.discard();
    throw writeError(e, target);
  });
  return file;
}

/**
 * Before a long write: every target may be replaced (regular file or nothing) and its folder
 * exists (created with `mkdir`), so a bad path fails before the first byte rather than at the end.
 */
export async function checkTargets(paths: readonly string[], opts: Pick<AtomicFileOptions, 'mkdir' | 'exclusive'> = {}): Promise<void> {
  for (const p of paths) {
    const target = resolve(p);
    if (opts.mkdir) await ensureFolder(target);
    await replaceable(target, opts.exclusive === true);
  }
}

/** Write `data` as the whole new content of `path`. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicFileOptions = {}): Promise<void> {
  await withAtomicFile(path, opts, (file) => file.handle.writeFile(data));
}

/** Several whole files that appear together or not at all (a key pair). */
export async function writeFilesAtomic(entries: readonly { path: string; data: string | Uint8Array; mode?: number | undefined }[], opts: Omit<AtomicFileOptions, 'mode'> = {}): Promise<void> {
  const files: AtomicFile[] = [];
  try {
    for (const e of entries) {
      const file = await openAtomic(e.path, { ...opts, mode: e.mode });
      files.push(file);
      await file.handle.writeFile(e.data).catch((err: unknown) => {
        throw failure(err, file);
      });
    }
  } catch (e) {
    await discardAll(files);
    throw e;
  }
  await commitAll(files, opts);
}

/** Open `path` atomically, let `write` fill it, then commit; on any error or abort, discard. */
export async function withAtomicFile<T>(path: string, opts: AtomicFileOptions, write: (file: AtomicFile) => Promise<T>): Promise<T> {
  const file = await openAtomic(path, opts);
  try {
    const result = await write(file);
    await file.commit();
    return result;
  } catch (e) {
    await file.discard();
    throw failure(e, file);
  }
}

/**
 * Put several files in place together: every one is flushed and checked before the first is
 * renamed, so a failure on the way (a full disk, an abort, a target that turned into a directory)
 * leaves every target as it was and removes every temp file. The renames themselves cannot be
 * undone as a group; exclusive files, which replaced nothing, are removed again if a later one fails.
 */
export async function commitAll(files: readonly AtomicFile[], opts: { signal?: AbortSignal | undefined } = {}): Promise<void> {
  const placed: AtomicFile[] = [];
  let current: AtomicFile | undefined;
  try {
    for (const f of files) {
      current = f;
      if (f.state === 'committed' || f.state === 'discarded') throw new Error(`${f.path}: already ${f.state}`);
      await f.finish();
    }
    for (const f of files) {
      current = f;
      throwIfAbortedFor(opts.signal, f.path);
      throwIfAbortedFor(f.signal, f.path);
      await replaceable(f.path, f.exclusive);
    }
    for (const f of files) {
      current = f;
      await place(f.tempPath, f.path, f.exclusive);
      f.markCommitted();
      placed.push(f);
    }
  } catch (e) {
    // Exclusive files replaced nothing: taking them back leaves every target as it was.
    await Promise.all(placed.filter((f) => f.exclusive).map((f) => unlink(f.path).catch(() => {})));
    await discardAll(files);
    throw current ? failure(e, current) : e;
  }
  await syncFolders(files.map((f) => f.path));
}

/** Discard every file of a set (after a failure elsewhere); never throws. */
export async function discardAll(files: readonly AtomicFile[]): Promise<void> {
  await Promise.all(files.map((f) => f.discard()));
}

/**
 * Publish a temp file that was written (and verified) by its own rules into place at `path`: fsync
 * it (through `handle` when still open; the handle is closed), rename it over the target, fsync the
 * folder. With `sync: false` both fsyncs are skipped, for a cache whose every read verifies what it
 * reads. The temp file is left alone on failure: its owner decides whether it is worth keeping.
 */
export async function publishFile(tempPath: string, path: string, opts: { handle?: FileHandle | undefined; sync?: boolean | undefined } = {}): Promise<void> {
  const target = resolve(path);
  const sync = opts.sync !== false;
  try {
    if (opts.handle) {
      try {
        if (sync) await opts.handle.sync();
      } finally {
        await opts.handle.close();
      }
    } else if (sync) {
      const fh = await open(tempPath, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    await replaceable(target, false);
    await rename(tempPath, target);
    if (sync) await syncFolders([target]);
  } catch (e) {
    throw writeError(e, target);
  }
}

/**
 * The target's current state when it may be replaced (undefined: nothing there); a typed error
 * naming it when it may not: not a regular file, or (exclusive) any file at all.
 */
async function replaceable(target: string, exclusive: boolean): Promise<Stats | undefined> {
  let s: Stats;
  try {
    s = await stat(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw writeError(e, target);
  }
  if (s.isDirectory()) {
    throw new UsageError(`cannot write ${target}: it is a directory`, { code: 'PATH_IS_A_DIRECTORY', hint: 'name a file, not a folder' });
  }
  if (!s.isFile()) {
    throw new UsageError(`cannot write ${target}: it is ${kindOf(s)}, not a regular file`, { code: 'NOT_A_REGULAR_FILE', hint: 'airlock only replaces regular files; name another path' });
  }
  if (exclusive) throw writeError(Object.assign(new Error('exists'), { code: 'EEXIST' }), target);
  return s;
}

function kindOf(s: Stats): string {
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isSocket()) return 'a socket';
  return 'a special file';
}

/** mkdir -p of the target's folder; a file where a folder should be is the user's path, named. */
async function ensureFolder(target: string): Promise<void> {
  const dir = dirname(target);
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new UsageError(`cannot write ${target}: ${await firstFileOn(dir)} is a file, not a directory`, { code: 'PATH_NOT_A_DIRECTORY', cause: e });
    }
    throw fileError(e, dir, 'create the folder');
  }
}

/** The first path on the way to `dir` that exists and is not a directory. */
async function firstFileOn(dir: string): Promise<string> {
  const parts: string[] = [];
  for (let p = dir; ; p = dirname(p)) {
    parts.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of parts) {
    const s = await stat(p).catch(() => undefined);
    if (s && !s.isDirectory()) return p;
  }
  return dir;
}

async function place(tempPath: string, target: string, exclusive: boolean): Promise<void> {
  if (!exclusive) {
    await rename(tempPath, target);
    return;
  }
  // link(2) fails when the name exists: a file that appeared since the check is not replaced.
  await link(tempPath, target);
  await unlink(tempPath).catch(() => {});
}

async function syncFolders(paths: readonly string[]): Promise<void> {
  for (const dir of new Set(paths.map((p) => dirname(p)))) {
    let fh: FileHandle | undefined;
    try {
      fh = await open(dir, 'r');
      await fh.sync();
    } catch (e) {
      // Some file systems cannot fsync a directory; the rename is then as durable as they make it.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') throw fileError(e, dir, 'write');
    } finally {
      await fh?.close().catch(() => {});
    }
  }
}

function throwIfAbortedFor(signal: AbortSignal | undefined, target: string): void {
  if (signal?.aborted) throw new AbortedError(`interrupted: ${target} was not written`, { cause: signal.reason });
}

/** `fh` whose rejected operations reject with typed errors naming `target` instead of the temp file. */
function namingTarget(fh: FileHandle, target: string): FileHandle {
  return new Proxy(fh, {
    get(t, prop) {
      const v: unknown = Reflect.get(t, prop, t);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]): unknown => {
        const r: unknown = (v as (...a: unknown[]) => unknown).apply(t, args);
        return r instanceof Promise ? r.catch((e: unknown) => Promise.reject(writeError(e, target))) : r;
      };
    },
  });
}

/**
 * A failure while writing `target` (through `files`), as the user should read it: an errno error
 * about another file (a source being read) names that file; one without a path, or about a temp
 * file of ours, names the target.
 */
export function writeFailure(e: unknown, target: string, files: readonly AtomicFile[] = []): unknown {
  const path = (e as NodeJS.ErrnoException | undefined)?.path;
  const ours = typeof path === 'string' && (path === target || files.some((f) => f.path === path || f.tempPath === path));
  if (typeof path === 'string' && !ours) return fileErrorFromErrno(e) ?? e;
  return writeError(e, target);
}

function failure(e: unknown, file: AtomicFile): unknown {
  return writeFailure(e, file.path, [file]);
}

/** pwrite until every byte is down (a regular file may take fewer bytes than asked). */
export async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off, position + off)).bytesWritten;
}

/** Is process `pid` gone? (Another user's live process answers EPERM: not gone.) */
export function processIsGone(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

const TEMP_NAME = /^\.(.+)\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Temp files an airlock run that was killed (kill -9, a power cut) left beside `path`: those of
 * `path` itself and of the files named after it (a bundle's volumes and recovery volumes,
 * `NAME.001`, `NAME.par01`), whose process is gone. They are removed; their paths are returned so
 * the command can say what it cleaned up. Temp files of a live run are left alone.
 */
export async function removeLeftovers(path: string): Promise<string[]> {
  const target = resolve(path);
  const dir = dirname(target);
  const name = basename(target);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const m = TEMP_NAME.exec(entry);
    if (!m || !(m[1] === name || m[1]!.startsWith(`${name}.`)) || !processIsGone(Number(m[2]))) continue;
    const p = join(dir, entry);
    try {
      await unlink(p);
      removed.push(p);
    } catch (e) {
      // Another run cleaned it up first.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError(e, p, 'remove');
    }
  }
  return removed.sort();
}

/**
 * Before a write of `bytes` into `path`'s folder: refuse at once when the file system has less room
 * than that (a registry that declares a 900 TiB layer, a bundle meant for a small stick), rather
 * than after an hour of downloads. A file system that cannot say is not checked.
 */
export async function checkFreeSpace(path: string, bytes: number): Promise<void> {
  // The folder may not exist yet: the file system it will be made on is that of its first ancestor that does.
  let dir = dirname(resolve(path));
  let fs = await statfs(dir).catch(() => undefined);
  while (!fs && dirname(dir) !== dir) {
    dir = dirname(dir);
    fs = await statfs(dir).catch(() => undefined);
  }
  if (!fs) return;
  const free = fs.bavail * fs.bsize;
  if (bytes > free) {
    throw new IoError(`cannot write ${resolve(path)}: it needs ${formatBytes(bytes)} and ${dir} has ${formatBytes(free)} free`, {
      code: 'NO_SPACE',
      hint: 'free some space, write somewhere with room, or split the bundle into volumes that fit (--split)',
    });
  }
}

/**
 * Run `fn` holding `lockPath`, a lock file shared by every airlock process on the machine (two
 * pushes appending to one history at once). A lock whose process is gone (killed while holding it)
 * is taken over; a lock held by a live process longer than `waitMs` fails with LOCK_BUSY.
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, opts: { waitMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.waitMs ?? 10_000);
  for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
    try {
      const fh = await open(lockPath, 'wx', 0o600);
      try {
        await fh.write(String(process.pid));
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(e, lockPath, 'create the lock');
    }
    const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
    if (holder > 0 && processIsGone(holder)) {
      // Taken over by renaming it away: of several processes that find it stale, one succeeds.
      await rename(lockPath, `${lockPath}.${process.pid}.stale`).then(
        () => unlink(`${lockPath}.${process.pid}.stale`),
        () => {},
      );
      continue;
    }
    if (Date.now() > deadline) {
      throw new ConflictError(`${lockPath} is held by process ${holder || '(unknown)'}`, { code: 'LOCK_BUSY', hint: `if no airlock is running, remove ${lockPath}` });
    }
    await new Promise((r) => setTimeout(r, pause));
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => {});
  }
}
