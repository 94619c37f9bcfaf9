// The one atomic writer: a target holds its old bytes or its new ones, never a part, and no temp
// file outlives a write, whatever happens on the way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError, ConflictError, UsageError } from '../../src/core/errors.ts';
import { checkTargets, commitAll, openAtomic, publishFile, withAtomicFile, writeAll, writeFileAtomic, writeFilesAtomic } from '../../src/util/atomic-file.ts';

let root: string;
let n = 0;
/** A fresh folder per test: its listing is the proof that no temp file stayed. */
async function folder(): Promise<string> {
  const d = join(root, `t${n++}`);
  await mkdir(d);
  return d;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'airlock-atomic-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  test('writes a new file and replaces an old one, leaving nothing else in the folder', async () => {
    const d = await folder();
    const p = join(d, 'airlock.lock');
    await writeFileAtomic(p, 'first\n');
    assert.equal(await readFile(p, 'utf8'), 'first\n');
    await writeFileAtomic(p, Buffer.from('second\n'));
    assert.equal(await readFile(p, 'utf8'), 'second\n');
    assert.deepEqual(await readdir(d), ['airlock.lock']);
  });

  test('a given mode is the new file\'s; a replaced file keeps the mode it had', async () => {
    const d = await folder();
    const key = join(d, 'site.key');
    await writeFileAtomic(key, 'secret', { mode: 0o600 });
    assert.equal((await stat(key)).mode & 0o777, 0o600);
    const spec = join(d, 'airlock.yaml');
    await writeFile(spec, 'old');
    await chmod(spec, 0o640);
    await writeFileAtomic(spec, 'new');
    assert.equal((await stat(spec)).mode & 0o777, 0o640);
    assert.equal(await readFile(spec, 'utf8'), 'new');
  });

  test('refuses a directory, a FIFO and a device node at the target, before writing anything', async () => {
    const d = await folder();
    await mkdir(join(d, 'out.tar'));
    await assert.rejects(writeFileAtomic(join(d, 'out.tar'), 'x'), (e: unknown) => e instanceof UsageError && e.code === 'PATH_IS_A_DIRECTORY' && e.message.includes(join(d, 'out.tar')));
    execFileSync('mkfifo', [join(d, 'pipe')]);
    await assert.rejects(writeFileAtomic(join(d, 'pipe'), 'x'), (e: unknown) => e instanceof UsageError && e.code === 'NOT_A_REGULAR_FILE' && /pipe: it is a FIFO/.test(e.message));
    // A link to a device is refused too: what it names is not a regular file.
    await symlink('/dev/null', join(d, 'null'));
    await assert.rejects(writeFileAtomic(join(d, 'null'), 'x'), (e: unknown) => e instanceof UsageError && e.code === 'NOT_A_REGULAR_FILE' && /a character device/.test(e.message));
    await assert.rejects(writeFileAtomic('/dev/null', 'x'), (e: unknown) => e instanceof UsageError && e.code === 'NOT_A_REGULAR_FILE');
    assert.ok((await stat('/dev/null')).isCharacterDevice());
    assert.deepEqual((await readdir('/dev')).filter((f) => f.startsWith('.null.')), []);
    assert.deepEqual((await readdir(d)).sort(), ['null', 'out.tar', 'pipe']);
  });

  test('a folder in the way of the path is named: a file where a directory should be', async () => {
    const d = await folder();
    await writeFile(join(d, 'F'), 'a file');
    await assert.rejects(writeFileAtomic(join(d, 'F', 'x.yaml'), 'x', { mkdir: true }), (e: unknown) => e instanceof UsageError && e.code === 'PATH_NOT_A_DIRECTORY' && e.message.includes(`${join(d, 'F')} is a file`));
    await assert.rejects(writeFileAtomic(join(d, 'F', 'x.yaml'), 'x'), (e: unknown) => e instanceof UsageError && e.code === 'PATH_NOT_A_DIRECTORY');
    assert.equal(await readFile(join(d, 'F'), 'utf8'), 'a file');
  });

  test('exclusive: an existing file is never replaced', async () => {
    const d = await folder();
    await writeFile(join(d, 'k'), 'mine');
    await assert.rejects(writeFileAtomic(join(d, 'k'), 'theirs', { exclusive: true }), (e: unknown) => e instanceof ConflictError && e.code === 'FILE_EXISTS');
    assert.equal(await readFile(join(d, 'k'), 'utf8'), 'mine');
    assert.deepEqual(await readdir(d), ['k']);
  });

  test('an abort before the commit leaves the old file and no temp file', async () => {
    const d = await folder();
    const p = join(d, 'b.tar');
    await writeFile(p, 'old');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(writeFileAtomic(p, 'new', { signal: ac.signal }), (e: unknown) => e instanceof AbortedError);
    const late = new AbortController();
    await assert.rejects(
      withAtomicFile(p, { signal: late.signal }, async (f) => {
        await writeAll(f.handle, Buffer.from('new but never seen'), 0);
        late.abort();
      }),
      (e: unknown) => e instanceof AbortedError,
    );
    assert.equal(await readFile(p, 'utf8'), 'old');
    assert.deepEqual(await readdir(d), ['b.tar']);
  });
});

