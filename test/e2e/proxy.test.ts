// The connected side behind a corporate forward proxy, as a user meets it: a real tinyproxy between
// airlock and everything it fetches (a registry, a Helm repository's index.yaml, a file of
// `files:`) and pushes to; HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment, proxy auth
// from the URL, and clear errors for a proxy that is not there or refuses the credentials.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, layersOf, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.ts';
import { runHelm } from '../../src/helm/helm-runner.ts';
import { helmPath } from '../helpers/helm.ts';
import { copyFixtures, helmWithState, startChartRepo, type ChartRepoServer } from '../helm/support.ts';

const MiB = 1024 * 1024;

describe('through a forward proxy (tinyproxy)', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let repo: ChartRepoServer;
  let proxy: ForwardProxy;
  let authProxy: ForwardProxy;
  let dir: string;
  let image: BuiltImage;
  const tool = Buffer.concat([Buffer.from('#!/bin/sh\necho tool\n'), Buffer.alloc(2 * MiB + 5, 0x61)]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-proxy-e2e-'));
    [src, dst, repo, proxy, authProxy] = await Promise.all([
      startRegistry(),
      startRegistry(),
      startChartRepo(join(dir, 'repo')),
      startForwardProxy(),
      startForwardProxy({ user: 'alice', password: 's3cret' }),
    ]);
    image = buildImage({ layers: [{ random: { bytes: 3 * MiB, seed: 41 } }, { files: { 'etc/app.conf': 'proxy=yes\n' } }] });
    await seedRegistry(src.url, 'team/app', '1.0', image);
    await copyFixtures(join(dir, 'charts'), ['redis'], {});
    const helm = helmWithState(join(dir, 'helm'));
    await helm.run(['package', join(dir, 'charts', 'redis'), '-d', repo.dir]);
    await helm.run(['repo', 'index', repo.dir]);
    await mkdir(join(repo.dir, 'tools'));
    await writeFile(join(repo.dir, 'tools', 'tool'), tool);
    await writeFile(
      join(dir, 'airlock.yaml'),
      [
        'apiVersion: airlock.dev/v1alpha1',
        'kind: Bundle',
        'metadata: {name: proxied, version: 1.0.0}',
        'images:',
        `  - ${src.host}/team/app:1.0`,
        'charts:',
        '  - name: redis',
        `    repo: ${repo.url}`,
        '    version: 1.2.3',
        'files:',
        '  - name: tool',
        `    url: ${repo.url}/tools/tool`,
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), repo?.close(), proxy?.stop(), authProxy?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A clean environment: no proxy variables but the ones given. */
  const env = (cache: string, more: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const base: NodeJS.ProcessEnv = { AIRLOCK_CACHE: join(dir, cache), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '', XDG_RUNTIME_DIR: '' };
    for (const v of ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy']) {
      base[v] = '';
      base[v.toUpperCase()] = '';
    }
    return { ...base, ...more };
  };

  test('lock, pack and push go through HTTPS_PROXY/HTTP_PROXY; the proxy log shows every host', async () => {
    const vars = { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url };
    const lock = await airlock(['lock', '-f', join(dir, 'airlock.yaml'), '--json'], { env: env('cache1', vars) });
    assert.equal(lock.code, 0, lock.stderr);
    const pack = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'b.tar')], { env: env('cache1', vars) });
    assert.equal(pack.code, 0, pack.stderr);
    const push = await airlock(['push', join(dir, 'b.tar'), `${dst.host}/int`, '--json'], { env: env('cache1', vars) });
    assert.equal(push.code, 0, push.stderr);
    const pushed = resultOf(push.stdout).images as { kind: string; digest: string }[];
    assert.deepEqual(pushed.map((p) => p.kind).sort(), ['chart', 'file', 'image']);
    assert.equal(pushed.find((p) => p.kind === 'image')!.digest, image.root.digest);

    const seen = await proxy.requests();
    // HTTPS first (a CONNECT tunnel), then plain HTTP as absolute-URI requests.
    assert.ok(seen.includes(`CONNECT ${src.host}`), seen.join('\n'));
    const layer = layersOf(image)[0]!.descriptor.digest;
    assert.ok(seen.includes(`GET ${src.url}/v2/team/app/blobs/${layer}`), `the 3 MiB layer came through the proxy:\n${seen.join('\n')}`);
    assert.ok(seen.includes(`GET ${repo.url}/index.yaml`), seen.join('\n'));
    assert.ok(seen.includes(`GET ${repo.url}/tools/tool`), seen.join('\n'));
    assert.ok(seen.some((l) => l.startsWith(`PUT ${dst.url}/v2/int/team/app/manifests/`)), seen.join('\n'));
    assert.ok(seen.some((l) => l.startsWith(`POST ${dst.url}/v2/int/team/app/blobs/uploads/`)), seen.join('\n'));
    // Nothing of the upstream went straight: the registry's log would show it, the proxy's does.
    assert.equal(repo.requests.filter((p) => p === '/tools/tool').length, 1, 'the file was downloaded once (by lock), through the proxy');
  });

  test('proxy auth from the URL works; a wrong password is refused by name, and no password is ever printed', async () => {
    await mkdir(join(dir, 'one'), { recursive: true });
    await writeFile(join(dir, 'one', 'airlock.yaml'), ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: one}', 'images:', `  - ${src.host}/team/app:1.0`, ''].join('\n'));
    const withAuth = (password: string): NodeJS.ProcessEnv => {
      const u = new URL(authProxy.url);
      u.username = 'alice';
      u.password = password;
      return { HTTPS_PROXY: u.href, HTTP_PROXY: u.href };
    };
    const good = await airlock(['pack', '--lock', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'auth.tar')], { env: env('cache-auth', withAuth('s3cret')) });
    assert.equal(good.code, 0, good.stderr);
    const seen = await authProxy.requests();
    assert.ok(seen.includes(`CONNECT ${src.host}`), seen.join('\n'));
    assert.ok(seen.includes(`GET ${repo.url}/index.yaml`) && seen.includes(`GET ${repo.url}/tools/tool`), seen.join('\n'));

    const bad = await airlock(['lock', '-f', join(dir, 'one', 'airlock.yaml')], { env: env('cache-bad', withAuth('wrong-pass')) });
    assert.equal(bad.code, 4, bad.stderr);
    assert.match(bad.stderr, new RegExp(`proxy ${authProxy.url.replace(/\./g, '\\.')} \\(from HTTPS_PROXY\\) refused the credentials`));
    assert.match(bad.stderr, /PROXY_AUTH_REJECTED|check the user and password in HTTPS_PROXY/);
    assert.doesNotMatch(`${bad.stderr}${bad.stdout}`, /wrong-pass|s3cret/);
    const json = await airlock(['lock', '-f', join(dir, 'one', 'airlock.yaml'), '--json'], { env: env('cache-bad', withAuth('wrong-pass')) });
    assert.equal(json.code, 4);
    assert.match(json.stdout, /"code":"PROXY_AUTH_REJECTED"/);
    assert.doesNotMatch(`${json.stderr}${json.stdout}`, /wrong-pass/);

    const none = await airlock(['lock', '-f', join(dir, 'one', 'airlock.yaml')], { env: env('cache-bad', { HTTPS_PROXY: authProxy.url, HTTP_PROXY: authProxy.url }) });
    assert.equal(none.code, 4, none.stderr);
    assert.match(none.stderr, /asks for credentials, and none are given in HTTPS_PROXY/);
    assert.match(none.stderr, /HTTPS_PROXY=http:\/\/USER:PASSWORD@host:port/);
  });

  test('NO_PROXY sends the hosts it names straight to them, the others still through the proxy', async () => {
    const before = (await proxy.requests()).length;
    const vars = { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: `localhost,${src.host}, .corp.example` };
    const r = await airlock(['pack', '--lock', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'np.tar')], { env: env('cache-np', vars) });
    assert.equal(r.code, 0, r.stderr);
    const seen = (await proxy.requests()).slice(before);
    assert.deepEqual(seen.filter((l) => l.includes(src.host)), [], 'nothing for the registry named in NO_PROXY went through the proxy');
    assert.ok(seen.includes(`GET ${repo.url}/index.yaml`), `the chart repository, not named, still went through it:\n${seen.join('\n')}`);
    // A wildcard bypasses everything: a proxy that does not even exist is never tried.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const all = await airlock(['pack', '--lock', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'np2.tar')], {
      env: env('cache-np2', { HTTPS_PROXY: dead, HTTP_PROXY: dead, no_proxy: '*' }),
    });
    assert.equal(all.code, 0, all.stderr);
  });

  test('a proxy that is not listening: exit 6, the proxy named (without its password) and what to check', async () => {
    const dead = `http://carol:t0psecret@127.0.0.1:${await freePort()}`;
    const r = await airlock(['lock', '-f', join(dir, 'one', 'airlock.yaml')], { env: env('cache-dead', { HTTPS_PROXY: dead, HTTP_PROXY: dead }) });
    assert.equal(r.code, 6, r.stderr);
    const shown = new URL(dead);
    assert.match(r.stderr, new RegExp(`cannot reach the proxy http://${shown.host.replace(/\./g, '\\.')} \\(from HTTPS_PROXY\\) on the way to ${src.host.replace(/\./g, '\\.')}: connection refused`));
    assert.match(r.stderr, /check that the proxy is running and that HTTPS_PROXY names it right/);
    assert.doesNotMatch(r.stderr, /t0psecret/);
    await assert.rejects(readFile(join(dir, 'one', 'airlock.lock')), { code: 'ENOENT' }, 'no lock written');
  });

  test('a proxy that cannot reach the target says so, naming the target and the proxy', async () => {
    const gone = `127.0.0.1:${await freePort()}`;
    await mkdir(join(dir, 'gone'), { recursive: true });
    await writeFile(join(dir, 'gone', 'airlock.yaml'), ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: gone}', 'images:', `  - ${gone}/team/app:1.0`, ''].join('\n'));
    const r = await airlock(['lock', '-f', join(dir, 'gone', 'airlock.yaml')], { env: env('cache-gone', { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url }) });
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, new RegExp(`the proxy ${proxy.url.replace(/\./g, '\\.')} \\(from HTTPS_PROXY\\) did not open a connection to ${gone.replace(/\./g, '\\.')}: it answered 500`));
  });

  test('helm run by airlock with network gets the proxy variables; an offline render never reaches the proxy', async () => {
    // helm (Go) never proxies loopback, so it asks for a name of its own; the proxy hands the
    // request to the chart repository (Upstream) without resolving it.
    const up = await startForwardProxy({ upstream: repo.host });
    const out = join(dir, 'helm-pulled');
    await mkdir(out, { recursive: true });
    try {
      const base = env('cache-helm');
      const args = ['pull', 'redis', '--repo', 'http://charts.airlock-proxy-test.invalid', '--version', '1.2.3', '-d', out];
      await runHelm(args, { helm: helmPath(), network: true, env: { ...process.env, ...base, HTTP_PROXY: up.url } });
      assert.ok((await readdir(out)).includes('redis-1.2.3.tgz'), 'helm pulled the chart through the proxy');
      assert.deepEqual(await up.requests(), ['GET http://charts.airlock-proxy-test.invalid/index.yaml', 'GET http://charts.airlock-proxy-test.invalid/redis-1.2.3.tgz']);
      // Offline (how airlock renders charts) the variables are replaced: helm fails and the proxy sees nothing more.
      await assert.rejects(runHelm(args, { helm: helmPath(), env: { ...process.env, ...base, HTTP_PROXY: up.url } }), (e: Error) => {
        assert.match(e.message, /helm pull failed/);
        return true;
      });
      assert.equal((await up.requests()).length, 2);
    } finally {
      await up.stop();
    }
  });
});
