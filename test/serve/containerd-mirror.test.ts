// containerd pulls images by their ORIGINAL names through hosts.toml mirrors (written by
// `airlock mirrors-config --format containerd`) pointing at `airlock serve`, with the original
// registry gone: the whole isolated-side flow without a registry of one's own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { airlock } from '../helpers/cli.ts';
import { startContainerd, type RunningContainerd } from '../helpers/containerd.ts';
import { buildImage, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { startRegistry } from '../helpers/registry.ts';
import { fixtureImages, writeFixtureBundle } from './fixture.ts';
import { startServe, type RunningServe } from '../helpers/serve.ts';

describe('containerd pulls original names through airlock serve', () => {
  let dir: string;
  let ctrd: RunningContainerd;
  const servers: RunningServe[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-mirror-'));
    ctrd = await startContainerd();
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await ctrd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('docker.io and quay.io names, served under a prefix, pulled by original name (multi-platform too)', async () => {
    const images = fixtureImages();
    const bundle = join(dir, 'hub.tar');
    await writeFixtureBundle(bundle, images);
    // The prefix does not matter to mirror requests: they carry ?ns= and the original path.
    const srv = await startServe([bundle, '--listen', '127.0.0.1:0', '--prefix', 'internal']);
    servers.push(srv);
    const hosts = join(dir, 'certs.d');
    const cfg = await airlock(['mirrors-config', bundle, '--registry', srv.host, '--format', 'containerd', '-o', hosts]);
    assert.equal(cfg.code, 0, cfg.stderr);

    await ctrd.ctr(['images', 'pull', '--hosts-dir', hosts, 'docker.io/library/web:1']);
    await ctrd.ctr(['images', 'pull', '--all-platforms', '--hosts-dir', hosts, 'quay.io/org/multi:v1']);
    const listed = new Map((await ctrd.images()).map((i) => [i.ref, i]));
    assert.equal(listed.get('docker.io/library/web:1')?.digest, images['docker.io/library/web:1']!.root.digest);
    const multi = listed.get('quay.io/org/multi:v1');
    assert.equal(multi?.digest, images['quay.io/org/multi:v1']!.root.digest);
    assert.deepEqual(multi?.platforms.sort(), ['linux/amd64', 'linux/arm64']);
    // The requests really were mirror requests.
    assert.match(srv.stderr(), /"path":"\/v2\/library\/web\/manifests\/1\?ns=docker\.io"/);
  });

  test('lock + pack from a local registry, registry stopped, pulled by its original name', async () => {
    const reg = await startRegistry();
    const app: BuiltImage = buildImage({ layers: [{ files: { 'app/run': '#!/bin/sh\necho hi\n' } }, { random: { bytes: 256 * 1024, seed: 9 } }] });
    let ref: string;
    const env = { AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' };
    try {
      await seedRegistry(reg.url, 'team/app', '2.0', app);
      ref = `${reg.host}/team/app:2.0`;
      await writeFile(join(dir, 'airlock.yaml'), ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: app, version: 2.0.0}', 'images:', `  - ${ref}`, ''].join('\n'));
      const p = await airlock(['pack', '--lock', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'app.tar')], { env });
      assert.equal(p.code, 0, p.stderr);
    } finally {
      await reg.stop();
    }
    const srv = await startServe([join(dir, 'app.tar'), '--listen', '127.0.0.1:0']);
    servers.push(srv);
    const hosts = join(dir, 'certs.d-local');
    const cfg = await airlock(['mirrors-config', join(dir, 'app.tar'), '--registry', srv.host, '--format', 'containerd', '-o', hosts], { env });
    assert.equal(cfg.code, 0, cfg.stderr);
    await ctrd.ctr(['images', 'pull', '--hosts-dir', hosts, ref]);
    const got = (await ctrd.images()).find((i) => i.ref === ref);
    assert.equal(got?.digest, app.root.digest);
  });
});
