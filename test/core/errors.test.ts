// The error-code table: every code has one exit code, the exit codes are the README's, and the
// error classes accept only the codes of their exit (checked by tsc: see the @ts-expect-error lines).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  AbortedError,
  AirlockError,
  AuthError,
  ConflictError,
  ERROR_CODES,
  ExitCode,
  IntegrityError,
  IoError,
  NetworkError,
  NotFoundError,
  RegistryError,
  UsageError,
} from '../../src/core/errors.ts';
import { fileError, fileErrorFromErrno } from '../../src/util/file-error.ts';

const errno = (code: string, extra: Record<string, unknown> = {}): NodeJS.ErrnoException => Object.assign(new Error(`${code}: from the kernel`), { code, ...extra });

describe('ERROR_CODES', () => {
  test('every code exits with a code of ExitCode, and no exit number means two things', () => {
    for (const [code, exit] of Object.entries(ERROR_CODES)) {
      assert.ok(Object.hasOwn(ExitCode, exit), `${code}: exit "${exit}" is not in ExitCode`);
      assert.match(code, /^[A-Z][A-Z0-9_]*$/, code);
    }
    const numbers = Object.values(ExitCode);
    assert.equal(new Set(numbers).size, numbers.length);
  });

  test('each code is listed once in the source table', async () => {
    // An object literal keeps the last of two equal keys silently at run time; the text shows both.
    const text = await readFile(new URL('../../src/core/errors.ts', import.meta.url), 'utf8');
    const table = text.slice(text.indexOf('export const ERROR_CODES = {'), text.indexOf('} as const satisfies'));
    const keys = [...table.matchAll(/^\s+([A-Z][A-Z0-9_]*): '/gm)].map((m) => m[1]!);
    assert.equal(keys.length, Object.keys(ERROR_CODES).length);
    assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), []);
  });

  test('the README documents every exit code', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### Exit codes'));
    const rows = new Set([...section.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1])));
    assert.deepEqual([...rows].sort((a, b) => a - b), Object.values(ExitCode).sort((a, b) => a - b));
  });

  test('the classes accept only the codes of their exit', () => {
    // @ts-expect-error DIGEST_MISMATCH is an integrity code, not a usage one
    void (() => new UsageError('x', { code: 'DIGEST_MISMATCH' }));
    // @ts-expect-error LOCK_STALE is a usage code
    void (() => new NotFoundError('x', { code: 'LOCK_STALE' }));
    // @ts-expect-error a code the table does not have
    void (() => new IntegrityError('x', { code: 'SOMETHING_NEW' }));
    // @ts-expect-error the exit written beside a code must be its own
    void (() => new AirlockError('INTERNAL', 'usage', 'x'));
    assert.ok(true);
  });
});

describe('errors exit as documented', () => {
  test('each class with its default and a named code', () => {
    const cases: [AirlockError, string, number][] = [
      [new UsageError('bad flag'), 'USAGE', 2],
      [new UsageError('stale', { code: 'LOCK_STALE' }), 'LOCK_STALE', 2],
      [new NotFoundError('no spec', { code: 'SPEC_NOT_FOUND' }), 'SPEC_NOT_FOUND', 3],
      [new AuthError('no'), 'UNAUTHORIZED', 4],
      [new IntegrityError('flip', { code: 'DIGEST_MISMATCH' }), 'DIGEST_MISMATCH', 5],
      [new NetworkError('down', { code: 'CONNECTION_REFUSED' }), 'CONNECTION_REFUSED', 6],
      [new ConflictError('both', { code: 'TARGET_CONFLICT' }), 'TARGET_CONFLICT', 8],
      [new IoError('full', { code: 'NO_SPACE' }), 'NO_SPACE', 9],
      [new AbortedError(), 'ABORTED', 130],
      [new AirlockError('INTERNAL', 'internal', 'bug'), 'INTERNAL', 1],
    ];
    for (const [e, code, exit] of cases) {
      assert.equal(e.code, code);
      assert.equal(e.exitCode, exit, code);
      assert.equal(ExitCode[ERROR_CODES[e.code]], exit, code);
    }
  });

  test('a registry error: airlock\'s code follows the status, the registry\'s own word is kept apart', () => {
    const at = (status: number, code?: string): RegistryError => new RegistryError('x', { status, url: 'https://r.example', ...(code ? { errors: [{ code }] } : {}) });
    const expected: [number, string | undefined, string, number, string][] = [
      [401, 'UNAUTHORIZED', 'REGISTRY_UNAUTHORIZED', 4, 'UNAUTHORIZED'],
      [403, 'DENIED', 'REGISTRY_DENIED', 4, 'DENIED'],
      [404, 'MANIFEST_UNKNOWN', 'REGISTRY_NOT_FOUND', 3, 'MANIFEST_UNKNOWN'],
      [409, undefined, 'REGISTRY_CONFLICT', 8, 'HTTP_409'],
      // MANIFEST_INVALID is also airlock's own code (exit 5): the registry's stays in registryCode.
      [400, 'MANIFEST_INVALID', 'REGISTRY_REFUSED', 2, 'MANIFEST_INVALID'],
      [429, 'TOOMANYREQUESTS', 'REGISTRY_UNAVAILABLE', 6, 'TOOMANYREQUESTS'],
      [503, undefined, 'REGISTRY_UNAVAILABLE', 6, 'HTTP_503'],
      [202, undefined, 'REGISTRY_ANSWER_UNEXPECTED', 1, 'HTTP_202'],
    ];
    for (const [status, oci, code, exit, registryCode] of expected) {
      const e = at(status, oci);
      assert.deepEqual([e.code, e.exitCode, e.registryCode], [code, exit, registryCode], `status ${status}`);
    }
  });
});

