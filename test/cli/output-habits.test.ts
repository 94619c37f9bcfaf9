// Output habits people bring from other tools, on one small bundle:
// - `airlock … --json | head -1`: when the reader has gone, airlock stops quietly (exit 141, as a
//   shell reports for cat there) instead of crashing with an EPIPE stack trace. Each command runs
//   with its stdout closed before it writes a byte, so its first write always meets the closed pipe.
// - `-q` prints nothing but errors; counts read "1 image", "2 images".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry } from '../helpers/images.ts';
import { airlock, resultOf, testEnv } from '../helpers/cli.ts';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/audit/external/app.yaml', import.meta.url));

/** Run airlock with a stdout nobody reads (closed at once) and a bounded life. */
async function withClosedStdout(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: testEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (c, s) => r([c, s])));
  clearTimeout(timer);
  return { code, signal, stderr };
}

/** Run `fn` over `items`, three at a time (each is a Node process start). */
async function pool<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: 3 }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

describe('output habits', () => {
  let reg: RunningRegistry;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'airlock-pipe-'));
    env = { AIRLOCK_CACHE: join(dir, 'cache') };
    await seedRegistry(reg.url, 'team/app', '1.0', buildImage({ layers: [{ random: { bytes: 32 * 1024, seed: 7 } }], platform: 'linux/amd64' }));
    await writeFile(join(dir, 'airlock.yaml'), `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: pipe, version: '1'}\nimages:\n  - ${reg.host}/team/app:1.0\n`);
    const p = await airlock(['pack', '--lock', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'b.tar')], { env });
    assert.equal(p.code, 0, p.stderr);
  });
  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const b = (): string => join(dir, 'b.tar');
  const cases: [string, () => string[]][] = [
    ['inspect', () => ['inspect', b(), '--json']],
    ['verify', () => ['verify', b(), '--json']],
    ['lock', () => ['lock', '-f', join(dir, 'airlock.yaml'), '--json']],
    ['pack', () => ['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'again.tar'), '--json']],
    ['push', () => ['push', b(), `${reg.host}/mirror`, '--json']],
    ['export', () => ['export', 'k3s', b(), join(dir, 'export'), '--json']],
    ['serve', () => ['serve', b(), '--listen', '127.0.0.1:0', '--json']],
    ['history', () => ['history', '--json']],
    ['discover', () => ['discover', FIXTURE, '--json']],
    ['audit', () => ['audit', FIXTURE, '--json']],
    ['human output too', () => ['inspect', b()]],
  ];
  test('every command exits 141 without a trace when its stdout is closed', async () => {
    await pool(cases, async ([name, args]) => {
      const r = await withClosedStdout(args(), env);
      assert.equal(r.signal, null, name);
      assert.equal(r.code, 141, `${name}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /EPIPE|\n\s+at |internal error|airlock: error/, name);
    });
  });

  test('a pack stopped by the closed pipe leaves no half-written bundle', async () => {
    const names = await readdir(dir);
    assert.ok(!names.some((n) => n.startsWith('.again.tar') && n.endsWith('.tmp')), names.join(' '));
  });

  test('as typed in a shell: `inspect --json | head -1` prints one line and no trace', async () => {
    const { stdout, stderr } = await run('bash', ['-c', `set -o pipefail; "${process.execPath}" "${MAIN}" inspect "${b()}" --json | head -1; echo "exit $?" >&2`], { env: testEnv(env) });
    assert.equal(stdout.trim().split('\n').length, 1);
    assert.match(stderr, /exit (0|141)\n$/);
    assert.doesNotMatch(stderr, /EPIPE|\n\s+at /);
  });

  const quiet: [string, () => string[], number][] = [
    ['lock', () => ['lock', '-f', join(dir, 'airlock.yaml'), '-q'], 0],
    ['pack', () => ['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'quiet.tar'), '-q'], 0],
    ['verify', () => ['verify', b(), '-q'], 0],
    ['inspect (its not-verified warning too)', () => ['inspect', b(), '-q'], 0],
    ['push', () => ['push', b(), `${reg.host}/quiet`, '-q'], 0],
    ['export', () => ['export', 'k3s', b(), join(dir, 'export-q'), '-q'], 0],
    ['mirrors-config -o', () => ['mirrors-config', b(), '--registry', 'reg.internal:5000', '-o', join(dir, 'mirrors'), '-q'], 0],
    ['history', () => ['history', '-q'], 0],
    ['discover', () => ['discover', FIXTURE, '-q'], 0],
    ['audit', () => ['audit', FIXTURE, '--fail-on', 'none', '-q'], 0],
    ['keygen', () => ['keygen', '-o', join(dir, 'k'), '-q'], 0],
  ];
  test('-q: every command prints nothing (warnings and progress included)', async () => {
    await pool(quiet, async ([name, args, code]) => {
      const r = await airlock(args(), { env });
      assert.equal(r.code, code, `${name}: ${r.stderr}`);
      assert.equal(r.stdout, '', name);
      assert.equal(r.stderr, '', name);
    });
  });

  test('-q still prints errors, and the data a command was asked to print', async () => {
    const bad = await airlock(['inspect', join(dir, 'missing.tar'), '-q'], { env });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /^airlock: error: .*missing\.tar/);
    const yaml = await airlock(['netpol', FIXTURE, '-q'], { env });
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /kind: NetworkPolicy/);
    assert.equal(yaml.stderr, '');
  });

  test('-o/--output names what is written, on export and mirrors-config too (--out still works)', async () => {
    const e = await airlock(['export', 'k3s', b(), '-o', join(dir, 'export-o'), '--json'], { env });
    assert.equal(e.code, 0, e.stderr);
    assert.equal(resultOf(e.stdout).dir, join(dir, 'export-o'));
    assert.equal((await readdir(join(dir, 'export-o'))).length, 1);
    for (const flag of ['--output', '--out']) {
      const m = await airlock(['mirrors-config', b(), '--registry', 'reg.internal:5000', flag, join(dir, `m${flag}.yaml`)], { env });
      assert.equal(m.code, 0, m.stderr);
      assert.match(await readFile(join(dir, `m${flag}.yaml`), 'utf8'), /reg\.internal:5000/);
    }
  });

  test('counts read "1 image", not "1 images"', async () => {
    const i = await airlock(['inspect', b()], { env });
    assert.match(i.stdout, /\n1 image, 0 charts, 3 blobs,/);
    const v = await airlock(['verify', b()], { env });
    assert.match(v.stdout, /b\.tar: OK, 3 blobs,/);
    const p = await airlock(['push', b(), `${reg.host}/counts`], { env });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /pushed 1 image and 0 charts to /);
    const h = await airlock(['history'], { env });
    assert.match(h.stdout, /\n\d+ imports? recorded in /);
  });
});
