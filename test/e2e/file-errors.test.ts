// Ordinary file-system trouble, as a user meets it: a path through a file, a folder or a FIFO where
// the bundle should go, a read-only folder, a full disk. Each is a clear error naming the path with
// its own exit code, never "internal error"; nothing half-written is left, an old file is untouched.
// The read-only folder and the full disk are real tmpfs mounts in a private mount namespace (the CI
// runs as root, so permissions alone would not stop a write); skipped without root or unshare.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry } from '../helpers/images.ts';
import { airlock, jsonLines, testEnv } from '../helpers/cli.ts';
import { runBounded } from '../helpers/run.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Why tmpfs mounts cannot be made here, or undefined when they can. */
function mountUnsupported(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs in a private mount namespace';
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$1"', 'sh', tmpdir()], { stdio: 'ignore', timeout: 10_000 });
  if (probe.error) return `unshare is not available (${probe.error.message})`;
  return probe.status === 0 ? undefined : 'unshare -m / mount -t tmpfs refused here';
}

// Inside the namespace: mount the tmpfs, put an old bundle there, maybe make it read-only, run
// airlock, then record what the folder holds, all before the mount vanishes with the namespace.
const SCRIPT = `set -e
mount -t tmpfs -o "size=$AL_SIZE,mode=0755" tmpfs "$AL_DIR"
printf %s "$AL_OLD" > "$AL_DIR/b.tar"
if [ "$AL_RO" = 1 ]; then mount -o remount,ro "$AL_DIR"; fi
set +e
"$@" > "$AL_OUT/stdout" 2> "$AL_OUT/stderr"
echo $? > "$AL_OUT/code"
ls -A "$AL_DIR" > "$AL_OUT/listing"
cat "$AL_DIR/b.tar" > "$AL_OUT/target"
`;

describe('file-system failures are clear user errors', () => {
  let reg: RunningRegistry;
  let dir: string;
  const unsupported = mountUnsupported();
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });
  const spec = (): string => join(dir, 'app', 'airlock.yaml');

  before(async () => {
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'airlock-fserr-'));
    // 2 MiB of incompressible bytes: more than the 1 MiB disk of the full-disk case.
    await seedRegistry(reg.url, 'team/big', '1', buildImage({ layers: [{ random: { bytes: 2 * 1024 * 1024, seed: 7 } }] }));
    await mkdir(join(dir, 'app'));
    await writeFile(spec(), ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: big, version: 1.0.0}', 'images:', `  - ${reg.host}/team/big:1`, ''].join('\n'));
    const locked = await airlock(['lock', '-f', spec()], { env: env() });
    assert.equal(locked.code, 0, locked.stderr);
  });

  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** `airlock pack -o MOUNT/b.tar --json` on a fresh tmpfs holding an old b.tar. */
  async function packOnMount(opts: { size: string; readOnly?: boolean }): Promise<{ code: number; stdout: string; stderr: string; listing: string[]; target: string; mount: string }> {
    const mount = await mkdtemp(join(dir, 'mnt-'));
    const out = await mkdtemp(join(dir, 'out-'));
    const r = await runBounded('unshare', ['-m', 'sh', '-c', SCRIPT, 'sh', process.execPath, MAIN, 'pack', '--json', '-f', spec(), '-o', join(mount, 'b.tar')], {
      timeoutMs: 120_000,
      env: testEnv({ ...env(), AL_DIR: mount, AL_OUT: out, AL_SIZE: opts.size, AL_OLD: 'the old bundle', AL_RO: opts.readOnly ? '1' : '0' }),
      install: 'util-linux provides unshare',
    });
    assert.equal(r.code, 0, `the namespace script failed: ${r.stderr}`);
    const read = (name: string): Promise<string> => readFile(join(out, name), 'utf8');
    return {
      code: Number((await read('code')).trim()),
      stdout: await read('stdout'),
      stderr: await read('stderr'),
      listing: (await read('listing')).split('\n').filter((l) => l !== ''),
      target: await read('target'),
      mount: join(mount, 'b.tar'),
    };
  }

  test('keygen -o under a path whose parent is a file: exit 2, the file named, nothing written', async () => {
    const d = await mkdtemp(join(dir, 'keys-'));
    await writeFile(join(d, 'F'), 'a file, not a folder');
    const r = await airlock(['keygen', '-o', join(d, 'F', 'site')], { env: env() });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`airlock: error: cannot write ${join(d, 'F', 'site')}\\.key: ${join(d, 'F')} is a file, not a directory`));
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.deepEqual(await readdir(d), ['F']);
    assert.equal(await readFile(join(d, 'F'), 'utf8'), 'a file, not a folder');
  });

  test('pack -o a folder or a FIFO: exit 2 naming it, nothing written beside it', async () => {
    const d = await mkdtemp(join(dir, 'targets-'));
    await mkdir(join(d, 'b.tar'));
    const folder = await airlock(['pack', '-f', spec(), '-o', join(d, 'b.tar')], { env: env() });
    assert.equal(folder.code, 2, folder.stderr);
    assert.match(folder.stderr, new RegExp(`cannot write ${join(d, 'b.tar')}: it is a directory`));
    execFileSync('mkfifo', [join(d, 'fifo.tar')]);
    const fifo = await airlock(['pack', '-f', spec(), '-o', join(d, 'fifo.tar')], { env: env() });
    assert.equal(fifo.code, 2, fifo.stderr);
    assert.match(fifo.stderr, new RegExp(`cannot write ${join(d, 'fifo.tar')}: it is a FIFO \\(named pipe\\), not a regular file`));
    assert.deepEqual((await readdir(d)).sort(), ['b.tar', 'fifo.tar']);
  });

  test('pack -o into a read-only folder: exit 9 naming the bundle, the old one untouched', { skip: unsupported }, async () => {
    const r = await packOnMount({ size: '4m', readOnly: true });
    assert.equal(r.code, 9, r.stderr);
    assert.match(r.stderr, new RegExp(`airlock: error: cannot write ${r.mount}: read-only file system`));
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.deepEqual(r.listing, ['b.tar']);
    assert.equal(r.target, 'the old bundle');
  });

  test('pack onto a full disk: exit 9 (NO_SPACE), no temp file left, the old bundle untouched', { skip: unsupported }, async () => {
    const r = await packOnMount({ size: '1m' });
    assert.equal(r.code, 9, r.stderr);
    // Refused before writing when the file system says it has too little room; else when a write finds the disk full.
    assert.match(r.stderr, new RegExp(`airlock: error: cannot write ${r.mount}: (no space left on the device|it needs [0-9.]+ MiB and .* has [0-9.]+ KiB free)`));
    const error = jsonLines(r.stdout).find((l) => l.type === 'error');
    assert.deepEqual([error?.code, error?.exitCode], ['NO_SPACE', 9]);
    assert.deepEqual(r.listing, ['b.tar']);
    assert.equal(r.target, 'the old bundle');
  });
});
