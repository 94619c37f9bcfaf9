// Approvals: a reviewer signs a statement about a bundle's inventory digest, written beside the
// bundle (its bytes untouched), checked by openssl alone; verify/push/serve --approved-by demand
// every approval named, push refuses an unapproved bundle before sending anything (a real
// docker-registry stays empty), and history records the approvals a bundle carried.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { approve, createSession, history, push, serve, verify, type Session } from '../../src/index.ts';
import { generateKeys, loadVerifyingKey } from '../../src/sign/keys.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { writeAppBundles, type AppBundles } from '../diff/fixture.ts';

const exec = promisify(execFile);
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('approvals', () => {
  let dir: string;
  let b: AppBundles;
  let fpA: string;
  let fpB: string;
  const key = (n: string): string => join(dir, n);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-approve-'));
    await generateKeys({ out: key('alice') });
    await generateKeys({ out: key('bob'), algorithm: 'ecdsa-p256' });
    fpA = (await loadVerifyingKey(key('alice.pub'))).fingerprint;
    fpB = (await loadVerifyingKey(key('bob.pub'))).fingerprint;
    b = await writeAppBundles(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('approve writes a signed statement beside the bundle, leaves its bytes alone, and openssl checks it', async () => {
    const before = sha256(await readFile(b.v1));
    const r = await airlock(['approve', b.v1, '--key', key('alice.key'), '--note', 'reviewed in SEC-42 <ok>', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stdout);
    const file = join(`${b.v1}.approvals`, `${fpA.slice(7)}.json`);
    assert.equal(res.file, file);
    assert.equal(sha256(await readFile(b.v1)), before, 'the bundle is unchanged');
    assert.deepEqual((await readdir(`${b.v1}.approvals`)).sort(), [`${fpA.slice(7)}.json`, `${fpA.slice(7)}.json.sig`]);
    const statement = JSON.parse(await readFile(file, 'utf8')) as Record<string, any>;
    assert.equal(statement.key, fpA);
    assert.equal(statement.note, 'reviewed in SEC-42 <ok>');
    assert.equal(statement.bundle.name, 'shop');
    // The statement names the bundle by the sha256 of its airlock/inventory.json, as tar and sha256sum compute it.
    const { stdout: inv } = await exec('sh', ['-c', `tar -xOf '${b.v1}' airlock/inventory.json | sha256sum`]);
    assert.equal(statement.bundle.inventory, `sha256:${inv.split(' ')[0]}`);
    const ok = await exec('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', key('alice.pub'), '-rawin', '-in', file, '-sigfile', `${file}.sig`]);
    assert.match(ok.stdout, /Signature Verified Successfully/);
    // Another key does not verify it: openssl refuses too.
    await assert.rejects(exec('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', key('bob.pub'), '-rawin', '-digest', 'sha256', '-in', file, '-sigfile', `${file}.sig`]), { code: 1 });
    // ECDSA: the same with -digest sha256.
    const e = await approve(b.v1, { key: key('bob.key') });
    const ec = await exec('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', key('bob.pub'), '-rawin', '-digest', 'sha256', '-in', e.file, '-sigfile', e.signatureFile]);
    assert.match(ec.stdout, /Signature Verified Successfully/);
    await rm(e.file);
    await rm(e.signatureFile);
  });

  test('verify --approved-by demands every approval named; a missing, changed or copied one fails naming the key', async () => {
    const both = ['--approved-by', key('alice.pub'), '--approved-by', key('bob.pub')];
    const missing = await airlock(['verify', b.v1, ...both]);
    assert.equal(missing.code, 5, missing.stderr);
    assert.ok(missing.stdout.includes(`not approved by the key ${key('bob.pub')} (${fpB}): no ${b.v1}.approvals/${fpB.slice(7)}.json`), missing.stdout);
    assert.doesNotMatch(missing.stdout, new RegExp(`not approved by the key ${key('alice.pub')}`));

    await approve(b.v1, { key: key('bob.key'), note: 'ops' });
    const ok = await airlock(['verify', b.v1, ...both]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`approved by key ${fpA} \\(alice\\.pub\\) at \\d{4}-.*: "reviewed in SEC-42 <ok>"`));
    assert.match(ok.stdout, new RegExp(`approved by key ${fpB} \\(bob\\.pub\\)`));
    const lib = await verify(b.v1, { approvedBy: [key('alice.pub'), key('bob.pub')] });
    assert.deepEqual(lib.approvals?.map((a) => a.key), [fpA, fpB]);

    // A changed statement (its note edited) no longer verifies.
    const file = join(`${b.v1}.approvals`, `${fpB.slice(7)}.json`);
    const original = await readFile(file);
    await writeFile(file, original.toString().replace('"ops"', '"all fine"'));
    const changed = await verify(b.v1, { approvedBy: key('bob.pub') });
    assert.equal(changed.ok, false);
    assert.match(changed.problems[0]!.message, new RegExp(`the approval .* does not verify with the key .*bob\\.pub \\(${fpB}\\): it was changed after signing`));
    await writeFile(file, original);

    // v1's approvals copied beside v2: signed by the key, but for another inventory.
    await cp(`${b.v1}.approvals`, `${b.v2}.approvals`, { recursive: true });
    const copied = await airlock(['verify', b.v2, '--approved-by', key('alice.pub')]);
    assert.equal(copied.code, 5);
    assert.match(copied.stdout, /the approval by the key .*alice\.pub \(sha256:[0-9a-f]{64}\) is for another bundle \(inventory sha256:[0-9a-f]{64}\); this bundle's inventory is sha256:/);
    await rm(`${b.v2}.approvals`, { recursive: true });
    // A private key where a public one is expected is a usage error before any work.
    const wrong = await airlock(['verify', b.v1, '--approved-by', key('alice.key')]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /alice\.key is a private key: verifying needs the public key/);
  });

  describe('push and serve', () => {
    let reg: RunningRegistry;
    let session: Session;
    let state: string;
    before(async () => {
      reg = await startRegistry();
      session = createSession({ cacheDir: join(dir, 'cache'), credentials: { get: async () => undefined } });
      state = join(dir, 'state');
      await mkdir(state);
    });
    after(async () => {
      await session?.close();
      await reg?.stop();
    });

    test('push --approved-by refuses an unapproved bundle before sending anything, accepts it once approved, and history records the approvals', async () => {
      const refused = await airlock(['push', b.v2, `${reg.host}/site`, '--approved-by', key('alice.pub')], { env: { AIRLOCK_STATE: state } });
      assert.equal(refused.code, 5, refused.stderr);
      assert.match(refused.stderr, new RegExp(`not approved by the key .*alice\\.pub \\(${fpA}\\)`));
      const catalog = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] };
      assert.deepEqual(catalog.repositories, [], 'nothing reached the registry');

      await approve(b.v2, { key: key('alice.key'), note: 'go' });
      const pushed = await airlock(['push', b.v2, `${reg.host}/site`, '--approved-by', key('alice.pub'), '--json'], { env: { AIRLOCK_STATE: state } });
      assert.equal(pushed.code, 0, pushed.stderr);
      const after = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] };
      assert.ok(after.repositories.includes('site/library/redis'), after.repositories.join(','));

      // Pushed without demanding it, the approval beside the bundle is recorded as a claim.
      await push(b.v2, `${reg.host}/again`, { session, historyFile: join(state, 'history.jsonl') });
      const h = await history({ file: join(state, 'history.jsonl') });
      const pushes = h.entries.filter((e) => e.action === 'push');
      assert.equal(pushes.length, 2);
      assert.deepEqual(pushes[0]!.approvals?.map((a) => [a.key, a.verified]), [[fpA, true]]);
      assert.deepEqual(pushes[1]!.approvals?.map((a) => [a.key, a.verified]), [[fpA, false]]);
      const text = await airlock(['history', '--file', join(state, 'history.jsonl')]);
      assert.match(text.stdout, /APPROVED BY/);
      assert.ok(text.stdout.includes(`${fpA.slice(0, 19)} (claimed)`), text.stdout);
    });

    test('serve --approved-by refuses before listening; an approved bundle is served and recorded', async () => {
      const file = join(state, 'serve.jsonl');
      await assert.rejects(serve(b.v2, { approvedBy: [key('alice.pub'), key('bob.pub')], listen: '127.0.0.1:0', historyFile: file }), (e: unknown) => {
        const err = e as { code?: string; exitCode?: number; message: string };
        return err.code === 'APPROVAL_MISSING' && err.exitCode === 5 && err.message.includes(`not approved by the key ${key('bob.pub')}`) && !err.message.includes('alice.pub');
      });
      assert.equal((await history({ file })).entries.length, 0, 'nothing served, nothing recorded');
      await using srv = await serve(b.v2, { approvedBy: key('alice.pub'), listen: '127.0.0.1:0', historyFile: file });
      assert.equal((await fetch(`${srv.url}/v2/library/redis/manifests/7`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
      const h = await history({ file });
      assert.deepEqual(h.entries.map((e) => [e.action, e.approvals?.map((a) => [a.key, a.verified])]), [['serve', [[fpA, true]]]]);
    });
  });
});
