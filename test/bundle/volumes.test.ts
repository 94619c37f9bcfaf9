// Volumes and recovery volumes through the library: the split is deterministic and read in place,
// every kind of loss or mix-up is named by file, and repair rebuilds byte for byte.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { FileStore } from '../../src/content/file-store.ts';
import { IntegrityError, NotFoundError } from '../../src/core/errors.ts';
import { readAllLimited } from '../../src/content/verify-stream.ts';
import { inspectBundle, openBundle, repairBundle, verifyBundle, writeBundle, type WriteBundleOptions } from '../../src/bundle/index.ts';
import { parseSize } from '../../src/bundle/volumes.ts';
import { openBundleSet } from '../../src/serve/bundle-set.ts';
import { blobBytes, blobStream, buildImage, layersOf, type BuiltImage } from '../helpers/images.ts';

const KiB = 1024;
const S = 64 * KiB;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const hashFile = async (p: string): Promise<string> => sha(await readFile(p));

describe('volumes and recovery volumes', () => {
  let dir: string;
  let store: FileStore;
  let images: Record<string, BuiltImage>;
  let base: string;
  let originals: Map<string, string>;
  const opts = (out: string, more: Partial<WriteBundleOptions> = {}): WriteBundleOptions => ({
    out,
    images: Object.entries(images).map(([reference, img]) => ({ reference, root: img.root })),
    source: store,
    lockText: 'lock\n',
    name: 'vol',
    version: '1',
    toolVersion: '0.0.0-test',
    split: { size: S, parity: 3 },
    ...more,
  });
  /** A fresh copy of the pristine set in its own directory. */
  const fresh = async (name: string): Promise<string> => {
    const d = join(dir, name);
    await mkdir(d);
    for (const f of originals.keys()) await copyFile(f, join(d, basename(f)));
    return join(d, 'b.tar');
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-volumes-'));
    store = new FileStore(join(dir, 'cache'));
    const os = buildImage({ layers: [{ random: { bytes: 300 * KiB, seed: 11 } }] });
    images = {
      'docker.io/library/os:1': os,
      'example.com/app:2': buildImage({ baseLayers: layersOf(os), layers: [{ random: { bytes: 250 * KiB, seed: 12 } }, { files: { 'etc/app': 'v2\n' } }] }),
      'example.com/tool:3': buildImage({ layers: [{ random: { bytes: 150 * KiB, seed: 13 } }] }),
    };
    for (const img of Object.values(images)) for (const b of img.blobs) await store.push(b.descriptor, blobStream(b));
    await mkdir(join(dir, 'set'));
    base = join(dir, 'set', 'b.tar');
    const r = await writeBundle(opts(base));
    originals = new Map(await Promise.all(r.files.map(async (f) => [f, await hashFile(f)] as const)));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('every volume is within the size (all but the last exactly), recovery volumes beside them, nothing else', async () => {
    const names = (await readdir(join(dir, 'set'))).sort();
    const data = names.filter((n) => /\.\d{3}$/.test(n));
    assert.ok(data.length >= 8, `${data.length} volumes`);
    assert.deepEqual(names.filter((n) => n.includes('.par')), ['b.tar.par01', 'b.tar.par02', 'b.tar.par03']);
    assert.equal(names.length, data.length + 3, names.join(' '));
    for (const [i, n] of data.entries()) {
      const { size } = await stat(join(dir, 'set', n));
      if (i < data.length - 1) assert.equal(size, S, n);
      else assert.ok(size > 0 && size <= S, `${n}: ${size}`);
    }
  });

  test('the same inputs give the same volumes and recovery volumes, byte for byte', async () => {
    await mkdir(join(dir, 'again'));
    const r = await writeBundle(opts(join(dir, 'again', 'b.tar'), { images: opts('').images.reverse() }));
    assert.deepEqual(await Promise.all(r.files.map(hashFile)), [...originals.values()]);
  });

  test('read in place: inspect reads the first volume, openBundle serves every blob across volume boundaries', async () => {
    for (const spec of [base, `${base}.001`, [...originals.keys()]]) {
      const info = await inspectBundle(spec);
      assert.deepEqual(info.images.map((i) => i.reference).sort(), Object.keys(images).sort());
      assert.equal(info.volumes?.count, [...originals.keys()].filter((f) => /\.\d{3}$/.test(f)).length);
    }
    const b = await openBundle(base);
    try {
      assert.equal(b.path, base);
      for (const img of Object.values(images)) {
        for (const blob of img.blobs) assert.deepEqual(await readAllLimited(await b.fetch(blob.descriptor), 4 * 1024 * 1024, 't'), blobBytes(blob));
      }
    } finally {
      await b.close();
    }
  });

  test('verify of the intact set: OK on its volumes, with every volume checked', async () => {
    for (const threads of [0, 2]) {
      const r = await verifyBundle([...originals.keys()], { threads });
      assert.equal(r.ok, true, JSON.stringify(r.problems));
      assert.ok(r.volumes);
      assert.ok(r.volumes.files.every((f) => f.state === 'ok'));
      assert.equal(r.volumes.usableParity.length, 3);
    }
  });

  test('cat of the data volumes is a whole bundle that verifies; with the recovery volumes appended too', async () => {
    const data = [...originals.keys()].filter((f) => /\.\d{3}$/.test(f));
    const joined = join(dir, 'joined.tar');
    await writeFile(joined, Buffer.concat(await Promise.all(data.map((f) => readFile(f)))));
    assert.deepEqual((await verifyBundle(joined)).problems, []);
    const all = join(dir, 'joined-all.tar');
    await writeFile(all, Buffer.concat(await Promise.all([...originals.keys()].sort().map((f) => readFile(f)))));
    assert.deepEqual((await verifyBundle(all)).problems, []);
  });

  test('a missing volume is named; openBundle refuses naming it; repair rebuilds it byte for byte', async () => {
    const b = await fresh('missing');
    await rm(`${b}.003`);
    const r = await verifyBundle(b);
    assert.equal(r.ok, false);
    assert.ok(r.problems.some((p) => /^b\.tar\.003 is missing$/.test(p.message)), JSON.stringify(r.problems));
    assert.ok(r.problems.some((p) => /1 volume lost \(b\.tar\.003\); 3 usable recovery volumes: enough/.test(p.message)));
    assert.equal(r.volumes?.repairable, true);
    await assert.rejects(openBundle(b), (e: unknown) => e instanceof IntegrityError && /b\.tar\.003 is missing/.test(e.message));
    const fixed = await repairBundle(b);
    assert.deepEqual(fixed.restored, [`${b}.003`]);
    assert.equal(await hashFile(`${b}.003`), originals.get(`${base}.003`));
    assert.equal((await verifyBundle(b)).ok, true);
  });

  test('three volumes lost, the first and the last among them: three recovery volumes rebuild them all', async () => {
    const b = await fresh('three');
    const last = [...originals.keys()].filter((f) => /\.\d{3}$/.test(f)).length;
    const lastName = `${b}.${String(last).padStart(3, '0')}`;
    await rm(`${b}.001`);
    await rm(lastName);
    await truncate(`${b}.005`, 1000);
    const r = await verifyBundle(b);
    assert.ok(r.problems.some((p) => /b\.tar\.005 is truncated: 1000 of 65536 bytes/.test(p.message)), JSON.stringify(r.problems));
    assert.equal(r.volumes?.repairable, true);
    const fixed = await repairBundle(b);
    assert.equal(fixed.restored.length, 3);
    for (const f of [`${b}.001`, `${b}.005`, lastName]) assert.equal(await hashFile(f), originals.get(join(dir, 'set', basename(f))), f);
    assert.equal((await verifyBundle(b)).ok, true);
  });

  test('more losses than recovery volumes: verify says so, repair refuses and writes nothing', async () => {
    const b = await fresh('toomany');
    for (const n of ['002', '003', '004', '006']) await rm(`${b}.${n}`);
    const r = await verifyBundle(b);
    assert.equal(r.volumes?.repairable, false);
    assert.ok(r.problems.some((p) => /4 volumes lost .*3 usable recovery volumes: not enough to rebuild 4/.test(p.message)), JSON.stringify(r.problems));
    await assert.rejects(repairBundle(b), (e: unknown) => e instanceof IntegrityError && /4 volumes lost, 3 usable/.test(e.message));
    assert.deepEqual((await readdir(join(dir, 'toomany'))).filter((n) => n.includes('.tmp')), []);
  });

  test('a damaged volume is named (and its blobs, by volume); repair restores it', async () => {
    const b = await fresh('damaged');
    const fh = await open(`${b}.004`, 'r+');
    await fh.write(Buffer.from([0x42]), 0, 1, 5000);
    await fh.close();
    const r = await verifyBundle(b);
    assert.ok(r.problems.some((p) => /^b\.tar\.004 is damaged/.test(p.message)), JSON.stringify(r.problems));
    const blob = r.problems.find((p) => p.digest !== undefined);
    assert.ok(blob?.volume?.includes("b.tar.004"), `the bad blob is located in its volume: ${JSON.stringify(r.problems)}`);
    await repairBundle(b);
    assert.equal(await hashFile(`${b}.004`), originals.get(`${base}.004`));
  });

  test('a renamed volume and two swapped ones are recognised by their bytes', async () => {
    const b = await fresh('renamed');
    await rename(`${b}.002`, `${b}.2`);
    await rename(`${b}.004`, `${b}.tmpx`);
    await rename(`${b}.005`, `${b}.004`);
    await rename(`${b}.tmpx`, `${b}.005`);
    const r = await verifyBundle([`${b}.001`, `${b}.2`]);
    const msgs = r.problems.map((p) => p.message);
    assert.ok(msgs.includes('b.tar.002 is missing'), msgs.join('\n'));
    assert.ok(msgs.some((m) => /^b\.tar\.2 is not a volume name of b\.tar: it holds the bytes of volume 2 \(b\.tar\.002\)/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => /^b\.tar\.004 is damaged: it holds the bytes of volume 5 \(b\.tar\.005\), renamed or swapped\?/.test(m)), msgs.join('\n'));
  });

  test('volumes and recovery volumes of another bundle are named as such', async () => {
    const other = join(dir, 'other');
    await mkdir(other);
    const o = await writeBundle(opts(join(other, 'b.tar'), { version: '2', images: opts('').images.slice(0, 2) }));
    const b = await fresh('mixed');
    await copyFile(join(other, 'b.tar.001'), `${b}.001`);
    await copyFile(join(other, 'b.tar.par02'), `${b}.par02`);
    const r = await verifyBundle(b);
    const msgs = r.problems.map((p) => p.message);
    assert.ok(msgs.some((m) => /^b\.tar\.001 belongs to another bundle: its inventory is sha256:/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => /^b\.tar\.par02 is a recovery volume of another bundle or another split/.test(m)), msgs.join('\n'));
    assert.equal(r.volumes?.usableParity.length, 2);
    // Other commands refuse the mixed set before using it.
    // (The foreign first volume brings another layout, so today the refusal names b.tar.009's size.)
    await assert.rejects(openBundle(b), { name: 'IntegrityError', code: /^VOLUMES_(MIXED|INCOMPLETE)$/, message: new RegExp(`^${b}: `) });
    // One foreign volume, two usable recovery volumes: repair puts back both.
    await repairBundle(b);
    for (const n of ['001', 'par02']) assert.equal(await hashFile(`${b}.${n}`), originals.get(`${base}.${n}`), n);
    assert.ok(o.files.length > 0);
  });

  test('a last volume from another split of the same bundle: openBundle names it before any use', async () => {
    const other = join(dir, 'other-split');
    await mkdir(other);
    // Same content, another number of recovery volumes: its table describes another split.
    const o = await writeBundle(opts(join(other, 'b.tar'), { split: { size: S, parity: 1 } }));
    const last = o.files.filter((f) => /\.\d{3}$/.test(f)).at(-1)!;
    const b = await fresh('othersplit');
    await copyFile(last, join(dir, 'othersplit', basename(last)));
    await assert.rejects(openBundle(b), (e: unknown) => e instanceof IntegrityError && new RegExp(`${basename(last).replace('.', '\\.')} belongs to another split of this bundle`).test(e.message));
  });

  test('a damaged recovery volume is named and written again', async () => {
    const b = await fresh('badparity');
    const fh = await open(`${b}.par01`, 'r+');
    const { size } = await fh.stat();
    await fh.write(Buffer.from([0x99]), 0, 1, size - 10);
    await fh.close();
    const r = await verifyBundle(b);
    assert.ok(r.problems.some((p) => /^b\.tar\.par01 is damaged: its recovery data does not match/.test(p.message)), JSON.stringify(r.problems));
    const fixed = await repairBundle(b);
    assert.deepEqual(fixed.parityRestored, [`${b}.par01`]);
    assert.equal(await hashFile(`${b}.par01`), originals.get(`${base}.par01`));
  });

  test('serve reads the volumes as one bundle; a missing first volume is named', async () => {
    const set = await openBundleSet([...originals.keys()]);
    try {
      assert.equal(set.bundles.length, 1);
      assert.equal(set.images.length, 3);
    } finally {
      await set.close();
    }
    const b = await fresh('nofirst');
    await rm(`${b}.001`);
    await assert.rejects(openBundle(b), (e: unknown) => e instanceof NotFoundError && /b\.tar\.001 is missing: the first volume holds the bundle's metadata/.test(e.message));
  });

  test('sizes: units as split(1) reads them', () => {
    assert.equal(parseSize('4GiB'), 4 * 2 ** 30);
    assert.equal(parseSize('4G'), 4 * 2 ** 30);
    assert.equal(parseSize('700M'), 700 * 2 ** 20);
    assert.equal(parseSize('650MB'), 650e6);
    assert.equal(parseSize('64KiB'), 65536);
    assert.equal(parseSize('1.5K'), 1536);
    assert.equal(parseSize('100000'), 100000);
    assert.throws(() => parseSize('lots'), /not a size/);
  });
});
