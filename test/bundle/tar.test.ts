import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, symlink, writeFile, link } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { IntegrityError } from '../../src/core/errors.ts';
import { openBundle } from '../../src/bundle/index.ts';
import { encodedEntrySize, encodeHeader, END_OF_ARCHIVE, paddingFor, scanTar, type TarHeaderInput } from '../../src/bundle/tar.ts';

const exec = promisify(execFile);

/** A tar written by airlock's encoder: entries with the given contents, then the end marker. */
function buildTar(entries: { header: TarHeaderInput; content?: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(encodeHeader(e.header));
    if (e.header.type === 'file') {
      parts.push(e.content ?? Buffer.alloc(e.header.size, 0x61));
      parts.push(Buffer.alloc(paddingFor(e.header.size)));
    }
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

async function scanFile(path: string) {
  const fh = await open(path, 'r');
  try {
    return await scanTar(fh, (await fh.stat()).size, path);
  } finally {
    await fh.close();
  }
}

describe('tar', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-tar-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('GNU tar reads what airlock writes: names (PAX for long ones), sizes, modes, owners, mtime 0', async () => {
    const long = `blobs/sha512/${'ab'.repeat(64)}`;
    const tar = buildTar([
      { header: { name: 'a.json', type: 'file', size: 3 }, content: Buffer.from('{}\n') },
      { header: { name: 'blobs/', type: 'dir', size: 0 } },
      { header: { name: long, type: 'file', size: 1000 } },
      { header: { name: 'z/empty', type: 'file', size: 0 } },
    ]);
    const path = join(dir, 'gnu.tar');
    await writeFile(path, tar);
    const { stdout } = await exec('tar', ['--numeric-owner', '-tvf', path]);
    const lines = stdout.trim().split('\n').map((l) => l.split(/\s+/));
    assert.deepEqual(
      lines.map((l) => [l[0], l[1], l[2], l[3], l[5]]),
      [
        ['-rw-r--r--', '0/0', '3', '1970-01-01', 'a.json'],
        ['drwxr-xr-x', '0/0', '0', '1970-01-01', 'blobs/'],
        ['-rw-r--r--', '0/0', '1000', '1970-01-01', long],
        ['-rw-r--r--', '0/0', '0', '1970-01-01', 'z/empty'],
      ],
    );
    const scanned = await scanFile(path);
    assert.deepEqual(
      scanned.entries.map((e) => [e.name, e.type, e.size]),
      [
        ['a.json', 'file', 3],
        ['blobs', 'dir', 0],
        [long, 'file', 1000],
        ['z/empty', 'file', 0],
      ],
    );
    assert.equal(tar.subarray(scanned.entries[0]!.offset, scanned.entries[0]!.offset + 3).toString(), '{}\n');
  });

  test('sizes of 8 GiB and more go into a PAX record that GNU tar understands', async () => {
    const size = 8 * 1024 ** 3 + 5;
    const header = encodeHeader({ name: 'big', type: 'file', size });
    const path = join(dir, 'big.tar');
    // A sparse file: the 8 GiB of content cost nothing on disk.
    const fh = await open(path, 'w');
    try {
      await fh.write(header, 0, header.length, 0);
      await fh.write(END_OF_ARCHIVE, 0, END_OF_ARCHIVE.length, header.length + size + paddingFor(size));
    } finally {
      await fh.close();
    }
    const { stdout } = await exec('tar', ['--numeric-owner', '-tvf', path]);
    assert.equal(stdout.trim().split(/\s+/)[2], String(size));
    const scanned = await scanFile(path);
    assert.deepEqual(scanned.entries.map((e) => [e.name, e.size, e.offset]), [['big', size, header.length]]);
  });

  test('property: any safe names and sizes round-trip through encode and scan, and the size formula holds', async () => {
    const segment = fc.stringMatching(/^[a-zA-Z0-9._-]{1,60}$/).filter((s) => s !== '.' && s !== '..');
    const entry = fc.record({ parts: fc.array(segment, { minLength: 1, maxLength: 4 }), size: fc.integer({ min: 0, max: 2000 }), dir: fc.boolean() });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(entry, { maxLength: 6, selector: (e) => e.parts.join('/') }), async (list) => {
        const entries = list.map((e) => ({ header: { name: e.parts.join('/'), type: e.dir ? 'dir' : 'file', size: e.dir ? 0 : e.size } as TarHeaderInput }));
        const tar = buildTar(entries);
        assert.equal(tar.length, entries.reduce((a, e) => a + encodedEntrySize(e.header), 0) + END_OF_ARCHIVE.length);
        const path = join(dir, `prop-${n++}.tar`);
        await writeFile(path, tar);
        const scanned = await scanFile(path);
        assert.deepEqual(
          scanned.entries.map((e) => [e.name, e.type, e.size]),
          entries.map((e) => [e.header.name, e.header.type, e.header.size]),
        );
        await rm(path);
      }),
      { numRuns: 60 },
    );
  });

  describe('openBundle rejects archives made by GNU tar that hold unsafe entries', () => {
    const make = async (name: string, args: string[], cwd: string): Promise<string> => {
      const path = join(dir, name);
      await exec('tar', ['-cf', path, ...args], { cwd });
      return path;
    };
    // Through openBundle, the entry point every command uses: the tar is refused before any
    // question of whether it is a bundle.
    const rejects = async (path: string, pattern: RegExp): Promise<void> => {
      await assert.rejects(openBundle(path), (e: unknown) => {
        assert.ok(e instanceof IntegrityError, `expected IntegrityError, got ${String(e)}`);
        assert.match(e.message, pattern);
        return true;
      });
    };
    let src: string;
    before(async () => {
      src = join(dir, 'src', 'inner');
      await mkdir(src, { recursive: true });
      await writeFile(join(src, 'file'), 'x');
      await writeFile(join(src, 'plain'), 'p');
      await writeFile(join(dir, 'src', 'outside'), 'o');
      await symlink('/etc/passwd', join(src, 'sym'));
      await link(join(src, 'file'), join(src, 'hard'));
    });

    test('"../x"', async () => rejects(await make('dotdot.tar', ['-P', '../outside'], src), /entry "\.\.\/outside" escapes the archive/));
    test('an absolute path', async () => rejects(await make('abs.tar', ['-P', join(src, 'file')], src), /has an absolute path/));
    test('a symlink', async () => rejects(await make('sym.tar', ['sym'], src), /entry "sym" is a symbolic link/));
    test('a hard link', async () => rejects(await make('hard.tar', ['file', 'hard'], src), /entry "hard" is a hard link/));
    test('a duplicate name', async () => {
      const path = await make('dup.tar', ['plain'], src);
      await exec('tar', ['-rf', path, 'plain'], { cwd: src }); // appended again as a regular file
      await rejects(path, /entry "plain" appears more than once/);
    });
    test('a sparse file (GNU.sparse PAX keys)', async () => {
      const sparse = join(src, 'sparse');
      const fh = await open(sparse, 'w');
      await fh.write(Buffer.from('end'), 0, 3, 10 * 1024 * 1024);
      await fh.close();
      await rejects(await make('sparse.tar', ['--format=pax', '--sparse', 'sparse'], src), /GNU\.sparse|unsupported tar entry type/);
      await rm(sparse);
    });
    test('a FIFO', async () => {
      await exec('mkfifo', [join(src, 'fifo')]);
      await rejects(await make('fifo.tar', ['fifo'], src), /entry "fifo" is a FIFO/);
      await rm(join(src, 'fifo'));
    });
  });

  test('rejects a file that is not a tar, a bad header checksum and content past the end of the file', async () => {
    const notTar = join(dir, 'not.tar');
    await writeFile(notTar, JSON.stringify({ hello: 'world' }).repeat(40));
    await assert.rejects(scanFile(notTar), (e: unknown) => e instanceof IntegrityError && /is not a tar archive/.test(e.message));
    await writeFile(notTar, '');
    await assert.rejects(scanFile(notTar), (e: unknown) => e instanceof IntegrityError && /is not a tar archive: the file is empty/.test(e.message));

    const good = buildTar([
      { header: { name: 'one', type: 'file', size: 600 } },
      { header: { name: 'two', type: 'file', size: 10 } },
    ]);
    const bad = Buffer.from(good);
    bad[1536]! ^= 0x01; // inside the name of the second header
    await writeFile(notTar, bad);
    await assert.rejects(scanFile(notTar), (e: unknown) => e instanceof IntegrityError && e.code === 'TAR_CHECKSUM' && /offset 1536 \(after entry "one"\)/.test(e.message));

    await writeFile(notTar, good.subarray(0, 1000));
    await assert.rejects(scanFile(notTar), (e: unknown) => e instanceof IntegrityError && e.code === 'TAR_TRUNCATED' && /entry "one"/.test(e.message));
    await writeFile(notTar, good.subarray(0, good.length - END_OF_ARCHIVE.length));
    await assert.rejects(scanFile(notTar), (e: unknown) => e instanceof IntegrityError && /without an end-of-archive marker/.test(e.message));
  });
});
