// Interrupted work: a pack stopped with Ctrl-C leaves nothing at the output path and resumes from
// its cache; a push killed outright completes when rerun, with every digest kept.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { airlock, resultOf, testEnv } from '../helpers/cli.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const MiB = 1024 * 1024;

/** Start the CLI, wait until a stdout line matches, then send `signal` to its PID; returns the exit code. */
async function interruptAfter(args: string[], env: NodeJS.ProcessEnv, match: RegExp, signal: NodeJS.Signals): Promise<{ code: number | null; sig: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: testEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    if (!sent && match.test(buf)) {
      sent = true;
      process.kill(child.pid!, signal);
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (c, s) => r([c, s])));
  clearTimeout(timer);
  assert.ok(sent, `the run finished before it could be interrupted:\n${buf}\n${stderr}`);
  return { code, sig, stderr };
}

describe('interrupted pack and push', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let dir: string;
  const images: BuiltImage[] = [];

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-interrupt-'));
    for (let i = 0; i < 4; i++) {
      images.push(buildImage({ layers: [{ random: { bytes: 12 * MiB, seed: 100 + i } }, { random: { bytes: 6 * MiB, seed: 200 + i } }], workDir: join(dir, 'layers') }));
      await seedRegistry(src.url, `big/app${i}`, '1', images[i]!);
    }
    await writeFile(join(dir, 'airlock.yaml'), `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: big, version: '1'}\nimages:\n${images.map((_, i) => `  - ${src.host}/big/app${i}:1\n`).join('')}`);
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('Ctrl-C during pack: exit 130, no bundle, and the next pack resumes from the cache', async () => {
    // Interrupted once a 12 MiB layer is done: the next pack must not fetch it again.
    const env = { AIRLOCK_CACHE: join(dir, 'cache') };
    const lock = await airlock(['lock', '-f', join(dir, 'airlock.yaml')], { env });
    assert.equal(lock.code, 0, lock.stderr);
    const run = await interruptAfter(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'big.tar'), '--json', '--concurrency', '1'], env, /"type":"blob-done"[^\n]*"size":\d{8,}/, 'SIGINT');
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /interrupted/);
    await assert.rejects(stat(join(dir, 'big.tar')), { code: 'ENOENT' }, 'no bundle at the output path');
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('big.tar')), [], 'no temp file beside it');
    const again = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'big.tar'), '--json'], { env });
    assert.equal(again.code, 0, again.stderr);
    const res = resultOf(again.stdout);
    assert.ok(res.downloaded < res.size - 12 * MiB, `resumed: downloaded ${res.downloaded} of ${res.size}`);
    const v = await airlock(['verify', join(dir, 'big.tar')]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test('a push killed with SIGKILL completes when rerun, every digest kept', async () => {
    const killed = await interruptAfter(['push', join(dir, 'big.tar'), dst.host, '--json', '--concurrency', '1'], {}, /"type":"blob-done"/, 'SIGKILL');
    assert.equal(killed.sig, 'SIGKILL');
    const again = await airlock(['push', join(dir, 'big.tar'), dst.host, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const res = resultOf(again.stdout);
    const skipped = (res.images as { blobs: { exists: number } }[]).reduce((a, i) => a + i.blobs.exists, 0);
    assert.ok(skipped >= 1, 'what the killed run pushed is not sent again');
    for (let i = 0; i < images.length; i++) {
      const r = await fetch(`${dst.url}/v2/big/app${i}/manifests/1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(r.headers.get('docker-content-digest'), images[i]!.root.digest);
    }
  });
});