describe('openAtomic: the handle API', () => {
  test('positioned writes appear at the target only on commit', async () => {
    const d = await folder();
    const p = join(d, 'vol.001');
    const file = await openAtomic(p);
    await file.handle.truncate(8);
    await writeAll(file.handle, Buffer.from('5678'), 4);
    await writeAll(file.handle, Buffer.from('1234'), 0);
    await assert.rejects(stat(p), { code: 'ENOENT' });
    await file.commit();
    assert.equal(await readFile(p, 'utf8'), '12345678');
    assert.deepEqual(await readdir(d), ['vol.001']);
  });

  test('discard removes the temp file and leaves the target as it was', async () => {
    const d = await folder();
    const p = join(d, 'b.tar');
    await writeFile(p, 'old');
    const file = await openAtomic(p);
    await writeAll(file.handle, Buffer.from('half'), 0);
    assert.equal((await readdir(d)).length, 2);
    await file.discard();
    await file.discard();
    assert.equal(await readFile(p, 'utf8'), 'old');
    assert.deepEqual(await readdir(d), ['b.tar']);
  });

  test('a failure in the middle of a write removes the temp file and passes the error on', async () => {
    const d = await folder();
    const p = join(d, 'export.tar');
    const boom = new Error('the source broke');
    await assert.rejects(
      withAtomicFile(p, {}, async (f) => {
        await writeAll(f.handle, Buffer.alloc(64 * 1024, 1), 0);
        throw boom;
      }),
      (e: unknown) => e === boom,
    );
    assert.deepEqual(await readdir(d), []);
  });

  test('the stream of a file writes in order and leaves the handle for the commit', async () => {
    const d = await folder();
    const p = join(d, 's');
    await withAtomicFile(p, {}, async (f) => {
      const w = f.createWriteStream();
      for (const part of ['a', 'bc', 'def']) w.write(Buffer.from(part));
      await new Promise<void>((resolve, reject) => w.end((e?: Error | null) => (e ? reject(e) : resolve())));
    });
    assert.equal(await readFile(p, 'utf8'), 'abcdef');
  });
});

describe('what a killed run left', () => {
  test("writing a file removes the temp files a gone process left for it; a live process's stay", async () => {
    const d = await folder();
    const gone = await new Promise<number>((resolve) => {
      const c = spawn('true');
      c.on('close', () => resolve(c.pid!));
    });
    await writeFile(join(d, `.out.yaml.${gone}.0123456789ab.tmp`), 'half');
    await writeFile(join(d, `.out.yaml.${process.pid}.0123456789ab.tmp`), 'mine');
    await writeFileAtomic(join(d, 'out.yaml'), 'whole\n');
    assert.deepEqual((await readdir(d)).sort(), [`.out.yaml.${process.pid}.0123456789ab.tmp`, 'out.yaml']);
  });
});

describe('several files together', () => {
  test('commitAll places every file, or none when one of them cannot be placed', async () => {
    const d = await folder();
    const a = await openAtomic(join(d, 'b.tar.001'));
    const b = await openAtomic(join(d, 'b.tar.par01'));
    await writeAll(a.handle, Buffer.from('data'), 0);
    await writeAll(b.handle, Buffer.from('parity'), 0);
    // The second target turns into a directory before the commit: nothing is placed.
    await mkdir(join(d, 'b.tar.par01'));
    await assert.rejects(commitAll([a, b]), (e: unknown) => e instanceof UsageError && e.code === 'PATH_IS_A_DIRECTORY' && e.message.includes('b.tar.par01'));
    assert.deepEqual((await readdir(d)).sort(), ['b.tar.par01']);

    const c = await openAtomic(join(d, 'b.tar.001'));
    const e = await openAtomic(join(d, 'b.tar.002'));
    await writeAll(c.handle, Buffer.from('one'), 0);
    await writeAll(e.handle, Buffer.from('two'), 0);
    await commitAll([c, e]);
    assert.deepEqual((await readdir(d)).sort(), ['b.tar.001', 'b.tar.002', 'b.tar.par01']);
    assert.equal(await readFile(join(d, 'b.tar.002'), 'utf8'), 'two');
  });

  test('writeFilesAtomic, exclusive: when one name is taken, neither file is written', async () => {
    const d = await folder();
    await writeFile(join(d, 'site.pub'), 'someone else\'s');
    await assert.rejects(
      writeFilesAtomic([{ path: join(d, 'site.key'), data: 'k', mode: 0o600 }, { path: join(d, 'site.pub'), data: 'p' }], { exclusive: true }),
      (e: unknown) => e instanceof ConflictError && e.code === 'FILE_EXISTS' && e.message.includes('site.pub'),
    );
    assert.deepEqual(await readdir(d), ['site.pub']);
  });

  test('checkTargets refuses a bad path before anything is written', async () => {
    const d = await folder();
    await mkdir(join(d, 'b.tar.002'));
    await assert.rejects(checkTargets([join(d, 'b.tar.001'), join(d, 'b.tar.002')]), (e: unknown) => e instanceof UsageError && e.message.includes('b.tar.002'));
    await checkTargets([join(d, 'new', 'b.tar')], { mkdir: true });
    assert.ok((await stat(join(d, 'new'))).isDirectory());
  });
});

describe('publishFile', () => {
  test('moves a finished temp file into place, and refuses a directory in the way', async () => {
    const d = await folder();
    await writeFile(join(d, 'abc.partial'), 'blob');
    await publishFile(join(d, 'abc.partial'), join(d, 'abc'));
    assert.deepEqual(await readdir(d), ['abc']);
    await writeFile(join(d, 'def.partial'), 'blob');
    await mkdir(join(d, 'def'));
    await assert.rejects(publishFile(join(d, 'def.partial'), join(d, 'def'), { sync: false }), (e: unknown) => e instanceof UsageError && e.code === 'PATH_IS_A_DIRECTORY');
    // The temp file is its owner's to keep or remove.
    assert.equal(await readFile(join(d, 'def.partial'), 'utf8'), 'blob');
  });
});
