// Tools carried in a bundle (writeBundle `tools`): listed in the inventory with sha256 and size, laid
// at the start of the tar as executables GNU tar extracts with mode 0755, the same bytes on every
// write; verify names a tool whose bytes, size, header or entry changed, inside one file or across
// volumes, and a signature covers them; a delta carries its own. A bundle without tools is, byte for
// byte, what airlock wrote before tools existed (format version 1).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FileStore } from '../../src/content/file-store.ts';
import { openBundle, verifyBundle, writeBundle, inspectBundle, loadDeltaBase, type WriteBundleOptions } from '../../src/bundle/index.ts';
import { generateKeys, loadSigningKey } from '../../src/sign/keys.ts';
import { blobStream, buildImage, buildIndex } from '../helpers/images.ts';
import { rewriteTar } from '../helpers/tamper.ts';

const exec = promisify(execFile);
const sha = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');
const AMD64 = 'airlock/tools/linux-amd64/airlock';
const ARM64 = 'airlock/tools/linux-arm64/airlock';

/** Flip one byte of a tar entry's content in place (`at` from its start). */
async function flipEntryByte(bundle: string, name: string, at: number): Promise<void> {
  const b = await openBundle(bundle);
  const e = b.entries.get(name);
  await b.close();
  if (!e) throw new Error(`${name} is not in ${bundle}`);
  const fh = await open(bundle, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, e.offset + at);
    byte[0]! ^= 0xff;
    await fh.write(byte, 0, 1, e.offset + at);
  } finally {
    await fh.close();
  }
}

