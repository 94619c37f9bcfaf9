// The whole metadata of a bundle, byte for byte as the writer lays it down: the signer verify
// reports is the key that verified the signature (signature.json is a claim anyone can copy from
// another bundle), every metadata entry, header, padding and the end of the archive is checked,
// and inspect refuses what is not a well-formed airlock tar instead of listing it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FileStore } from '../../src/content/file-store.ts';
import { IntegrityError } from '../../src/core/errors.ts';
import { inspectBundle, verifyBundle, writeBundle, type VerifyReport, type WriteBundleOptions } from '../../src/bundle/index.ts';
import { generateKeys, loadSigningKey, loadVerifyingKey, type VerifyingKey } from '../../src/sign/keys.ts';
import { blobStream, buildImage, buildIndex, layersOf } from '../helpers/images.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { layoutOf, patched, readAt, withEntriesOf } from '../helpers/tamper.ts';

const exec = promisify(execFile);
const SIG = 'airlock/inventory.json.sig';
const SIG_INFO = 'airlock/signature.json';

/** verify's verdict: the entries named, or the error when the tar no longer reads at all. */
async function entriesNamed(path: string, key?: string | VerifyingKey): Promise<{ ok: boolean; entries: string[]; report?: VerifyReport; error?: string }> {
  try {
    const r = await verifyBundle(path, { key, threads: 0 });
    return { ok: r.ok, entries: [...new Set(r.problems.map((p) => p.entry ?? p.digest ?? ''))], report: r };
  } catch (e) {
    if (!(e instanceof IntegrityError)) throw e;
    return { ok: false, entries: [], error: e.message };
  }
}

