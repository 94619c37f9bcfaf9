// The bundle carries the tool, as a user runs it: `pack --with-tools` from a real registry with
// stand-in executables (the format does not care what the bytes are; the amd64 one runs this very
// CLI) in $AIRLOCK_TOOLS_DIR and the pinned helm of the checkout; the same bytes twice; the README's
// check with only tar, openssl and sha256sum, then the extracted tool verifying the bundle; inspect
// listing the tools; verify naming a damaged one (exit 5); serve offering them to curl, never sending
// a damaged one whole; a platform without its executable refused before any download (exit 3);
// `tools:` in airlock.yaml; and no change for a pack that does not ask for tools.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry } from '../helpers/images.ts';
import { airlock, resultOf, testEnv } from '../helpers/cli.ts';
import { startServe } from '../helpers/serve.ts';
import { helmPath } from '../helpers/helm.ts';
import { openBundle } from '../../src/bundle/index.ts';
import { runningPlatform } from '../../src/tools/platforms.ts';

const exec = promisify(execFile);
const MiB = 1024 * 1024;
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const AMD64 = 'airlock/tools/linux-amd64/airlock';
const ARM64 = 'airlock/tools/linux-arm64/airlock';
const HELM = 'airlock/tools/linux-amd64/helm';

const sha = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');
const shaOf = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Flip one byte of a tar entry's content in place. */
async function flipEntryByte(bundle: string, name: string, at: number): Promise<void> {
  const b = await openBundle(bundle);
  const e = b.entries.get(name)!;
  await b.close();
  const fh = await open(bundle, 'r+');
  const byte = Buffer.alloc(1);
  await fh.read(byte, 0, 1, e.offset + at);
  byte[0]! ^= 0xff;
  await fh.write(byte, 0, 1, e.offset + at);
  await fh.close();
}

/** curl as a user runs it: exit code, status, the body it kept. */
function curl(url: string, extra: string[] = []): Promise<{ exit: number; status: number; body: Buffer; headers: string }> {
  return new Promise((resolve) => {
    const headersFile = join(tmpdir(), `airlock-curl-${process.pid}-${Math.random().toString(16).slice(2)}`);
    execFile('curl', ['-sS', '--max-time', '60', '-D', headersFile, '-o', '-', '-w', '\n%{http_code}', ...extra, url], { encoding: 'buffer', maxBuffer: 128 * MiB }, (err, stdout) => {
      const nl = stdout.lastIndexOf(0x0a);
      void readFile(headersFile, 'utf8')
        .catch(() => '')
        .then(async (headers) => {
          await rm(headersFile, { force: true });
          resolve({ exit: err ? Number((err as { code?: number }).code ?? 1) : 0, status: Number(stdout.subarray(nl + 1).toString()), body: stdout.subarray(0, nl), headers });
        });
    });
  });
}

/** The README's block of commands that checks a carried tool with tar, openssl and sha256sum only. */
async function readmeCheck(): Promise<string> {
  const text = await readFile(README, 'utf8');
  const at = text.indexOf('On the other side, with nothing installed');
  const start = text.indexOf('```sh\n', at);
  const end = text.indexOf('```', start + 6);
  assert.ok(at >= 0 && start > at && end > start, 'the README shows the check');
  return text.slice(start + 6, end);
}

