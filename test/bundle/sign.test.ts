// Bundle signatures: keys as standard PEM files, a signature openssl verifies on its own, and verify
// failing on a missing signature, another key, or any changed byte.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FileStore } from '../../src/content/file-store.ts';
import { ExitCode, IntegrityError, UsageError } from '../../src/core/errors.ts';
import { openBundle, verifyBundle, writeBundle, type WriteBundleOptions } from '../../src/bundle/index.ts';
import { generateKeys, loadSigningKey, loadVerifyingKey } from '../../src/sign/keys.ts';
import { blobStream, buildImage } from '../helpers/images.ts';

const exec = promisify(execFile);

describe('signatures', () => {
  let dir: string;
  let store: FileStore;
  let signed: string;
  const image = buildImage({ layers: [{ random: { bytes: 40 * 1024, seed: 21 } }, { files: { 'etc/motd': 'signed\n' } }] });
  const opts = (out: string, more: Partial<WriteBundleOptions> = {}): WriteBundleOptions => ({
    out,
    images: [{ reference: 'example.com/app:1', root: image.root }],
    source: store,
    lockText: 'lock\n',
    name: 'sig',
    version: '1',
    toolVersion: '0.0.0-test',
    ...more,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-sign-'));
    store = new FileStore(join(dir, 'cache'));
    for (const b of image.blobs) await store.push(b.descriptor, blobStream(b));
    await generateKeys({ out: join(dir, 'ed') });
    await generateKeys({ out: join(dir, 'other') });
    await generateKeys({ out: join(dir, 'ec'), algorithm: 'ecdsa-p256', passphrase: 'correct horse' });
    signed = join(dir, 'signed.tar');
    await writeBundle(opts(signed, { sign: await loadSigningKey(join(dir, 'ed.key')) }));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('keygen writes a PKCS#8 private key (0600) and an SPKI public key that openssl reads', async () => {
    const key = await readFile(join(dir, 'ed.key'), 'utf8');
    assert.match(key, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal((await stat(join(dir, 'ed.key'))).mode & 0o777, 0o600);
    assert.match(await readFile(join(dir, 'ed.pub'), 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/);
    assert.match(await readFile(join(dir, 'ec.key'), 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    const { stdout } = await exec('openssl', ['pkey', '-pubin', '-in', join(dir, 'ed.pub'), '-text', '-noout']);
    assert.match(stdout, /ED25519 Public-Key/);
    // The fingerprint is the sha256 of the public key's DER, as openssl computes it.
    const der = await exec('sh', ['-c', `openssl pkey -pubin -in '${join(dir, 'ed.pub')}' -outform DER | sha256sum`]);
    assert.equal((await loadVerifyingKey(join(dir, 'ed.pub'))).fingerprint, `sha256:${der.stdout.split(' ')[0]}`);
    await assert.rejects(generateKeys({ out: join(dir, 'ed') }), { name: 'ConflictError', code: 'KEY_EXISTS', exitCode: ExitCode.conflict, message: /cannot write .*ed\.(key|pub): it already exists/ });
  });

  test('openssl verifies the signature over the extracted airlock/inventory.json, both key types', async () => {
    const ecSigned = join(dir, 'ec-signed.tar');
    await writeBundle(opts(ecSigned, { sign: await loadSigningKey(join(dir, 'ec.key'), 'correct horse') }));
    // An ECDSA signature (DER, of varying length) is in the form verify expects, with and without its key.
    assert.deepEqual((await verifyBundle(ecSigned)).problems, []);
    assert.deepEqual((await verifyBundle(ecSigned, { key: join(dir, 'ec.pub') })).signature, { signed: true, verified: true, algorithm: 'ecdsa-p256', key: (await loadVerifyingKey(join(dir, 'ec.pub'))).fingerprint });
    for (const [bundle, pub, extra] of [[signed, 'ed.pub', []], [ecSigned, 'ec.pub', ['-digest', 'sha256']]] as const) {
      const x = join(dir, `x-${pub}`);
      await mkdir(x);
      await exec('tar', ['-xf', bundle, '-C', x, 'airlock/inventory.json', 'airlock/inventory.json.sig']);
      const { stdout } = await exec('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, pub), '-rawin', ...extra, '-in', join(x, 'airlock/inventory.json'), '-sigfile', join(x, 'airlock/inventory.json.sig')]);
      assert.match(stdout, /Signature Verified Successfully/);
      // One changed byte in the payload: openssl refuses too.
      const inv = await readFile(join(x, 'airlock/inventory.json'));
      inv[inv.length - 3]! ^= 1;
      await writeFile(join(x, 'airlock/inventory.json'), inv);
      await assert.rejects(exec('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, pub), '-rawin', ...extra, '-in', join(x, 'airlock/inventory.json'), '-sigfile', join(x, 'airlock/inventory.json.sig')]), {
        code: 1,
        stdout: /Signature Verification Failure/,
      });
    }
  });

  test('verify --key: the right key passes; another key, an unsigned bundle fail, naming why', async () => {
    const ok = await verifyBundle(signed, { key: join(dir, 'ed.pub') });
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.signature?.verified, true);
    const other = await verifyBundle(signed, { key: join(dir, 'other.pub') });
    assert.equal(other.ok, false);
    assert.deepEqual(other.problems.map((p) => p.entry), ['airlock/inventory.json.sig']);
    assert.match(other.problems[0]!.message, /^not signed by the key given: the signature does not verify with .*other\.pub \(sha256:[0-9a-f]{64}\); airlock\/signature\.json claims the key sha256:/);
    assert.deepEqual(other.signature, { signed: true, verified: false, claimed: { algorithm: 'ed25519', key: (await loadVerifyingKey(join(dir, 'ed.pub'))).fingerprint } });
    const plain = join(dir, 'plain.tar');
    await writeBundle(opts(plain));
    const unsigned = await verifyBundle(plain, { key: join(dir, 'ed.pub') });
    assert.equal(unsigned.ok, false);
    assert.match(unsigned.problems[0]!.message, /^missing: the bundle is not signed, and the key given \(.*\) demands a signature/);
    // Without --key a signed bundle passes, reported as signed but not checked: the key it names is a claim, not a signer.
    const unchecked = await verifyBundle(signed);
    assert.equal(unchecked.ok, true);
    assert.deepEqual(unchecked.signature, { signed: true, verified: false, claimed: { algorithm: 'ed25519', key: (await loadVerifyingKey(join(dir, 'ed.pub'))).fingerprint } });
    assert.deepEqual(ok.signature, { signed: true, verified: true, algorithm: 'ed25519', key: (await loadVerifyingKey(join(dir, 'ed.pub'))).fingerprint });
  });

  test('any changed byte of a signed bundle fails verify --key: in a blob, the inventory, padding, index.json, the lock, the end blocks', async () => {
    const b = await openBundle(signed);
    const at = (name: string): number => b.entries.get(name)!.offset;
    const layer = b.inventory.blobs.reduce((a, x) => (x.size > a.size ? x : a));
    const places: [string, number][] = [
      ['a blob', at(`blobs/sha256/${layer.digest.slice(7)}`) + 100],
      ['the inventory', at('airlock/inventory.json') + 30],
      ['padding', at('oci-layout') + b.entries.get('oci-layout')!.size + 5],
      ['index.json', at('index.json') + 20],
      ['the lock', at('airlock/airlock.lock') + 1],
      ['the end of archive', b.fileSize - 10],
    ];
    await b.close();
    for (const [what, pos] of places) {
      const copy = join(dir, 'flip.tar');
      await copyFile(signed, copy);
      const fh = await open(copy, 'r+');
      const one = Buffer.alloc(1);
      await fh.read(one, 0, 1, pos);
      one[0] = one[0] === 0x30 ? 0x31 : 0x30;
      await fh.write(one, 0, 1, pos);
      await fh.close();
      // Either verify reports the damage, or the tar no longer opens (a header checksum): an IntegrityError.
      const failed = await verifyBundle(copy, { key: join(dir, 'ed.pub') }).then(
        (r) => !r.ok,
        (e: unknown) => {
          assert.ok(e instanceof IntegrityError, `${what}: ${String(e)}`);
          return true;
        },
      );
      assert.ok(failed, `a changed byte in ${what} is caught`);
    }
  });

  test('a tar header changed with its checksum fixed up (a new mtime) is caught as not airlock\'s form', async () => {
    const b = await openBundle(signed);
    const header = b.entries.get('index.json')!.offset - 512;
    await b.close();
    const copy = join(dir, 'mtime.tar');
    await copyFile(signed, copy);
    const fh = await open(copy, 'r+');
    const block = Buffer.alloc(512);
    await fh.read(block, 0, 512, header);
    block.write('14712345670\0', 136, 12, 'latin1');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    await fh.write(block, 0, 512, header);
    await fh.close();
    const r = await verifyBundle(copy, { key: join(dir, 'ed.pub') });
    assert.deepEqual(r.problems.map((p) => [p.entry, p.message]), [['index.json', 'its tar header is not as airlock writes it (changed bytes, or not written by airlock)']]);
  });

  test('key files of the wrong type are named', async () => {
    await assert.rejects(loadSigningKey(join(dir, 'ed.pub')), (e: unknown) => e instanceof UsageError && /ed\.pub is a public key: signing needs the private key/.test(e.message));
    await assert.rejects(loadVerifyingKey(join(dir, 'ed.key')), (e: unknown) => e instanceof UsageError && /ed\.key is a private key: verifying needs the public key/.test(e.message));
    await assert.rejects(loadSigningKey(join(dir, 'ec.key')), (e: unknown) => e instanceof UsageError && /is encrypted and no passphrase was given/.test(e.message));
    await assert.rejects(loadSigningKey(join(dir, 'ec.key'), 'wrong'), (e: unknown) => e instanceof UsageError && /the passphrase does not decrypt the key/.test(e.message));
    await exec('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', join(dir, 'rsa.key')]);
    await assert.rejects(loadSigningKey(join(dir, 'rsa.key')), (e: unknown) => e instanceof UsageError && /is a RSA key: airlock signs with Ed25519 or ECDSA P-256 only/.test(e.message));
    await writeFile(join(dir, 'junk.key'), 'not a key\n');
    await assert.rejects(loadSigningKey(join(dir, 'junk.key')), (e: unknown) => e instanceof UsageError && /is not a PEM key file/.test(e.message));
  });
});