describe('bundle metadata, byte for byte', () => {
  let dir: string;
  let store: FileStore;
  let signedA: string;
  let signedB: string;
  let plain: string;
  let keyA: string;
  let keyB: string;
  let fingerprintA: string;
  let fingerprintB: string;
  const app = buildIndex([
    buildImage({ layers: [{ random: { bytes: 30 * 1024, seed: 3 } }] }),
    buildImage({ layers: [{ random: { bytes: 20 * 1024, seed: 4 } }], platform: 'linux/arm64/v8' }),
  ]);
  const tool = buildImage({ layers: [{ files: { 'bin/tool': 'tool\n' } }] });
  const opts = (out: string, more: Partial<WriteBundleOptions> = {}): WriteBundleOptions => ({
    out,
    images: [
      { reference: 'example.com/app:1', root: app.root },
      { reference: 'example.com/tool:2', root: tool.root },
    ],
    source: store,
    lockText: 'lock a\n',
    name: 'meta',
    version: '1',
    toolVersion: '0.0.0-test',
    ...more,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-meta-'));
    store = new FileStore(join(dir, 'cache'));
    for (const img of [app, tool]) for (const b of img.blobs) await store.push(b.descriptor, blobStream(b));
    await generateKeys({ out: join(dir, 'a') });
    await generateKeys({ out: join(dir, 'b') });
    keyA = join(dir, 'a.pub');
    keyB = join(dir, 'b.pub');
    fingerprintA = (await loadVerifyingKey(keyA)).fingerprint;
    fingerprintB = (await loadVerifyingKey(keyB)).fingerprint;
    signedA = join(dir, 'signed-a.tar');
    signedB = join(dir, 'signed-b.tar');
    plain = join(dir, 'plain.tar');
    await writeBundle(opts(signedA, { sign: await loadSigningKey(join(dir, 'a.key')) }));
    // Another bundle, signed with another key: its signature entries have the same sizes.
    await writeBundle(opts(signedB, { version: '2', lockText: 'lock b\n', images: opts('').images.slice(1), sign: await loadSigningKey(join(dir, 'b.key')) }));
    await writeBundle(opts(plain));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const swapped = (names: string[], out: string): Promise<string> => withEntriesOf(signedA, signedB, names, out);

  test("another bundle's signature.json, inventory.json.sig, or both: verify --key fails naming the entry; without a key the claim is never the signer", async () => {
    const good = await verifyBundle(signedA, { key: keyA });
    assert.equal(good.ok, true, JSON.stringify(good.problems));
    assert.deepEqual(good.signature, { signed: true, verified: true, algorithm: 'ed25519', key: fingerprintA });

    // signature.json from B: the signature still verifies with A, but the bundle claims B signed it.
    const info = await swapped([SIG_INFO], join(dir, 'swap-info.tar'));
    const withA = await verifyBundle(info, { key: keyA });
    assert.equal(withA.ok, false);
    assert.deepEqual(withA.problems.map((p) => p.entry), [SIG_INFO]);
    assert.match(withA.problems[0]!.message, new RegExp(`^names the key ${fingerprintB} as the signer, but the signature was made with the key given \\(${fingerprintA}\\)`));
    assert.equal(withA.signature?.key, fingerprintA, 'the signer reported is the key that verified');
    assert.deepEqual(withA.signature?.claimed, { algorithm: 'ed25519', key: fingerprintB });
    const withB = await verifyBundle(info, { key: keyB });
    assert.equal(withB.ok, false);
    assert.deepEqual(withB.problems.map((p) => p.entry), [SIG]);
    assert.equal(withB.signature?.verified, false);
    assert.equal(withB.signature?.key, undefined, 'no signer is reported for a signature no key verified');
    const noKey = await verifyBundle(info);
    assert.deepEqual(noKey.signature, { signed: true, verified: false, claimed: { algorithm: 'ed25519', key: fingerprintB } });

    // inventory.json.sig from B: it does not verify with A (nor with B: it signs B's inventory).
    const sig = await swapped([SIG], join(dir, 'swap-sig.tar'));
    for (const key of [keyA, keyB]) {
      const r = await verifyBundle(sig, { key });
      assert.equal(r.ok, false);
      assert.deepEqual(r.problems.map((p) => p.entry), [SIG]);
      assert.equal(r.signature?.key, undefined);
    }

    // Both from B: it claims B, and B's signature is over another inventory.
    const both = await swapped([SIG, SIG_INFO], join(dir, 'swap-both.tar'));
    for (const key of [keyA, keyB]) {
      const r = await verifyBundle(both, { key });
      assert.equal(r.ok, false);
      assert.deepEqual(r.problems.map((p) => p.entry), [SIG]);
      assert.deepEqual(r.signature, { signed: true, verified: false, claimed: { algorithm: 'ed25519', key: fingerprintB } });
    }
    assert.match((await verifyBundle(both, { key: keyA })).problems[0]!.message, new RegExp(`^not signed by the key given: .*${SIG_INFO} claims the key ${fingerprintB}`));

    // The CLI: exit 5 naming the entry with the key; without, the claim is said to be one.
    const cli = await airlock(['verify', info, '--key', keyA]);
    assert.equal(cli.code, 5, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /airlock\/signature\.json: names the key sha256:[0-9a-f]{64} as the signer/);
    const cliNoKey = await airlock(['verify', both]);
    assert.equal(cliNoKey.code, 0, cliNoKey.stdout + cliNoKey.stderr);
    assert.match(cliNoKey.stdout, new RegExp(`signed, not verified \\(claims key ${fingerprintB}, ed25519\\): give --key NAME\\.pub to check it`));
    assert.doesNotMatch(cliNoKey.stdout, /signed by key/);
    const json = resultOf((await airlock(['verify', both, '--json'])).stdout);
    assert.deepEqual(json.signature, { signed: true, verified: false, claimed: { algorithm: 'ed25519', key: fingerprintB } });
  });

  test('a changed byte in any metadata entry, a directory header, padding or the end blocks fails verify naming the entry', async () => {
    const { entries, size } = await layoutOf(signedA);
    const at = (name: string, offset: number): number => entries.get(name)!.offset + offset;
    const content = async (name: string): Promise<string> => (await readAt(signedA, entries.get(name)!.offset, entries.get(name)!.size)).toString('utf8');
    const inside = async (name: string, text: string, plus = 0): Promise<number> => {
      const i = (await content(name)).indexOf(text);
      assert.ok(i >= 0, `${text} in ${name}`);
      return at(name, i + plus);
    };
    /** A tar header with one field changed and its checksum made right again: only airlock's form tells. */
    const header = async (name: string, field: number, value: string): Promise<Buffer> => {
      const block = await readAt(signedA, entries.get(name)!.header, 512);
      block.write(value, field, 'latin1');
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
      block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
      return block;
    };
    // [what, the entry named, where, the bytes written there, caught without the key too]
    const cases: [string, string, number, Buffer, boolean][] = [
      // bundle.json: the tool version is unpinned, but must look like one; the name is the inventory's.
      ['bundle.json tool.version', 'airlock/bundle.json', await inside('airlock/bundle.json', '"0.0.0-test"', 1), Buffer.from('x'), true],
      ['bundle.json name', 'airlock/bundle.json', await inside('airlock/bundle.json', '"meta"', 4), Buffer.from('x'), true],
      ['bundle.json spacing', 'airlock/bundle.json', await inside('airlock/bundle.json', '": 1', 2), Buffer.from('\t'), true],
      ['bundle.json not JSON', 'airlock/bundle.json', await inside('airlock/bundle.json', '": 1', 1), Buffer.from(';'), true],
      // signature.json: the claimed key and algorithm must be the verifying key's.
      ['signature.json key', SIG_INFO, await inside(SIG_INFO, fingerprintA, 20), Buffer.from(fingerprintA[20] === 'a' ? 'b' : 'a'), false],
      ['signature.json algorithm', SIG_INFO, await inside(SIG_INFO, 'ed25519', 6), Buffer.from('8'), true],
      ['signature.json payload', SIG_INFO, await inside(SIG_INFO, 'inventory.json"', 0), Buffer.from('j'), true],
      ['oci-layout', 'oci-layout', await inside('oci-layout', '1.0.0', 4), Buffer.from('1'), true],
      ['index.json', 'index.json', await inside('index.json', 'example.com/tool:2', 17), Buffer.from('3'), true],
      ['airlock.lock', 'airlock/airlock.lock', at('airlock/airlock.lock', 5), Buffer.from('z'), true],
      // The inventory (an unsigned bundle's is checked against what the planner derives).
      ['inventory.json platform', 'airlock/inventory.json', await inside('airlock/inventory.json', 'linux/arm64/v8', 13), Buffer.from('7'), true],
      ['a directory header', 'blobs', entries.get('blobs')!.header, await header('blobs', 100, '0000775'), true],
      ['padding after an entry', 'airlock/bundle.json', at('airlock/bundle.json', entries.get('airlock/bundle.json')!.size + 3), Buffer.from([1]), true],
      // The second end block: the first one, changed, reads as a damaged header (the error names its offset).
      ['the end-of-archive blocks', 'end of archive', size - 100, Buffer.from([1]), true],
    ];
    for (const [what, entry, pos, bytes, withoutKey] of cases) {
      const copy = await patched(signedA, join(dir, 'flip.tar'), pos, bytes);
      if (!withoutKey) {
        // A well-formed claim of another key cannot be told without a key; it is reported as a claim, not a signer.
        const r = await verifyBundle(copy, { threads: 0 });
        assert.equal(r.signature?.key, undefined);
        assert.notEqual(r.signature?.claimed?.key, fingerprintA);
      }
      for (const key of withoutKey ? [undefined, keyA] : [keyA]) {
        const v = await entriesNamed(copy, key);
        assert.equal(v.ok, false, `${what} (${key ? 'with' : 'without'} the key) is caught`);
        // A document that no longer parses stops the reading: the error names it.
        assert.ok(v.entries.includes(entry) || v.error?.includes(`: ${entry}: `), `${what} (${key ? 'with' : 'without'} the key): ${entry} named, got ${JSON.stringify(v.report?.problems ?? v.error)}`);
      }
    }
    // The same changes in an unsigned bundle's metadata are caught too: the writer's form, not the signature, tells.
    const plainLayout = await layoutOf(plain);
    const plainInv = plainLayout.entries.get('airlock/inventory.json')!;
    const inv = (await readAt(plain, plainInv.offset, plainInv.size)).toString('utf8');
    const copy = await patched(plain, join(dir, 'flip-plain.tar'), plainInv.offset + inv.indexOf('linux/arm64/v8') + 13, Buffer.from('7'));
    const v = await entriesNamed(copy);
    assert.deepEqual(v.entries, ['airlock/inventory.json']);
    assert.match(v.report!.problems[0]!.message, /^not what airlock derives from index\.json, the manifests and the lock: images\[0\]\.platforms\[1\]\.platform is "linux\/arm64\/v7", airlock writes "linux\/arm64\/v8"/);
  });

  test('any byte of signature.json is pinned by the key that verifies the signature', async () => {
    const e = (await layoutOf(signedA)).entries.get(SIG_INFO)!;
    const original = await readAt(signedA, e.offset, e.size);
    const copy = join(dir, 'sweep.tar');
    await copyFile(signedA, copy);
    const key = await loadVerifyingKey(keyA);
    const missed: number[] = [];
    const fh = await open(copy, 'r+');
    try {
      for (let i = 0; i < e.size; i++) {
        await fh.write(Buffer.from([original[i]! ^ 0x01]), 0, 1, e.offset + i);
        if ((await entriesNamed(copy, key)).ok) missed.push(i);
        await fh.write(original, i, 1, e.offset + i);
      }
    } finally {
      await fh.close();
    }
    assert.deepEqual(missed, [], `changed bytes of signature.json at these offsets passed verify --key: ${original.toString('utf8')}`);
  });

  test('inspect: a truncated bundle or a tar that is not an airlock bundle is refused (exit 5); a good one is listed as not verified', async () => {
    const { entries, size } = await layoutOf(signedA);
    for (const cut of [entries.get('airlock/airlock.lock')!.offset, entries.get('blobs')!.header, Math.floor(size / 2), size - 1]) {
      const short = join(dir, 'short.tar');
      await copyFile(signedA, short);
      await truncate(short, cut);
      await assert.rejects(inspectBundle(short), (e: unknown) => e instanceof IntegrityError && e.code === 'TAR_TRUNCATED' && e.message.includes(short), `cut at ${cut} of ${size}`);
    }
    // The last cut (one byte short) from the CLI: exit 5, nothing listed.
    const r = await airlock(['inspect', join(dir, 'short.tar')]);
    assert.equal(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stderr, /short\.tar is not a well-formed airlock bundle: size: truncated: the file is \d+ bytes, the inventory's entries add up to \d+/);
    assert.equal(r.stdout, '');

    // Not an airlock bundle: a plain tar of files, and a bundle's own entries re-written by GNU tar.
    await writeFile(join(dir, 'hello.txt'), 'hello\n');
    const other = join(dir, 'other.tar');
    await exec('tar', ['-cf', other, '-C', dir, 'hello.txt']);
    const extracted = join(dir, 'extracted');
    await mkdir(extracted);
    await exec('tar', ['-xf', signedA, '-C', extracted]);
    const gnu = join(dir, 'gnu.tar');
    await exec('tar', ['-cf', gnu, '-C', extracted, 'airlock', 'oci-layout', 'index.json', 'blobs']);
    for (const [path, why] of [[other, /not an airlock bundle: it has no airlock\/bundle\.json/], [gnu, /not a well-formed airlock bundle: .*its tar header is not as airlock writes it/]] as const) {
      await assert.rejects(inspectBundle(path), (e: unknown) => e instanceof IntegrityError && why.test(e.message));
      const r = await airlock(['inspect', path]);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      assert.match(r.stderr, why);
    }
    // Bytes appended after the end, and a metadata entry changed (a lock its inventory does not pin).
    const appended = join(dir, 'appended.tar');
    await writeFile(appended, Buffer.concat([await readFile(signedA), Buffer.alloc(512, 1)]));
    await assert.rejects(inspectBundle(appended), (e: unknown) => e instanceof IntegrityError && /512 bytes follow the end of the archive/.test(e.message));
    const lock = await patched(signedA, join(dir, 'lock.tar'), entries.get('airlock/airlock.lock')!.offset + 5, Buffer.from('z'));
    await assert.rejects(inspectBundle(lock), (e: unknown) => e instanceof IntegrityError && /airlock\/airlock\.lock: changed: the inventory pins the lock/.test(e.message));

    // A good bundle: listed, with a note on stderr that it was not verified, and verified:false.
    const human = await airlock(['inspect', signedA]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stderr, /signed-a\.tar was not verified: inspect reads its metadata only/);
    assert.match(human.stdout, new RegExp(`signed, not verified \\(claims key ${fingerprintA}, ed25519\\)`));
    const json = await airlock(['inspect', signedA, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const info = resultOf(json.stdout);
    assert.equal(info.verified, false);
    assert.deepEqual(info.signature, { verified: false, claimed: { algorithm: 'ed25519', key: fingerprintA } });
    assert.match(json.stderr, /was not verified/);
    assert.deepEqual((info.images as { reference: string }[]).map((i) => i.reference), ['example.com/app:1', 'example.com/tool:2']);
  });
});