describe('the bundle carries the tool', () => {
  let reg: RunningRegistry;
  let dir: string;
  let toolsDir: string;
  let amd64: Buffer;
  let arm64: Buffer;
  let bundle: string;
  const env = (more: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '', AIRLOCK_TOOLS_DIR: toolsDir, ...more });
  const run = (args: string[], more: NodeJS.ProcessEnv = {}) => airlock(args, { env: env(more), timeoutMs: 240_000 });
  const spec = (name: string, extra: string[] = []): Promise<string> =>
    writeFile(join(dir, name), ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: shop, version: 1.0.0}', 'images:', `  - ${reg.host}/shop/web:1`, `  - ${reg.host}/shop/api:1`, ...extra, ''].join('\n')).then(() => join(dir, name));

  before(async () => {
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'airlock-tools-e2e-'));
    toolsDir = join(dir, 'tools');
    await mkdir(toolsDir);
    await seedRegistry(reg.url, 'shop/web', '1', buildImage({ layers: [{ random: { bytes: 300 * 1024, seed: 71 } }] }));
    await seedRegistry(reg.url, 'shop/api', '1', buildImage({ layers: [{ files: { 'etc/api.conf': 'port=8080\n' } }] }));
    // The amd64 stand-in runs this CLI (so the extracted tool really verifies); it is padded past
    // 1 MiB, so serve streams it and holds back its last chunk for the check.
    const env = testEnv();
    amd64 = Buffer.concat([
      Buffer.from(`#!/bin/sh\nAIRLOCK_STATE='${env.AIRLOCK_STATE}' exec '${process.execPath}' '${MAIN}' "$@"\n`),
      Buffer.alloc(2 * MiB, 0x23),
    ]);
    arm64 = Buffer.from('#!/bin/sh\necho "stand-in airlock for linux/arm64"\n');
    await writeFile(join(toolsDir, 'airlock-linux-amd64'), amd64, { mode: 0o755 });
    await writeFile(join(toolsDir, 'airlock-linux-arm64'), arm64, { mode: 0o755 });
    const r = await run(['lock', '-f', await spec('airlock.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    const k = await run(['keygen', '-o', join(dir, 'site')]);
    assert.equal(k.code, 0, k.stderr);
    bundle = join(dir, 'shop.tar');
  });
  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('pack --with-tools for two platforms: the executables and the pinned helm, listed and signed, the same bytes twice', async () => {
    const args = ['pack', '-f', join(dir, 'airlock.yaml'), '--with-tools', '--tools-platform', 'linux/amd64,linux/arm64', '--sign', join(dir, 'site.key')];
    const p = await run([...args, '-o', bundle, '--json']);
    assert.equal(p.code, 0, p.stderr);
    const res = resultOf(p.stdout);
    assert.deepEqual(
      res.tools.map((t: Record<string, unknown>) => [t.path, t.size, t.digest]),
      [
        [AMD64, amd64.length, `sha256:${shaOf(amd64)}`],
        [HELM, (await stat(helmPath())).size, `sha256:${await sha(helmPath())}`],
        [ARM64, arm64.length, `sha256:${shaOf(arm64)}`],
      ],
    );
    // Repeated flags say the same; packed from the cache: the same bytes.
    const again = await run(['pack', '-f', join(dir, 'airlock.yaml'), '--tools-platform', 'linux/arm64', '--tools-platform', 'linux/amd64', '--sign', join(dir, 'site.key'), '-o', join(dir, 'again.tar')]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout + again.stderr, /carries linux\/amd64 \(airlock, helm\), linux\/arm64 \(airlock\): extract one with `tar -xf again\.tar airlock\/tools\/linux-amd64\/airlock`/);
    assert.equal(await sha(join(dir, 'again.tar')), await sha(bundle));
    const v = await run(['verify', bundle, '--key', join(dir, 'site.pub')]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /OK, \d+ blobs, 3 tools, /);
  });

  test('the README check: tar, openssl and sha256sum prove the tool, which then verifies the bundle; a damaged tool never runs', async () => {
    const script = await readmeCheck();
    const work = join(dir, 'isolated');
    await mkdir(work);
    await copyFile(bundle, join(work, 'shop.tar'));
    await copyFile(join(dir, 'site.pub'), join(work, 'site.pub'));
    const { stdout } = await exec('sh', ['-eu', '-c', script], { cwd: work, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    assert.match(stdout, /Signature Verified Successfully/);
    assert.match(stdout, /^airlock\/tools\/linux-amd64\/airlock: OK$/m);
    assert.match(stdout, /shop\.tar: OK, \d+ blobs, 3 tools, .*\nsigned by key sha256:[0-9a-f]{64} \(ed25519\): verified with the key given/);
    const st = await stat(join(work, AMD64));
    assert.equal(st.mode & 0o777, 0o755);
    assert.deepEqual(await readFile(join(work, AMD64)), amd64);

    const bad = join(dir, 'isolated-bad');
    await mkdir(bad);
    await copyFile(bundle, join(bad, 'shop.tar'));
    await copyFile(join(dir, 'site.pub'), join(bad, 'site.pub'));
    await flipEntryByte(join(bad, 'shop.tar'), AMD64, 100);
    const failed = await exec('sh', ['-eu', '-c', script], { cwd: bad, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }).then(
      () => assert.fail('the check passed a damaged tool'),
      (e: { code: number; stdout: string }) => e,
    );
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /^airlock\/tools\/linux-amd64\/airlock: FAILED$/m);
    assert.doesNotMatch(failed.stdout, /OK, \d+ blobs/, 'the damaged tool did not run');
  });

  test('inspect lists the carried tools, as text and --json', async () => {
    const t = await run(['inspect', bundle]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`^TOOL +PLATFORM +SIZE +SHA256\\nairlock +linux/amd64 +[\\d.]+ MiB +${shaOf(amd64)}\\nhelm +linux/amd64 +[\\d.]+ MiB +[0-9a-f]{64}\\nairlock +linux/arm64 +${arm64.length} B +${shaOf(arm64)}$`, 'm'));
    assert.match(t.stdout, /extract one with `tar -xf shop\.tar airlock\/tools\/linux-amd64\/airlock`/);
    const j = await run(['inspect', bundle, '--json']);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(
      resultOf(j.stdout).tools.map((x: Record<string, unknown>) => [x.platform, x.name, x.size, x.digest]),
      [
        ['linux/amd64', 'airlock', amd64.length, `sha256:${shaOf(amd64)}`],
        ['linux/amd64', 'helm', (await stat(helmPath())).size, `sha256:${await sha(helmPath())}`],
        ['linux/arm64', 'airlock', arm64.length, `sha256:${shaOf(arm64)}`],
      ],
    );
  });

  test('a byte flipped in a carried tool: verify names it and exits 5', async () => {
    const flipped = join(dir, 'flipped.tar');
    await copyFile(bundle, flipped);
    await flipEntryByte(flipped, ARM64, 5);
    const v = await run(['verify', flipped, '--key', join(dir, 'site.pub')]);
    assert.equal(v.code, 5, v.stdout + v.stderr);
    assert.match(v.stdout, /1 problem\n {2}airlock\/tools\/linux-arm64\/airlock: digest mismatch: the content hashes to sha256:[0-9a-f]{64}, the inventory says sha256:/);
  });

  test('serve offers the tools: the exact bytes with their headers, a list, 404 for others; a damaged one is never sent whole', async () => {
    const damaged = join(dir, 'damaged.tar');
    await copyFile(bundle, damaged);
    await flipEntryByte(damaged, AMD64, amd64.length - 10);
    await flipEntryByte(damaged, ARM64, 3);
    const srv = await startServe([bundle, '--listen', '127.0.0.1:0'], { env: env() });
    const bad = await startServe([damaged, '--listen', '127.0.0.1:0'], { env: env() });
    try {
      assert.deepEqual(srv.listening.tools.map((t: { url: string }) => t.url), [`${srv.url}/tools/linux-amd64/airlock`, `${srv.url}/tools/linux-amd64/helm`, `${srv.url}/tools/linux-arm64/airlock`]);
      const got = await curl(`${srv.url}/tools/linux-amd64/airlock`);
      assert.equal(got.exit, 0);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(amd64), 'the exact bytes');
      assert.match(got.headers, new RegExp(`^content-length: ${amd64.length}\\r$`, 'mi'));
      assert.match(got.headers, /^content-type: application\/octet-stream\r$/mi);
      assert.match(got.headers, /^content-disposition: attachment; filename="airlock"\r$/mi);
      const helm = await curl(`${srv.url}/tools/linux-amd64/helm`);
      assert.equal(helm.status, 200);
      assert.equal(shaOf(helm.body), await sha(helmPath()));
      assert.ok((await curl(`${srv.url}/tools/linux-arm64/airlock`)).body.equals(arm64));
      const list = JSON.parse((await curl(`${srv.url}/tools/`)).body.toString()) as { tools: { url: string; digest: string; platform: string; name: string; size: number }[] };
      assert.deepEqual(list.tools.map((t) => [t.url, t.size]), [['/tools/linux-amd64/airlock', amd64.length], ['/tools/linux-amd64/helm', (await stat(helmPath())).size], ['/tools/linux-arm64/airlock', arm64.length]]);
      const none = await curl(`${srv.url}/tools/linux-s390x/airlock`);
      assert.equal(none.status, 404);
      assert.match(none.body.toString(), /no airlock for linux\/s390x in the bundles served; they carry \/tools\/linux-amd64\/airlock, \/tools\/linux-amd64\/helm, \/tools\/linux-arm64\/airlock/);
      assert.equal((await curl(`${srv.url}/tools/linux-amd64/airlock`, ['-X', 'DELETE'])).status, 405);

      // Large: streamed, the last chunk held back for the check, so the download is cut short.
      const cut = await curl(`${bad.url}/tools/linux-amd64/airlock`);
      assert.notEqual(cut.exit, 0, 'curl sees a short body');
      assert.ok(cut.body.length < amd64.length, `${cut.body.length} of ${amd64.length} bytes`);
      // From then on, and at once for a small one: 404.
      for (const path of ['/tools/linux-amd64/airlock', '/tools/linux-arm64/airlock']) {
        const r = await curl(`${bad.url}${path}`);
        assert.equal(r.status, 404, path);
        assert.match(r.body.toString(), /is not served: its bytes in the bundle do not match the sha256 its inventory lists/);
      }
      // The good copy is unaffected.
      assert.ok((await curl(`${srv.url}/tools/linux-arm64/airlock`)).body.equals(arm64));
    } finally {
      await Promise.all([srv.stop(), bad.stop()]);
    }
    assert.match(bad.stderr(), /warning: airlock\/tools\/linux-amd64\/airlock in .*damaged\.tar: digest mismatch, got sha256:[0-9a-f]{64}; it is no longer served/);
  });

  test('a platform without its executable: refused before any download, naming it and how to get it (exit 3)', async () => {
    // AIRLOCK_TOOLS_DIR alone says where the executables are: the one it lacks is missing.
    const missing = 'linux/arm64';
    const present = 'linux/amd64';
    const only = join(dir, 'only-one');
    await mkdir(only);
    await copyFile(join(toolsDir, `airlock-${present.replace('/', '-')}`), join(only, `airlock-${present.replace('/', '-')}`));
    const cache = join(dir, 'cache-missing');
    const out = join(dir, 'missing.tar');
    const r = await run(['pack', '-f', join(dir, 'airlock.yaml'), '-o', out, '--tools-platform', 'linux/amd64,linux/arm64'], { AIRLOCK_TOOLS_DIR: only, AIRLOCK_CACHE: cache });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`^airlock: error: no airlock executable for ${missing} is at hand to carry in the bundle$`, 'm'));
    assert.match(r.stderr, /hint: build the executables with `npm run build:exe` .*or set AIRLOCK_TOOLS_DIR .*or run pack from the airlock executable of that platform/);
    await assert.rejects(stat(out), { code: 'ENOENT' });
    assert.deepEqual(await readdir(cache).catch(() => []), [], 'nothing was downloaded');

    const wrong = await run(['pack', '-f', join(dir, 'airlock.yaml'), '-o', out, '--tools-platform', 'linux/s390x']);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--tools-platform: "linux\/s390x" is not a platform airlock has an executable for \(linux\/amd64, linux\/arm64\)/);
    const notPinned = await run(['pack', '-f', join(dir, 'airlock.yaml'), '-o', out, '--with-tools', '--tools-platform', 'linux/amd64', '--tools-helm', join(toolsDir, 'airlock-linux-arm64')]);
    assert.equal(notPinned.code, 2, notPinned.stderr);
    assert.match(notPinned.stderr, /--tools-helm .*airlock-linux-arm64 is not the pinned helm v4\.1\.4 for linux\/amd64 \(sha256:210d576a/);
  });

  test('tools in airlock.yaml: true carries this machine\'s, a platform list those; without, nothing changes', async () => {
    const listed = await spec('listed.yaml', ['tools: {platforms: [linux/arm64]}']);
    await copyFile(join(dir, 'airlock.lock'), join(dir, 'listed.lock'));
    let r = await run(['pack', '-f', listed, '-o', join(dir, 'listed.tar'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(resultOf(r.stdout).tools.map((t: { path: string }) => t.path), [ARM64]);

    const here = runningPlatform();
    const yes = await spec('yes.yaml', ['tools: true']);
    await copyFile(join(dir, 'airlock.lock'), join(dir, 'yes.lock'));
    r = await run(['pack', '-f', yes, '-o', join(dir, 'yes.tar'), '--json']);
    if (here !== 'linux/amd64' && here !== 'linux/arm64') {
      assert.equal(r.code, 2, r.stderr);
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...new Set(resultOf(r.stdout).tools.map((t: { platform: string }) => t.platform))], [here]);

    const typo = await spec('typo.yaml', ['tools: {platfroms: [linux/arm64]}']);
    r = await run(['pack', '-f', typo, '-o', join(dir, 'typo.tar')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown key "tools\.platfroms": did you mean "tools\.platforms"\?/);

    // Asked for nowhere: no tools, format version 1, as every pack before.
    r = await run(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'plain.tar')]);
    assert.equal(r.code, 0, r.stderr);
    const plain = await openBundle(join(dir, 'plain.tar'));
    try {
      assert.equal(plain.bundleInfo.formatVersion, 1);
      assert.equal(plain.inventory.tools, undefined);
      assert.ok(!plain.tarEntries.some((e) => e.name.startsWith('airlock/tools')));
    } finally {
      await plain.close();
    }
  });
});