describe('tools carried in a bundle', () => {
  let dir: string;
  let store: FileStore;
  let amd64: Buffer;
  let arm64: Buffer;
  let withTools: string;
  const a = buildImage({ layers: [{ random: { bytes: 100 * 1024, seed: 91 } }, { files: { 'etc/motd': 'golden\n' } }] });
  const b = buildIndex([
    buildImage({ layers: [{ files: { 'etc/arch': 'amd64\n' } }], platform: 'linux/amd64' }),
    buildImage({ layers: [{ files: { 'etc/arch': 'arm64\n' } }], platform: 'linux/arm64' }),
  ]);
  const opts = (out: string, more: Partial<WriteBundleOptions> = {}): WriteBundleOptions => ({
    out,
    images: [
      { reference: 'example.com/a:1', root: a.root },
      { reference: 'example.com/b:2', root: b.root },
    ],
    source: store,
    lockText: 'golden lock\n',
    name: 'golden',
    version: '1.0.0',
    toolVersion: '0.1.0',
    ...more,
  });
  const tools = (): WriteBundleOptions['tools'] => [
    { platform: 'linux/arm64', name: 'airlock', file: join(dir, 'stand-in-arm64') },
    { platform: 'linux/amd64', name: 'airlock', file: join(dir, 'stand-in-amd64') },
  ];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-tools-'));
    store = new FileStore(join(dir, 'cache'));
    for (const img of [a, b]) for (const x of img.blobs) await store.push(x.descriptor, blobStream(x));
    // Stand-ins: the format does not care what the bytes are. One spans several MiB and volumes.
    amd64 = Buffer.concat([Buffer.from('#!/bin/sh\necho "stand-in airlock for linux/amd64"\nexit 0\n'), createHash('sha512').update('amd64').digest().subarray(0, 48), Buffer.alloc(3 * 1024 * 1024 + 5, 0x61)]);
    arm64 = Buffer.from('#!/bin/sh\necho "stand-in airlock for linux/arm64"\n');
    await writeFile(join(dir, 'stand-in-amd64'), amd64, { mode: 0o755 });
    await writeFile(join(dir, 'stand-in-arm64'), arm64, { mode: 0o644 });
    withTools = join(dir, 'tools.tar');
    await writeBundle(opts(withTools, { tools: tools() }));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('without tools, a bundle is byte for byte what airlock wrote before tools existed', async () => {
    // The sha256 of these bundles as main wrote them before this change (one file; volumes and a recovery volume).
    await writeBundle(opts(join(dir, 'plain.tar')));
    assert.equal(await sha(join(dir, 'plain.tar')), '372fe77c56eceef2aa8e3dc744ffee7a340d2c5c13ba6b0eb9b643d9c72918d6');
    const split = await writeBundle(opts(join(dir, 'split.tar'), { split: { size: 64 * 1024, parity: 1 } }));
    assert.deepEqual(await Promise.all(split.files.map(sha)), [
      '6579551ffcfced7222167441d57e8e75d0d9cd8dfe67aa54d027e7c6d8f5279d',
      '93c49c8924f7b36334346b20ae1d50c0135a1a4796dcc0179bdb30c6fb59d319',
      'aae50f6e8629d58eb20299d46dcfd6aca847869db2989503d3d32e441f0aeb42',
    ]);
    const plain = await openBundle(join(dir, 'plain.tar'));
    assert.equal(plain.bundleInfo.formatVersion, 1);
    assert.equal(plain.inventory.tools, undefined);
    await plain.close();
  });

  test('tools are listed with sha256 and size, written at the start as 0755 files, the same bytes every time', async () => {
    const again = join(dir, 'again.tar');
    await writeBundle(opts(again, { tools: [...tools()!].reverse() }));
    assert.equal(await sha(again), await sha(withTools), 'the same tools in another order give the same bytes');
    const bundle = await openBundle(withTools);
    try {
      assert.equal(bundle.bundleInfo.formatVersion, 2);
      assert.deepEqual(bundle.inventory.tools, [
        { platform: 'linux/amd64', name: 'airlock', path: AMD64, digest: `sha256:${createHash('sha256').update(amd64).digest('hex')}`, size: amd64.length },
        { platform: 'linux/arm64', name: 'airlock', path: ARM64, digest: `sha256:${createHash('sha256').update(arm64).digest('hex')}`, size: arm64.length },
      ]);
      // With the metadata, before the OCI layout and every blob.
      const names = bundle.tarEntries.map((e) => e.name);
      assert.deepEqual(names.slice(0, 10), ['airlock', 'airlock/bundle.json', 'airlock/inventory.json', 'airlock/airlock.lock', 'airlock/tools', 'airlock/tools/linux-amd64', AMD64, 'airlock/tools/linux-arm64', ARM64, 'oci-layout']);
    } finally {
      await bundle.close();
    }
    const { stdout } = await exec('tar', ['-tvf', withTools, AMD64, ARM64]);
    assert.match(stdout, /^-rwxr-xr-x 0\/0 +\d+ 1970-01-01 00:00 airlock\/tools\/linux-amd64\/airlock$/m);
    assert.match(stdout, /^-rwxr-xr-x 0\/0 +\d+ 1970-01-01 00:00 airlock\/tools\/linux-arm64\/airlock$/m);
    // GNU tar takes one out by its name: the exact bytes, executable, and it runs.
    const x = join(dir, 'x');
    await mkdir(x);
    await exec('tar', ['-xf', withTools, '-C', x, ARM64]);
    assert.deepEqual(await readFile(join(x, ARM64)), arm64);
    assert.equal((await stat(join(x, ARM64))).mode & 0o111, 0o111);
    assert.equal((await exec(join(x, ARM64))).stdout, 'stand-in airlock for linux/arm64\n');
    await exec('tar', ['-xf', withTools, '-C', x, AMD64]);
    assert.deepEqual(await readFile(join(x, AMD64)), amd64);

    const report = await verifyBundle(withTools);
    assert.deepEqual(report.problems, []);
    assert.equal(report.tools, 2);
    assert.equal(report.blobs, (await verifyBundle(join(dir, 'plain.tar'))).blobs);
    const summary = await inspectBundle(withTools);
    assert.deepEqual(summary.tools.map((t) => [t.platform, t.name, t.size]), [['linux/amd64', 'airlock', amd64.length], ['linux/arm64', 'airlock', arm64.length]]);
  });

  test('verify names a tool whose bytes, size, header or entry changed', async () => {
    const flipped = join(dir, 'flipped.tar');
    await copyFile(withTools, flipped);
    await flipEntryByte(flipped, AMD64, 2 * 1024 * 1024);
    let r = await verifyBundle(flipped);
    assert.equal(r.ok, false);
    assert.deepEqual(r.problems.map((p) => p.entry), [AMD64]);
    assert.match(r.problems[0]!.message, /^digest mismatch: the content hashes to sha256:[0-9a-f]{64}, the inventory says sha256:/);

    // Re-encoded with plain file headers: the mode 0755 airlock writes is gone.
    const plainHeaders = join(dir, 'plain-headers.tar');
    await rewriteTar(withTools, plainHeaders, () => true);
    r = await verifyBundle(plainHeaders);
    assert.deepEqual(r.problems.map((p) => `${p.entry}: ${p.message}`), [AMD64, ARM64].map((e) => `${e}: its tar header is not as airlock writes it (changed bytes, or not written by airlock)`));

    const dropped = join(dir, 'dropped.tar');
    await rewriteTar(withTools, dropped, (name) => name !== ARM64);
    r = await verifyBundle(dropped);
    assert.ok(r.problems.some((p) => p.entry === ARM64 && p.message === 'missing: listed in the inventory but not in the bundle'), JSON.stringify(r.problems));

    const longer = join(dir, 'longer.tar');
    await rewriteTar(withTools, longer, () => true, (name, content) => (name === ARM64 ? Buffer.concat([content, Buffer.from('echo more\n')]) : content));
    r = await verifyBundle(longer);
    assert.ok(r.problems.some((p) => p.entry === ARM64 && /^size mismatch: \d+ bytes in the bundle, the inventory says \d+$/.test(p.message)), JSON.stringify(r.problems));

    // bundle.json claiming the format without tools, for a bundle with tools: an older airlock would misread it.
    const bytes = await readFile(withTools);
    const at = bytes.indexOf('"formatVersion": 2');
    bytes.write('"formatVersion": 1', at);
    const v1 = join(dir, 'v1.tar');
    await writeFile(v1, bytes);
    r = await verifyBundle(v1);
    assert.deepEqual(r.problems.map((p) => `${p.entry}: ${p.message}`), ['airlock/bundle.json: not as airlock writes it for this bundle: formatVersion is 1, airlock writes 2']);
  });

  test('a signature covers the tools: other bytes of the same size fail verify --key', async () => {
    await generateKeys({ out: join(dir, 'site') });
    const signed = join(dir, 'signed.tar');
    await writeBundle(opts(signed, { tools: tools(), sign: await loadSigningKey(join(dir, 'site.key')) }));
    assert.equal((await verifyBundle(signed, { key: join(dir, 'site.pub') })).ok, true);
    const swapped = join(dir, 'swapped.tar');
    const other = Buffer.from(arm64.toString().replace('arm64', 'ARM64'));
    await rewriteTar(signed, swapped, () => true, (name, content) => (name === ARM64 ? other : content));
    const r = await verifyBundle(swapped, { key: join(dir, 'site.pub') });
    assert.equal(r.signature?.verified, true, 'the inventory is the signed one');
    assert.ok(r.problems.some((p) => p.entry === ARM64 && /^digest mismatch/.test(p.message)), JSON.stringify(r.problems));
  });

  test('a tool file changed after it was hashed fails the write, and nothing is left at the output', async () => {
    const file = join(dir, 'changing');
    await writeFile(file, arm64);
    const out = join(dir, 'changing.tar');
    await assert.rejects(
      writeBundle(opts(out, { tools: [{ platform: 'linux/arm64', name: 'airlock', file }], onPlan: () => writeFile(file, Buffer.from(arm64.toString().toUpperCase())) })),
      { name: 'IntegrityError', code: 'DIGEST_MISMATCH', message: new RegExp(`^${file} changed while it was packed as ${ARM64}: it hashes to sha256:`) },
    );
    await assert.rejects(stat(out), { code: 'ENOENT' });
  });

  test('split into volumes: the tools span them, verify names a damaged one and its volume', async () => {
    const out = join(dir, 'vol.tar');
    const res = await writeBundle(opts(out, { tools: tools(), split: { size: 1024 * 1024, parity: 1 } }));
    const data = res.files.slice(0, res.volumes!.count);
    assert.ok(data.length >= 4, `${data.length} volumes`);
    assert.deepEqual((await verifyBundle(data)).problems, []);
    // Joined back, the volumes are the one-file bundle but for bundle.json's layout and the table.
    await exec('sh', ['-c', `cat '${data.join("' '")}' > '${join(dir, 'joined.tar')}'`]);
    const x = join(dir, 'xj');
    await mkdir(x);
    await exec('tar', ['-xf', join(dir, 'joined.tar'), '-C', x, AMD64]);
    assert.deepEqual(await readFile(join(x, AMD64)), amd64);
    // Byte 1.5 MiB of the amd64 stand-in sits in the second volume.
    const b1 = await openBundle(data);
    const e = b1.entries.get(AMD64)!;
    const volume = b1.describe(e.offset + 1536 * 1024);
    await b1.close();
    const fh = await open(volume, 'r+');
    const pos = e.offset + 1536 * 1024 - 1024 * 1024 * (Number(volume.slice(-3)) - 1);
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, pos);
    byte[0]! ^= 0xff;
    await fh.write(byte, 0, 1, pos);
    await fh.close();
    const r = await verifyBundle(data);
    const p = r.problems.find((x) => x.entry === AMD64);
    assert.ok(p, JSON.stringify(r.problems));
    assert.match(p.message, /^digest mismatch/);
    assert.match(p.volume ?? '', /vol\.tar\.00\d/);
  });

  test('a delta carries its own tools: it does not rely on its base for them', async () => {
    const base = join(dir, 'base.tar');
    await writeBundle(opts(base, { tools: tools() }));
    const delta = join(dir, 'delta.tar');
    const res = await writeBundle(opts(delta, { base: await loadDeltaBase(base), tools: tools(), version: '1.0.1' }));
    assert.ok(res.inventory.delta && res.inventory.delta.blobs.length > 0);
    assert.deepEqual(res.inventory.tools?.map((t) => t.path), [AMD64, ARM64]);
    assert.deepEqual((await verifyBundle(delta, { base: [base] })).problems, []);
    const x = join(dir, 'xd');
    await mkdir(x);
    await exec('tar', ['-xf', delta, '-C', x, AMD64]);
    assert.deepEqual(await readFile(join(x, AMD64)), amd64);
  });
});
