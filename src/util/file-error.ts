// Ordinary file-system failures (a missing file, a full disk, a read-only mount, a denied
// permission) are the user's to fix, not bugs: each becomes a typed error naming the path and what
// happened, with the exit code of its kind. Used by the atomic writer, the file-reading helpers, and
// as a safety net at the CLI boundary for any errno error that still slips through.
import { AirlockError, AuthError, ConflictError, IoError, NotFoundError, UsageError } from '../core/errors.ts';

type Make = (message: string, cause: unknown) => AirlockError;

const KINDS: Record<string, { why: string; make: Make }> = {
  ENOENT: { why: 'no such file or directory', make: (m, cause) => new NotFoundError(m, { code: 'FILE_NOT_FOUND', cause }) },
  ENOTDIR: { why: 'a part of the path is a file, not a directory', make: (m, cause) => new UsageError(m, { code: 'PATH_NOT_A_DIRECTORY', cause }) },
  EISDIR: { why: 'it is a directory', make: (m, cause) => new UsageError(m, { code: 'PATH_IS_A_DIRECTORY', cause }) },
  ENAMETOOLONG: { why: 'the name is too long', make: (m, cause) => new UsageError(m, { code: 'PATH_INVALID', cause }) },
  ELOOP: { why: 'too many levels of symbolic links', make: (m, cause) => new UsageError(m, { code: 'PATH_INVALID', cause }) },
  EACCES: {
    why: 'permission denied',
    make: (m, cause) => new AuthError(m, { code: 'PERMISSION_DENIED', cause, hint: 'check the permissions of the file and of its folders, or run as a user that may use them' }),
  },
  EPERM: {
    why: 'operation not permitted',
    make: (m, cause) => new AuthError(m, { code: 'PERMISSION_DENIED', cause, hint: 'check the permissions and attributes (immutable, append-only) of the file and its folder' }),
  },
  EEXIST: { why: 'it already exists', make: (m, cause) => new ConflictError(m, { code: 'FILE_EXISTS', cause }) },
  ENOSPC: { why: 'no space left on the device', make: (m, cause) => new IoError(m, { code: 'NO_SPACE', cause, hint: 'free some space, or write somewhere with room' }) },
  EDQUOT: { why: 'disk quota exceeded', make: (m, cause) => new IoError(m, { code: 'NO_SPACE', cause, hint: 'free some space, or write somewhere with room' }) },
  EROFS: { why: 'read-only file system', make: (m, cause) => new IoError(m, { code: 'READ_ONLY_FILE_SYSTEM', cause, hint: 'write to a writable location' }) },
  EFBIG: { why: 'file too large for the file system', make: (m, cause) => new IoError(m, { code: 'FILE_TOO_LARGE', cause }) },
  EIO: { why: 'input/output error: the disk or its connection failed', make: (m, cause) => new IoError(m, { code: 'IO_ERROR', cause }) },
  EMFILE: { why: 'too many open files', make: (m, cause) => new IoError(m, { code: 'TOO_MANY_OPEN_FILES', cause, hint: 'raise the open-file limit (ulimit -n)' }) },
  ENFILE: { why: 'too many open files in the system', make: (m, cause) => new IoError(m, { code: 'TOO_MANY_OPEN_FILES', cause }) },
};

/** The errno code of a Node file-system error, when it is one this module explains. */
export function fileErrnoOf(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && Object.hasOwn(KINDS, code) ? code : undefined;
}

/**
 * `e` as a typed error naming `path` ("cannot write /mnt/ro/b.tar: read-only file system") when it
 * is an ordinary file-system failure; anything else (airlock's own errors, bugs such as EBADF) is
 * returned unchanged. `action` is a verb phrase: "write", "read", "create the folder".
 */
export function fileError(e: unknown, path: string, action: string): unknown {
  if (e instanceof AirlockError) return e;
  const errno = fileErrnoOf(e);
  if (errno === undefined) return e;
  const kind = KINDS[errno]!;
  return kind.make(`cannot ${action} ${path}: ${kind.why}`, e);
}

/**
 * `fileError(e, path, 'write')`, and a failure it put in words is the destination's: a copy that
 * writes through a file (a download filling a bundle) must not blame its source for a full disk.
 */
export function writeError(e: unknown, path: string): unknown {
  const err = fileError(e, path, 'write');
  if (err !== e && err instanceof AirlockError) err.side = 'destination';
  return err;
}

/** What a failed syscall was doing, for an errno error that reached the CLI without a context. */
const ACTIONS: Record<string, string> = {
  open: 'open',
  read: 'read',
  write: 'write',
  writev: 'write',
  fsync: 'write',
  fdatasync: 'write',
  ftruncate: 'write',
  close: 'write',
  mkdir: 'create the folder',
  mkdtemp: 'create a folder in',
  rename: 'replace',
  link: 'create',
  symlink: 'create',
  copyfile: 'copy to',
  unlink: 'remove',
  rmdir: 'remove',
  rm: 'remove',
  scandir: 'list',
  opendir: 'list',
  stat: 'inspect',
  lstat: 'inspect',
  fstat: 'inspect',
  access: 'access',
  chmod: 'change the mode of',
  utime: 'set the time of',
};

/** Failures of the device or file system itself, whichever file they happened on. */
const DEVICE_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EFBIG', 'EIO']);

/**
 * A raw Node errno error as a typed error, undefined when `e` is not one. The destination of a
 * rename, link or copy is what the user named, so that one is reported. Without a path (a write to
 * an open file) only a failure of the device itself is explained; anything else may be a bug.
 */
export function fileErrorFromErrno(e: unknown): AirlockError | undefined {
  if (e instanceof AirlockError) return undefined;
  const errno = fileErrnoOf(e);
  if (errno === undefined) return undefined;
  const x = e as NodeJS.ErrnoException & { dest?: unknown };
  const path = typeof x.dest === 'string' ? x.dest : x.path;
  if (typeof path !== 'string') {
    if (!DEVICE_ERRNOS.has(errno)) return undefined;
    const why = KINDS[errno]!.why;
    return KINDS[errno]!.make(`cannot write a file: ${why}`, e);
  }
  // mkdir -p meets a file where a folder should be.
  if (x.syscall === 'mkdir' && errno === 'EEXIST') return new UsageError(`cannot create the folder ${path}: a file of that name is in the way`, { code: 'PATH_NOT_A_DIRECTORY', cause: e });
  const action = (x.syscall !== undefined ? ACTIONS[x.syscall] : undefined) ?? 'use';
  return fileError(e, path, action) as AirlockError;
}
