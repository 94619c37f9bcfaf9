// The connected side behind a corporate forward proxy, as a user meets it: a real tinyproxy between
// airlock and everything it fetches (a registry, a Helm repository's index.yaml, a file of
// `files:`) and pushes to; HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment, proxy auth
// from the URL, and clear errors for a proxy that is not there or refuses the credentials.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, layersOf, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.ts';
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
});
