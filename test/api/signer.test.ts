// The signer push and serve report and record is the key that verified the signature: a bundle
// carrying another bundle's airlock/signature.json (or its signature, or both) is refused with the
// key, and without one its claim is recorded as a claim — never as a verified signer — in the
// import history, against a real docker-registry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '../../src/content/file-store.ts';
import { writeBundle } from '../../src/bundle/index.ts';
import { generateKeys, loadSigningKey, loadVerifyingKey } from '../../src/sign/keys.ts';
import { createSession, history, IntegrityError, push, serve, type HistoryEntry, type Session } from '../../src/index.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { blobStream, buildImage } from '../helpers/images.ts';
import { airlock } from '../helpers/cli.ts';
import { withEntriesOf } from '../helpers/tamper.ts';

const SIG = 'airlock/inventory.json.sig';
const SIG_INFO = 'airlock/signature.json';

describe('the signer push and serve record', () => {
  let dst: RunningRegistry;
  let dir: string;
  let session: Session;
  let signedA: string;
  let keyA: string;
  let keyB: string;
  let fingerprintA: string;
  let fingerprintB: string;
  /** signedA with B's signature.json, B's signature, and both. */
  const tampered: Record<'info' | 'sig' | 'both', string> = { info: '', sig: '', both: '' };

  before(async () => {
    dst = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'airlock-signer-'));
    session = createSession({ cacheDir: join(dir, 'cache'), credentials: { get: async () => undefined } });
    const store = new FileStore(join(dir, 'store'));
    const web = buildImage({ layers: [{ random: { bytes: 40 * 1024, seed: 31 } }] });
    const api = buildImage({ layers: [{ random: { bytes: 30 * 1024, seed: 32 } }] });
    for (const img of [web, api]) for (const b of img.blobs) await store.push(b.descriptor, blobStream(b));
    await generateKeys({ out: join(dir, 'a') });
    await generateKeys({ out: join(dir, 'b') });
    keyA = join(dir, 'a.pub');
    keyB = join(dir, 'b.pub');
    fingerprintA = (await loadVerifyingKey(keyA)).fingerprint;
    fingerprintB = (await loadVerifyingKey(keyB)).fingerprint;
    signedA = join(dir, 'a.tar');
    const signedB = join(dir, 'b.tar');
    const base = { source: store, toolVersion: '0.0.0-test', lockText: 'lock\n', name: 'shop', version: '1' };
    await writeBundle({ ...base, out: signedA, images: [{ reference: 'example.com/shop/web:1', root: web.root }], sign: await loadSigningKey(join(dir, 'a.key')) });
    await writeBundle({ ...base, out: signedB, version: '2', images: [{ reference: 'example.com/shop/api:1', root: api.root }], sign: await loadSigningKey(join(dir, 'b.key')) });
    tampered.info = await withEntriesOf(signedA, signedB, [SIG_INFO], join(dir, 'info.tar'));
    tampered.sig = await withEntriesOf(signedA, signedB, [SIG], join(dir, 'sig.tar'));
    tampered.both = await withEntriesOf(signedA, signedB, [SIG, SIG_INFO], join(dir, 'both.tar'));
  });
  after(async () => {
    await session?.close();
    await dst?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const refused = (e: unknown): boolean => e instanceof IntegrityError && e.code === 'SIGNATURE_INVALID';
  const recorded = async (file: string): Promise<Pick<HistoryEntry, 'action' | 'key' | 'verified' | 'claimedKey'>[]> =>
    (await history({ file })).entries.map((e) => ({ action: e.action, key: e.key, verified: e.verified, ...(e.claimedKey !== undefined ? { claimedKey: e.claimedKey } : {}) }));

  test('push: with the key, a bundle claiming another signer or carrying another signature is refused and not recorded; without, the claim is recorded as one', async () => {
    const file = join(dir, 'push-history.jsonl');
    for (const [name, path] of Object.entries(tampered)) {
      for (const key of [keyA, keyB]) {
        await assert.rejects(push(path, `${dst.host}/guarded`, { session, key, historyFile: file }), refused, `${name} with ${key}`);
      }
    }
    assert.deepEqual(await recorded(file), [], 'nothing refused is recorded');

    const claimed = await push(tampered.info, `${dst.host}/open`, { session, historyFile: file });
    assert.deepEqual(claimed.signature, { verified: false, claimed: { algorithm: 'ed25519', key: fingerprintB } });
    const genuine = await push(signedA, `${dst.host}/guarded`, { session, key: keyA, historyFile: file });
    assert.deepEqual(genuine.signature, { verified: true, key: fingerprintA, algorithm: 'ed25519' });
    const both = await push(tampered.both, `${dst.host}/open`, { session, historyFile: file });
    assert.equal(both.signature?.verified, false);
    assert.deepEqual(await recorded(file), [
      { action: 'push', key: null, verified: false, claimedKey: fingerprintB },
      { action: 'push', key: fingerprintA, verified: true },
      { action: 'push', key: null, verified: false, claimedKey: fingerprintB },
    ]);

    // The CLI shows a claim as a claim.
    const h = await airlock(['history', '--file', file]);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, new RegExp(`claims ${fingerprintB.slice(0, 19)} \\(unchecked\\)`));
    assert.match(h.stdout, new RegExp(`${fingerprintA.slice(0, 19)} \\(verified\\)`));
    assert.doesNotMatch(h.stdout, new RegExp(`${fingerprintB.slice(0, 19)} \\(verified\\)`));
    const state = join(dir, 'cli-state');
    const p = await airlock(['push', tampered.info, `${dst.host}/cli`], { env: { AIRLOCK_STATE: state } });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`signed, not verified \\(claims key ${fingerprintB}\\): give --key NAME\\.pub to check it`));
    assert.doesNotMatch(p.stdout, /signed by key/);
    assert.deepEqual(await recorded(join(state, 'history.jsonl')), [{ action: 'push', key: null, verified: false, claimedKey: fingerprintB }]);
  });

  test('serve: with the key, a tampered bundle is refused before listening; the signer recorded is the key given, a claim only a claim', async () => {
    const file = join(dir, 'serve-history.jsonl');
    for (const path of Object.values(tampered)) {
      let srv: Awaited<ReturnType<typeof serve>> | undefined;
      try {
        srv = await serve(path, { key: keyA, listen: '127.0.0.1:0', historyFile: file });
      } catch (e) {
        assert.ok(refused(e), String(e));
        continue;
      }
      await srv.close();
      assert.fail(`${path} was served with the key`);
    }
    assert.deepEqual(await recorded(file), []);
    {
      await using srv = await serve(tampered.info, { listen: '127.0.0.1:0', historyFile: file });
      assert.equal(srv.images.length, 1);
    }
    {
      await using srv = await serve(signedA, { key: keyA, listen: '127.0.0.1:0', historyFile: file });
      assert.equal(srv.images.length, 1);
    }
    assert.deepEqual(await recorded(file), [
      { action: 'serve', key: null, verified: false, claimedKey: fingerprintB },
      { action: 'serve', key: fingerprintA, verified: true },
    ]);
  });
});
