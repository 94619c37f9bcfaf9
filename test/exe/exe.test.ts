// The single executables as a new user meets them: `npm run build:exe` (scripts/build-exe.ts) into
// a temp folder; the amd64 one copied alone into an empty folder outside the repository and run
// with nothing but HOME in its environment (no PATH, so no Node; HOME only keeps its cache and
// history out of this machine's home): version, help, lock and pack from a real docker-registry,
// verify (on worker threads: the bundle is over the threshold), inspect, serve with skopeo pulling
// every image, push, export k3s, helm's post-renderer through the plugin it installs, and the
// sandbox, whose helpers are the executable itself. The arm64 one runs under qemu user-mode
// emulation: version, verify, inspect. A second build gives the same bytes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, buildIndex, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { runBounded, type RunResult } from '../helpers/run.ts';
import { startServe } from '../helpers/serve.ts';
import { skopeo, skopeoDigest } from '../helpers/skopeo.ts';
import { helmPath } from '../helpers/helm.ts';
import { imagesOutside } from '../../src/rewrite/post-render.ts';
import { parseTarget } from '../../src/rewrite/mapping.ts';
import { MANIFEST_MEDIA_TYPES } from '../../src/core/media-types.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILD = join(ROOT, 'scripts', 'build-exe.ts');
const FIX = join(ROOT, 'test', 'fixtures', 'rewrite');
const QEMU = '/usr/bin/qemu-aarch64-static';
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const text = (r: RunResult): Run => ({ code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr });
const resultLine = (stdout: string): Record<string, any> => {
  const line = stdout.split('\n').find((l) => l.startsWith('{"type":"result"'));
  if (!line) throw new Error(`no result line in:\n${stdout}`);
  return JSON.parse(line) as Record<string, any>;
};

