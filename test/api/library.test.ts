// airlock used as a library (src/index.ts), in-process, against real docker-registry processes:
// lock → pack → verify → push → serve, the import history push and serve keep, serve's signature
// gate, a damaged bundle as a report rather than an exception, and option checks that fail before
// anything is fetched or written.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry } from '../helpers/images.ts';
import { airlock } from '../helpers/cli.ts';
import {
  createSession,
  ExitCode,
  history,
  IntegrityError,
  keygen,
  lock,
  NotFoundError,
  pack,
  push,
  serve,
  UsageError,
  verify,
  type AirlockEvent,
  type Session,
} from '../../src/index.ts';

const noCredentials = { get: async () => undefined };
const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

describe('airlock as a library', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let dir: string;
  let spec: string;
  let bundle: string;
  let session: Session;
  const events: AirlockEvent[] = [];

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-api-'));
    await seedRegistry(src.url, 'shop/web', '1.0', buildImage({ layers: [{ random: { bytes: 200 * 1024, seed: 21 } }, { files: { 'srv/index.html': 'hi' } }] }));
    spec = join(dir, 'airlock.yaml');
    await writeFile(spec, `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: shop, version: "1"}\nimages:\n  - ${src.host}/shop/web:1.0\n`);
    session = createSession({ cacheDir: join(dir, 'cache'), credentials: noCredentials, onEvent: (e) => events.push(e) });
    const locked = await lock({ spec, session });
    assert.equal(locked.lockFile, join(dir, 'airlock.lock'));
    assert.deepEqual(locked.lock.images.map((i) => i.reference), [`${src.host}/shop/web:1.0`]);
    bundle = join(dir, 'shop.tar');
    const packed = await pack(bundle, { spec, session });
    assert.equal(packed.path, bundle);
  });

  after(async () => {
    await session?.close();
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('pack reports its phases to the session; verify resolves to a report, also for a bundle too damaged to read', async () => {
    assert.ok(events.some((e) => e.type === 'phase' && e.phase === 'download'), 'the session saw the download phase');
    const good = await verify(bundle);
    assert.equal(good.ok, true);
    assert.equal(good.bundle, bundle);
    assert.deepEqual(good.problems, []);

    const cut = join(dir, 'cut.tar');
    await writeFile(cut, await readFile(bundle));
    await truncate(cut, 5000);
    const damaged = await verify(cut);
    assert.equal(damaged.ok, false);
    assert.equal(damaged.problems.length, 1);
    assert.equal(damaged.problems[0]!.entry, 'cut.tar');
    assert.match(damaged.problems[0]!.message, /cut\.tar.*: truncated: /);

    // Misuse still throws: there is nothing to report on.
    await assert.rejects(verify(join(dir, 'nope.tar')), (e: unknown) => e instanceof NotFoundError && e.code === 'BUNDLE_NOT_FOUND');
  });

  test('push records the import; a history that cannot be written is a warning, not a failure', async () => {
    const file = join(dir, 'state', 'history.jsonl');
    const first = await push(bundle, `${dst.host}/mirror`, { session, historyFile: file });
    assert.equal(first.target, `${dst.host}/mirror`);
    assert.deepEqual(first.images.map((i) => i.target), [`${dst.host}/mirror/shop/web:1.0`]);
    const h = await history({ file });
    assert.deepEqual(h.entries.map((e) => [e.action, e.bundle, e.target]), [['push', bundle, `${dst.host}/mirror`]]);
    assert.deepEqual(h.broken, []);

    // The history's folder is a file: the push still happens, and says what it could not record.
    const blocker = join(dir, 'blocker');
    await writeFile(blocker, '');
    const seen: AirlockEvent[] = [];
    const second = await push(bundle, `${dst.host}/again`, { session, historyFile: join(blocker, 'history.jsonl'), onEvent: (e) => seen.push(e) });
    assert.equal(second.images.length, 1);
    const warnings = seen.filter((e) => e.type === 'warning');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.code, 'HISTORY_UNWRITABLE');
    assert.match(warnings[0]!.message, /^could not record this push in .*blocker\/history\.jsonl: /);

    // history: false records nothing.
    await push(bundle, `${dst.host}/quiet`, { session, historyFile: file, history: false });
    assert.equal((await history({ file })).entries.length, 1);
  });

  test('serve checks the signature before listening, records what it serves, and stops on close', async () => {
    const keys = await keygen(join(dir, 'release'));
    assert.equal(keys.encrypted, false);
    const file = join(dir, 'serve-history.jsonl');
    await assert.rejects(serve(bundle, { key: keys.publicKey, listen: '127.0.0.1:0', historyFile: file }), (e: unknown) => {
      assert.ok(e instanceof IntegrityError);
      assert.equal(e.code, 'SIGNATURE_MISSING');
      // A library error names no CLI flag.
      assert.doesNotMatch(`${e.message} ${e.hint}`, /--/);
      return true;
    });
    assert.equal(await exists(file), false, 'nothing served, nothing recorded');

    const signed = join(dir, 'signed.tar');
    await pack(signed, { spec, session, sign: keys.privateKey });
    await using srv = await serve(signed, { key: keys.publicKey, listen: '127.0.0.1:0', historyFile: file });
    assert.deepEqual(srv.images.map((i) => i.served), ['shop/web:1.0']);
    const res = await fetch(`${srv.url}/v2/shop/web/tags/list`);
    assert.deepEqual(await res.json(), { name: 'shop/web', tags: ['1.0'] });
    assert.equal(srv.requests, 1);
    const h = await history({ file });
    assert.deepEqual(h.entries.map((e) => [e.action, e.bundle, e.verified, e.target]), [['serve', signed, true, srv.url]]);
    await srv.close();
    // Closed: nothing listens there any more.
    await assert.rejects(fetch(`${srv.url}/v2/`), (e: unknown) => e instanceof TypeError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED');
  });

  test('options are checked before anything is fetched or written, in the library’s terms', async () => {
    const out = join(dir, 'never.tar');
    await assert.rejects(pack(out, { spec, session, split: '1K' }), (e: unknown) => e instanceof UsageError && e.code === 'SPLIT_INVALID' && /^volume size 1K is too small/.test(e.message));
    await assert.rejects(pack(out, { spec, session, parity: 2 }), (e: unknown) => e instanceof UsageError && e.code === 'PARITY_WITHOUT_SPLIT');
    await assert.rejects(pack(out, { spec, session, split: '1MiB', parity: 100 }), (e: unknown) => e instanceof UsageError && e.code === 'PARITY_INVALID');
    assert.throws(() => createSession({ concurrency: 0 }), (e: unknown) => e instanceof UsageError && e.code === 'CONCURRENCY_INVALID');
    await assert.rejects(pack(out, { spec, session, signal: AbortSignal.abort() }), { name: 'AbortedError', code: 'ABORTED', exitCode: ExitCode.interrupted });
    assert.equal(await exists(out), false);
  });

  test('the CLI states the same checks in flag terms', async () => {
    const split = await airlock(['pack', '-f', spec, '-o', join(dir, 'x.tar'), '--split', '1K']);
    assert.equal(split.code, 2);
    assert.match(split.stderr, /airlock: error: --split 1K is too small: a volume needs at least 64 KiB/);
    const parity = await airlock(['pack', '-f', spec, '-o', join(dir, 'x.tar'), '--parity', '2']);
    assert.equal(parity.code, 2);
    assert.match(parity.stderr, /--parity needs --split: recovery volumes rebuild lost volumes\n {2}hint: e\.g\. --split 4GiB --parity 2/);
    const concurrency = await airlock(['push', bundle, `${dst.host}/x`, '--concurrency', 'many']);
    assert.equal(concurrency.code, 2);
    assert.match(concurrency.stderr, /--concurrency must be a whole number from 1 to 64, got "many"/);
  });
});
