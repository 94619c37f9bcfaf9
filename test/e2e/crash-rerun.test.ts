// Runs that end badly, and runs at the same time: a pack killed with SIGKILL leaves a bundle-sized
// temp file that the next pack removes (and says so) before writing the very bytes an uninterrupted
// pack writes; what killed split packs and repairs left is removed the same way; and several packs
// sharing one cache at once all succeed, with every cache entry hashing to its name.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry } from '../helpers/images.ts';
import { airlock, resultOf, testEnv } from '../helpers/cli.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const MiB = 1024 * 1024;

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Start the CLI, SIGKILL it once a stdout line matches; resolves when it is gone. */
async function killAfter(args: string[], env: NodeJS.ProcessEnv, match: RegExp): Promise<number> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: testEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let sent = false;
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    if (!sent && match.test(buf)) {
      sent = true;
      process.kill(child.pid!, 'SIGKILL');
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  await new Promise<void>((r) => child.on('close', () => r()));
  clearTimeout(timer);
  assert.ok(sent, `the run finished before it could be killed:\n${buf}`);
  return child.pid!;
}

/** The PID of a process that has ended (a short-lived `true`). */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise<void>((r) => child.on('close', () => r()));
  return child.pid!;
}

/** Every file below `dir`, relative. */
async function filesBelow(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('killed runs and runs at once', () => {
  let src: RunningRegistry;
  let dir: string;
  let spec: string;
  let reference: string;

  before(async () => {
    src = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'airlock-crash-'));
    const images = [0, 1, 2].map((i) => buildImage({ layers: [{ random: { bytes: 10 * MiB, seed: 300 + i } }, { random: { bytes: 3 * MiB, seed: 400 + i } }], workDir: join(dir, 'layers') }));
    for (const [i, img] of images.entries()) await seedRegistry(src.url, `crash/app${i}`, '1', img);
    spec = join(dir, 'airlock.yaml');
    await writeFile(spec, `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: crash, version: '1'}\nimages:\n${images.map((_, i) => `  - ${src.host}/crash/app${i}:1\n`).join('')}`);
    const lock = await airlock(['lock', '-f', spec]);
    assert.equal(lock.code, 0, lock.stderr);
    // What an uninterrupted pack writes, from its own cache.
    const ref = await airlock(['pack', '-f', spec, '-o', join(dir, 'reference.tar')], { env: { AIRLOCK_CACHE: join(dir, 'cache-ref') } });
    assert.equal(ref.code, 0, ref.stderr);
    reference = await sha256(join(dir, 'reference.tar'));
  });

  after(async () => {
    await src?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('kill -9 during pack: the rerun removes the temp file it left, says so, and writes the same bytes', async () => {
    const out = join(dir, 'killed');
    const env = { AIRLOCK_CACHE: join(dir, 'cache-killed') };
    const pid = await killAfter(['pack', '-f', spec, '-o', join(out, 'b.tar'), '--json', '--concurrency', '1'], env, /"type":"blob-done"[^\n]*"size":\d{7,}/);
    const left = (await readdir(out)).filter((f) => f.startsWith(`.b.tar.${pid}.`) && f.endsWith('.tmp'));
    assert.equal(left.length, 1, `the killed pack left its temp file: ${(await readdir(out)).join(', ')}`);

    const again = await airlock(['pack', '-f', spec, '-o', join(out, 'b.tar')], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`removed 1 temp file an interrupted pack had left: \\.b\\.tar\\.${pid}\\.`));
    assert.equal(await sha256(join(out, 'b.tar')), reference, 'the same bytes as a pack never interrupted');
    assert.deepEqual(await readdir(out), ['b.tar'], 'nothing else beside the bundle');
    const leftovers = (await filesBelow(join(dir, 'cache-killed'))).filter((f) => /\.(partial|tmp)$/.test(f));
    assert.deepEqual(leftovers, [], 'the killed download was taken over and finished: no partial or temp file in the cache');
  });

  test("what killed split packs and repairs left beside the volumes is removed; a live run's temp file is not", async () => {
    const out = join(dir, 'split');
    const gone = await deadPid();
    const env = { AIRLOCK_CACHE: join(dir, 'cache-ref') };
    const first = await airlock(['pack', '-f', spec, '-o', join(out, 'b.tar'), '--split', '8MiB', '--parity', '1'], { env });
    assert.equal(first.code, 0, first.stderr);
    const planted = [`.b.tar.003.${gone}.0123456789ab.tmp`, `.b.tar.par01.${gone}.ba9876543210.tmp`];
    const live = `.b.tar.002.${process.pid}.aaaaaaaaaaaa.tmp`;
    for (const f of [...planted, live]) await writeFile(join(out, f), 'left by a killed run');
    const again = await airlock(['pack', '-f', spec, '-o', join(out, 'b.tar'), '--split', '8MiB', '--parity', '1', '--json'], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((resultOf(again.stdout).cleaned as string[]).map((f) => basename(f)), planted.sort());
    const names = await readdir(out);
    assert.ok(names.includes(live), 'the temp file of a live process stays');
    for (const f of planted) assert.ok(!names.includes(f), `${f} was removed`);

    await writeFile(join(out, planted[0]!), 'left by a killed repair');
    const repair = await airlock(['repair', join(out, 'b.tar')]);
    assert.equal(repair.code, 0, repair.stderr);
    assert.match(repair.stdout, /removed 1 temp file an interrupted run had left/);
    assert.ok(!(await readdir(out)).includes(planted[0]!));
  });

  test('three packs at once on one cache: all succeed with the same bytes; every cache entry hashes to its name', async () => {
    const env = { AIRLOCK_CACHE: join(dir, 'cache-shared') };
    const runs = await Promise.all([1, 2, 3].map((n) => airlock(['pack', '-f', spec, '-o', join(dir, 'shared', `b${n}.tar`)], { env })));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    for (const n of [1, 2, 3]) assert.equal(await sha256(join(dir, 'shared', `b${n}.tar`)), reference);
    const cached = await filesBelow(join(dir, 'cache-shared'));
    assert.deepEqual(cached.filter((f) => /\.(partial|tmp)$/.test(f)), [], 'no partial or temp file left');
    const blobs = cached.filter((f) => /blobs\/sha256\/[0-9a-f]{64}$/.test(f));
    assert.ok(blobs.length >= 9, `${blobs.length} cache entries`);
    for (const f of blobs) assert.equal(await sha256(f), basename(f), `${f} holds what its name says`);
  });
});