async function build(outDir: string): Promise<Record<string, string>> {
  // --offline: the pinned Node binaries come from the cache scripts/setup.sh fills; a test reaches nothing beyond this machine.
  const r = await runBounded(process.execPath, [BUILD, '--out-dir', outDir, '--offline'], { cwd: ROOT, timeoutMs: 240_000, install: 'npm ci' });
  assert.equal(r.code, 0, `build-exe failed:\n${r.stderr}`);
  const sums = await readFile(join(outDir, 'SHA256SUMS'), 'utf8');
  return Object.fromEntries(sums.trim().split('\n').map((l) => l.split(/ {2}/).reverse() as [string, string]));
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

describe('the single executables', () => {
  let work: string;
  let out1: string;
  let bin: string;
  let exePath: string;
  let arm64Path: string;
  let home: string;
  let sums1: Record<string, string>;
  let secondBuild: Promise<Record<string, string>>;
  let src: RunningRegistry;
  let dst: RunningRegistry;
  const images: Record<string, BuiltImage> = {};

  /** The executable, in the folder it was copied to alone, with only HOME in its environment. */
  const exe = async (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> => text(await runBounded(exePath, args, { cwd: work, env: { HOME: home, ...extraEnv }, timeoutMs: 120_000, install: 'npm run build:exe' }));
  /** The arm64 executable under qemu user-mode emulation, the arm64 C libraries as its sysroot. */
  const arm64 = async (args: string[]): Promise<Run> => text(await runBounded(QEMU, [arm64Path, ...args], { cwd: work, env: { HOME: home, QEMU_LD_PREFIX: ARM64_SYSROOT }, timeoutMs: 180_000, install: 'apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross (scripts/setup.sh)' }));

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'airlock-exe-'));
    out1 = join(work, 'build1');
    bin = join(work, 'bin');
    home = join(work, 'home');
    await Promise.all([mkdir(bin), mkdir(join(work, 'arm64')), mkdir(home)]);
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    sums1 = await build(out1);
    // The second build runs while the executables are put through their paces.
    secondBuild = build(join(work, 'build2'));
    secondBuild.catch(() => {});
    exePath = join(bin, 'airlock');
    arm64Path = join(work, 'arm64', 'airlock-linux-arm64');
    await Promise.all([copyFile(join(out1, 'airlock-linux-amd64'), exePath), copyFile(join(out1, 'airlock-linux-arm64'), arm64Path)]);

    const base = { random: { bytes: 2 * MiB, seed: 1 } };
    images.web = buildImage({ layers: [base, { files: { 'srv/index.html': '<h1>shop</h1>' } }] });
    images.multi = buildIndex([
      buildImage({ layers: [base, { files: { 'etc/arch': 'amd64' } }], platform: 'linux/amd64' }),
      buildImage({ layers: [{ files: { 'etc/arch': 'arm64' } }], platform: 'linux/arm64' }),
    ]);
    // Over verify's 64 MiB threshold for hashing on worker threads.
    images.big = buildImage({ layers: [{ random: { bytes: 66 * MiB, seed: 7 } }], workDir: join(work, 'layers') });
    await Promise.all([seedRegistry(src.url, 'shop/web', '1.0', images.web), seedRegistry(src.url, 'shop/multi', '3', images.multi), seedRegistry(src.url, 'shop/big', '2', images.big)]);
    const spec = (name: string, refs: string[]) => ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', `metadata: {name: ${name}, version: 1.0.0}`, 'images:', ...refs.map((r) => `  - ${src.host}/${r}`), ''].join('\n');
    await mkdir(join(work, 'small'));
    await writeFile(join(work, 'airlock.yaml'), spec('shop', ['shop/web:1.0', 'shop/multi:3', 'shop/big:2']));
    await writeFile(join(work, 'small', 'airlock.yaml'), spec('small', ['shop/web:1.0', 'shop/multi:3']));
  });

  after(async () => {
    await secondBuild?.catch(() => undefined);
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('the build writes both executables and SHA256SUMS that sha256sum -c accepts; nothing of the build machine inside', async () => {
    assert.deepEqual(Object.keys(sums1).sort(), ['airlock-linux-amd64', 'airlock-linux-arm64']);
    const check = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out1, encoding: 'utf8' });
    assert.match(check, /airlock-linux-amd64: OK\nairlock-linux-arm64: OK/);
    for (const f of Object.keys(sums1)) {
      const s = await stat(join(out1, f));
      assert.ok(s.mode & 0o100, `${f} is executable`);
      assert.ok(s.size > 50 * MiB && s.size < 200 * MiB, `${f}: ${s.size} bytes`);
    }
    const bytes = await readFile(join(out1, 'airlock-linux-amd64'));
    assert.equal(bytes.indexOf(ROOT), -1, 'no path of the checkout in the executable');
    // The build's folders and this test's are all airlock-exe-* in the temp folder.
    assert.equal(bytes.indexOf(join(tmpdir(), 'airlock-exe-')), -1, 'no path of a build folder in the executable');
  });

  test('alone, with an empty environment: --version, version --json, --help', async () => {
    assert.deepEqual(await readdir(bin), ['airlock'], 'nothing beside it');
    const v = await exe(['--version']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^airlock \d+\.\d+\.\d+\n {2}commit {4}\S+.*\n {2}platform {2}linux\/amd64, single executable\n {2}node {6}24\./);
    const j = await exe(['version', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const info = resultLine(j.stdout);
    const pins = JSON.parse(await readFile(join(ROOT, 'scripts', 'node-binaries.json'), 'utf8')) as { version: string };
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.deepEqual({ name: info.name, version: info.version, from: info.from, platform: info.platform, node: info.node }, { name: 'airlock', version: pkg.version, from: 'executable', platform: 'linux/amd64', node: pins.version });
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    assert.equal(info.commit, head, 'the commit it was built from');
    assert.equal(info.dirty, execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '');
    const h = await exe(['--help']);
    assert.equal(h.code, 0, h.stderr);
    for (const name of ['lock', 'pack', 'verify', 'serve', 'push', 'export', 'post-render', 'helm-plugin', 'sandbox', 'version']) assert.match(h.stdout, new RegExp(`^ {2}${name} +\\S`, 'm'), name);
    const vh = await exe(['verify', '--help']);
    assert.match(vh.stdout, /^Usage: airlock verify BUNDLE/);
  });

  describe('from a local registry to the isolated side', () => {
    before(async () => {
      const lock = await exe(['lock', '-f', join(work, 'airlock.yaml')]);
      assert.equal(lock.code, 0, lock.stderr);
      const pack = await exe(['pack', '-f', join(work, 'airlock.yaml'), '-o', join(work, 'shop.tar'), '--json']);
      assert.equal(pack.code, 0, pack.stderr);
      assert.equal(resultLine(pack.stdout).images, 3);
      const small = await exe(['pack', '--lock', '-f', join(work, 'small', 'airlock.yaml'), '-o', join(work, 'small.tar')]);
      assert.equal(small.code, 0, small.stderr);
    });

    test('verify hashes on worker threads: OK, and a flipped byte in the big layer is named', async () => {
      assert.ok(availableParallelism() > 1, 'verify hashes on worker threads only with more than one core');
      assert.ok((await stat(join(work, 'shop.tar'))).size > 64 * MiB, 'the bundle is over the threshold for threads');
      // Node's own debug log tells the workers started (an executable honours NODE_DEBUG like node).
      const ok = await exe(['verify', join(work, 'shop.tar')], { NODE_DEBUG: 'worker' });
      assert.equal(ok.code, 0, ok.stderr + ok.stdout);
      assert.match(ok.stdout, /shop\.tar: OK, \d+ blobs/);
      assert.match(ok.stderr, /created Worker with ID 1/, 'hashed on worker threads');
      const bad = join(work, 'bad.tar');
      const bytes = await readFile(join(work, 'shop.tar'));
      const layer = images.big!.blobs.find((b) => b.descriptor.size > 64 * MiB)!.descriptor.digest;
      const at = bytes.indexOf(`blobs/sha256/${layer.slice('sha256:'.length)}`);
      bytes[at + 512 + 40 * MiB]! ^= 0xff;
      await writeFile(bad, bytes);
      const r = await exe(['verify', bad]);
      assert.equal(r.code, 5, r.stderr + r.stdout);
      assert.match(r.stdout, new RegExp(`${layer}.*shop/big:2`));
    });

    test('inspect lists every image', async () => {
      const r = await exe(['inspect', join(work, 'shop.tar'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const got = new Map((resultLine(r.stdout).images as { reference: string; digest: string }[]).map((i) => [i.reference, i.digest]));
      assert.equal(got.get(`${src.host}/shop/web:1.0`), images.web!.root.digest);
      assert.equal(got.get(`${src.host}/shop/multi:3`), images.multi!.root.digest);
      assert.equal(got.get(`${src.host}/shop/big:2`), images.big!.root.digest);
    });

    test('serve: skopeo pulls every image with its digest', async () => {
      const srv = await startServe([join(work, 'shop.tar'), '--listen', '127.0.0.1:0'], { program: { path: exePath, env: { HOME: home }, cwd: work } });
      try {
        for (const [ref, img] of [['shop/web:1.0', images.web!], ['shop/multi:3', images.multi!], ['shop/big:2', images.big!]] as const) {
          assert.equal(await skopeoDigest(`docker://${srv.host}/${ref}`), img.root.digest, ref);
          await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${srv.host}/${ref}`, `oci:${join(work, 'pulled')}:${ref.replace(/[/:]/g, '-')}`]);
        }
        const index = JSON.parse(await readFile(join(work, 'pulled', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
        assert.deepEqual(index.manifests.map((m) => m.digest).sort(), [images.web!, images.multi!, images.big!].map((i) => i.root.digest).sort());
      } finally {
        assert.equal(await srv.stop(), 0, srv.stderr());
      }
    });

    test('push puts every image into a registry with its digest', async () => {
      const r = await exe(['push', join(work, 'shop.tar'), `${dst.host}/mirror`]);
      assert.equal(r.code, 0, r.stderr);
      for (const [repo, tag, img] of [['shop/web', '1.0', images.web!], ['shop/multi', '3', images.multi!], ['shop/big', '2', images.big!]] as const) {
        const res = await fetch(`${dst.url}/v2/mirror/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') } });
        assert.equal(res.headers.get('docker-content-digest'), img.root.digest, `${repo}:${tag}`);
      }
    });

    test('export k3s writes one OCI archive per image', async () => {
      const out = join(work, 'k3s');
      const r = await exe(['export', 'k3s', join(work, 'small.tar'), out, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const files = (resultLine(r.stdout).files as { path: string; images: string[] }[]).map((f) => f.images).flat().sort();
      assert.deepEqual(files, [`${src.host}/shop/multi:3`, `${src.host}/shop/web:1.0`]);
      for (const f of await readdir(out)) {
        const names = execFileSync('tar', ['-tf', join(out, f)], { encoding: 'utf8' }).split('\n');
        assert.ok(names.includes('index.json') && names.includes('oci-layout'), `${f} is an OCI archive`);
      }
    });

    test('the arm64 executable under qemu: --version, verify, inspect', async () => {
      assert.ok(existsSync(QEMU), `${QEMU} is missing: the arm64 executable cannot be run here (apt-get install qemu-user-static, as scripts/setup.sh does)`);
      assert.ok(existsSync(join(ARM64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1')), `${ARM64_SYSROOT} has no arm64 C library (apt-get install libc6-arm64-cross libstdc++6-arm64-cross, as scripts/setup.sh does)`);
      const v = await arm64(['version', '--json']);
      assert.equal(v.code, 0, v.stderr);
      assert.deepEqual({ platform: resultLine(v.stdout).platform, from: resultLine(v.stdout).from }, { platform: 'linux/arm64', from: 'executable' });
      const ok = await arm64(['verify', join(work, 'small.tar')]);
      assert.equal(ok.code, 0, ok.stderr + ok.stdout);
      assert.match(ok.stdout, /small\.tar: OK, \d+ blobs/);
      const i = await arm64(['inspect', join(work, 'small.tar'), '--json']);
      assert.equal(i.code, 0, i.stderr);
      assert.deepEqual((resultLine(i.stdout).images as { reference: string }[]).map((x) => x.reference).sort(), [`${src.host}/shop/multi:3`, `${src.host}/shop/web:1.0`]);
    });
  });

  test('the bundle carries the tool: pack --with-tools from the executable, tar -xf it, run it; a flipped byte of it is named', async () => {
    const out = join(work, 'carry');
    await mkdir(out);
    // The executable carries itself for its own platform and the arm64 one from the build folder.
    const pack = await exe(['pack', '--lock', '-f', join(work, 'small', 'airlock.yaml'), '-o', join(out, 'b.tar'), '--with-tools', '--tools-platform', 'linux/amd64,linux/arm64', '--tools-helm', helmPath(), '--json'], { AIRLOCK_TOOLS_DIR: out1 });
    assert.equal(pack.code, 0, pack.stderr);
    const tools = resultLine((await exe(['inspect', join(out, 'b.tar'), '--json'])).stdout).tools as { path: string; sha256: string }[];
    assert.deepEqual(tools.map((t) => t.path), ['airlock/tools/linux-amd64/airlock', 'airlock/tools/linux-amd64/helm', 'airlock/tools/linux-arm64/airlock']);
    // On the other side, with nothing installed: tar, then the tool itself.
    execFileSync('tar', ['-xf', 'b.tar', 'airlock/tools/linux-amd64/airlock'], { cwd: out });
    const carried = join(out, 'airlock', 'tools', 'linux-amd64', 'airlock');
    assert.equal(await sha256(carried), sums1['airlock-linux-amd64'], 'the carried executable is the one built');
    const verified = text(await runBounded(carried, ['verify', join(out, 'b.tar')], { cwd: out, env: { HOME: home }, timeoutMs: 120_000, install: 'npm run build:exe' }));
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);
    assert.match(verified.stdout, /b\.tar: OK/);
    const bytes = await readFile(join(out, 'b.tar'));
    // The entry's tar header (the path also stands in the inventory): the one on a 512-byte boundary.
    let at = bytes.indexOf('airlock/tools/linux-arm64/airlock');
    while (at % 512 !== 0) at = bytes.indexOf('airlock/tools/linux-arm64/airlock', at + 1);
    bytes[at + 512 + 1000]! ^= 0xff;
    await writeFile(join(out, 'bad.tar'), bytes);
    const bad = await exe(['verify', join(out, 'bad.tar')]);
    assert.equal(bad.code, 5, bad.stderr + bad.stdout);
    assert.match(bad.stdout, /airlock\/tools\/linux-arm64\/airlock: digest mismatch/);
  });

  test('helm post-renders through the plugin the executable installs', async () => {
    const helmEnv = { HOME: home, HELM_PLUGINS: join(work, 'plugins'), HELM_DATA_HOME: join(work, 'helm-data'), HELM_CONFIG_HOME: join(work, 'helm-config'), HELM_CACHE_HOME: join(work, 'helm-cache') };
    const inst = await exe(['helm-plugin', 'install', '--plugins-dir', helmEnv.HELM_PLUGINS, '--json']);
    assert.equal(inst.code, 0, inst.stderr);
    assert.deepEqual(resultLine(inst.stdout).command, [exePath, 'post-render'], 'the plugin runs the executable itself');
    const registry = '127.0.0.1:5000/mirror';
    const r = text(await runBounded(helmPath(), ['template', join(FIX, 'platform'), '--post-renderer', 'airlock-postrender', '--post-renderer-args', `--registry=${registry}`], { env: helmEnv, timeoutMs: 60_000, install: 'scripts/install-helm.sh' }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /image: "?127\.0\.0\.1:5000\/mirror\//);
    assert.deepEqual(imagesOutside(r.stdout, parseTarget(registry)), []);
  });

  test('the sandbox runs its helpers as the executable itself', { skip: isRoot ? false : 'needs root (network namespaces, nftables)' }, async () => {
    const r = await exe(['sandbox', '--json', '--', exePath, 'version']);
    assert.equal(r.code, 0, r.stderr);
    const report = resultLine(r.stdout);
    assert.deepEqual({ exitCode: report.exitCode, attempted: report.attempted, dns: report.dns, connections: report.connections }, { exitCode: 0, attempted: false, dns: [], connections: [] });
    assert.match(r.stderr, /platform {2}linux\/amd64, single executable/, 'the command ran in the sandbox');
  });

  test('a second build gives the same bytes', async () => {
    const sums2 = await secondBuild;
    assert.deepEqual(sums2, sums1);
    assert.equal(await sha256(join(work, 'build2', 'airlock-linux-amd64')), sums1['airlock-linux-amd64']);
  });
});