describe('file-system failures are user errors', () => {
  test('each errno becomes a typed error naming the path, with the exit of its kind', () => {
    const cases: [string, string, number, RegExp][] = [
      ['ENOENT', 'FILE_NOT_FOUND', 3, /cannot read \/in\/x: no such file or directory/],
      ['ENOTDIR', 'PATH_NOT_A_DIRECTORY', 2, /not a directory/],
      ['EISDIR', 'PATH_IS_A_DIRECTORY', 2, /it is a directory/],
      ['EACCES', 'PERMISSION_DENIED', 4, /permission denied/],
      ['EPERM', 'PERMISSION_DENIED', 4, /not permitted/],
      ['EEXIST', 'FILE_EXISTS', 8, /already exists/],
      ['ENOSPC', 'NO_SPACE', 9, /no space left on the device/],
      ['EDQUOT', 'NO_SPACE', 9, /quota/],
      ['EROFS', 'READ_ONLY_FILE_SYSTEM', 9, /read-only file system/],
      ['EFBIG', 'FILE_TOO_LARGE', 9, /too large/],
      ['EIO', 'IO_ERROR', 9, /input\/output error/],
    ];
    for (const [code, ours, exit, message] of cases) {
      const e = fileError(errno(code), '/in/x', 'read');
      assert.ok(e instanceof AirlockError, code);
      assert.deepEqual([e.code, e.exitCode], [ours, exit], code);
      assert.match(e.message, /^cannot read \/in\/x: /);
      assert.match(e.message, message);
    }
  });

  test('what is not a file-system failure passes unchanged', () => {
    const own = new IntegrityError('flip');
    assert.equal(fileError(own, '/x', 'write'), own);
    const bug = errno('EBADF');
    assert.equal(fileError(bug, '/x', 'write'), bug);
    const plain = new TypeError('x is undefined');
    assert.equal(fileError(plain, '/x', 'write'), plain);
  });

  test('the CLI safety net: a raw errno error names what the user named', () => {
    const rename = fileErrorFromErrno(errno('EROFS', { syscall: 'rename', path: '/ro/.b.tar.1.tmp', dest: '/ro/b.tar' }));
    assert.equal(rename?.exitCode, 9);
    assert.equal(rename?.message, 'cannot replace /ro/b.tar: read-only file system');
    const mkdirInTheWay = fileErrorFromErrno(errno('EEXIST', { syscall: 'mkdir', path: '/home/u/F' }));
    assert.deepEqual([mkdirInTheWay?.code, mkdirInTheWay?.exitCode], ['PATH_NOT_A_DIRECTORY', 2]);
    // A full disk under an open file has no path, and still is no bug.
    assert.equal(fileErrorFromErrno(errno('ENOSPC', { syscall: 'write' }))?.exitCode, 9);
    // Other path-less failures may be bugs: left to the internal-error report.
    assert.equal(fileErrorFromErrno(errno('ENOENT', { syscall: 'open' })), undefined);
    assert.equal(fileErrorFromErrno(errno('EBADF', { syscall: 'write', path: '/x' })), undefined);
  });
});
