// airlock capture end to end, as the issue checks it: an upstream docker-registry holding images
// (one a multi-platform index); capture in front of it; real containerd pulling by original names
// through hosts.toml written by `airlock mirrors-config --source`, and skopeo pulling through
// capture as a registries.conf mirror, in parallel; digests checked; after SIGTERM the spec lists
// exactly the images pulled, pinned, and lock + pack of it gives a bundle serve answers the same
// pulls from with the upstream stopped. A blob whose bytes upstream are wrong is refused and recorded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { airlock } from '../helpers/cli.ts';
import { startContainerd, type RunningContainerd } from '../helpers/containerd.ts';
import { buildImage, buildIndex, layersOf, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { startServe, type RunningServe } from '../helpers/serve.ts';
import { skopeo } from '../helpers/skopeo.ts';
import { parseSpec } from '../../src/spec/spec.ts';
import { formatReference } from '../../src/core/reference.ts';
import { startCapture, type RunningCapture } from './start-capture.ts';

describe('airlock capture: a staging cluster pulls through it, the spec is what it pulled', () => {
  let dir: string;
  let reg: RunningRegistry;
  let ctrd: RunningContainerd;
  const captures: RunningCapture[] = [];
  const servers: RunningServe[] = [];
  let app: BuiltImage;
  let multi: BuiltImage;
  let tool: BuiltImage;
  let bad: BuiltImage;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-capture-'));
    env = { AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' };
    [reg, ctrd] = await Promise.all([startRegistry(), startContainerd()]);
    // A layer over one read chunk, so a blob really streams in several pieces.
    app = buildImage({ layers: [{ files: { 'app/run': '#!/bin/sh\necho app\n' } }, { random: { bytes: 700 * 1024, seed: 1 } }] });
    multi = buildIndex([
      buildImage({ layers: [{ files: { 'bin/x': 'amd64\n' } }], platform: 'linux/amd64' }),
      buildImage({ layers: [{ files: { 'bin/x': 'arm64\n' } }], platform: 'linux/arm64' }),
    ]);
    tool = buildImage({ layers: [{ files: { 'tool/cfg': 'tool=1\n' } }, { random: { bytes: 300 * 1024, seed: 2 } }] });
    bad = buildImage({ layers: [{ random: { bytes: 200 * 1024, seed: 3 } }] });
    const unused = buildImage({ layers: [{ files: { 'x': 'unused\n' } }] });
    await seedRegistry(reg.url, 'team/app', '1.0', app);
    await seedRegistry(reg.url, 'team/multi', 'v1', multi);
    await seedRegistry(reg.url, 'team/tool', '2', tool);
    await seedRegistry(reg.url, 'team/bad', '1', bad);
    await seedRegistry(reg.url, 'team/unused', '1', unused);
  });
  after(async () => {
    for (const c of captures) await c.stop();
    for (const s of servers) await s.stop();
    await ctrd?.stop();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const records = (c: RunningCapture): Record<string, any>[] =>
    c
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>)
      .filter((e) => e.type === 'pull');

  test('wrong bytes upstream: the node never gets the blob whole, and the record says refused', async () => {
    const layer = layersOf(bad)[0]!.descriptor.digest;
    const hex = layer.slice('sha256:'.length);
    const file = join(reg.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const bytes = await readFile(file);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 10]! ^= 0xff;
    await writeFile(file, flipped);
    try {
      const cap = await startCapture(['--listen', '127.0.0.1:0', '--upstream', reg.host, '--record', join(dir, 'bad.jsonl')], { env });
      captures.push(cap);
      const hosts = join(dir, 'certs.d-bad');
      const cfg = await airlock(['mirrors-config', '--source', reg.host, '--registry', cap.host, '--format', 'containerd', '-o', hosts], { env });
      assert.equal(cfg.code, 0, cfg.stderr);
      await assert.rejects(ctrd.ctr(['images', 'pull', '--hosts-dir', hosts, `${reg.host}/team/bad:1`], { namespace: 'bad', timeoutMs: 60_000 }), /failed/);
      assert.equal((await ctrd.images('bad')).length, 0);
      // A client of its own: the answer is cut before the blob's end (before its headers, when the
      // upstream sent the blob in one piece), never complete.
      const got = await fetch(`${cap.url}/v2/team/bad/blobs/${layer}?ns=${reg.host}`).then(
        async (res) => Buffer.from(await res.arrayBuffer()),
        (e: unknown) => e,
      ).catch((e: unknown) => e);
      assert.ok(got instanceof Error, 'the bad blob never arrives whole');
      assert.match(`${got.message} ${String((got.cause as Error | undefined)?.message)}`, /terminated|fetch failed|other side closed/);
      const { code, result } = await cap.stop();
      assert.equal(code, 0);
      const refused = records(cap).filter((r) => r.outcome === 'refused');
      assert.ok(refused.length >= 2, JSON.stringify(records(cap)));
      for (const r of refused) {
        assert.equal(r.digest, layer);
        assert.equal(r.code, 'DIGEST_MISMATCH');
        assert.match(r.error, /digest mismatch/);
      }
      assert.ok(result!.refused.length >= 2);
      const saved = (await readFile(join(dir, 'bad.jsonl'), 'utf8')).split('\n').filter((l) => l.includes('"outcome":"refused"'));
      assert.equal(saved.length, refused.length);
    } finally {
      await writeFile(file, bytes);
    }
  });
  test('containerd and skopeo pull in parallel through capture; on SIGTERM the spec is exactly what they pulled, and serve answers the same pulls from its bundle', async () => {
    // No spec yet: capture writes one (merging into one the user wrote is checked in parts.test.ts).
    const spec = join(dir, 'airlock.yaml');
    const discovery = join(dir, 'discover.txt');
    await writeFile(discovery, [`${reg.host}/team/app:1.0`, `${reg.host}/team/unused:1`, ''].join('\n'));
    const record = join(dir, 'capture.jsonl');
    const cap = await startCapture(['--listen', '127.0.0.1:0', '--upstream', reg.host, '--write', spec, '--record', record, '--compare', discovery], { env });
    captures.push(cap);
    const hosts = join(dir, 'certs.d');
    const cfg = await airlock(['mirrors-config', '--source', reg.host, '--registry', cap.host, '--format', 'containerd', '-o', hosts], { env });
    assert.equal(cfg.code, 0, cfg.stderr);
    assert.match(await readFile(join(hosts, reg.host, 'hosts.toml'), 'utf8'), new RegExp(`server = "http://${cap.host}"`));

    // skopeo (containers/image) through capture as the registry's mirror: it sends no ns, so --upstream names it.
    const conf = join(dir, 'registries.conf');
    await writeFile(conf, ['[[registry]]', `location = "${reg.host}"`, 'insecure = true', '[[registry.mirror]]', `location = "${cap.host}"`, 'insecure = true', ''].join('\n'));
    const skopeoOut = join(dir, 'tool-oci');
    await Promise.all([
      ctrd.ctr(['images', 'pull', '--hosts-dir', hosts, `${reg.host}/team/app:1.0`], { namespace: 'staging' }),
      ctrd.ctr(['images', 'pull', '--hosts-dir', hosts, `${reg.host}/team/multi:v1`], { namespace: 'staging' }),
      ctrd.ctr(['images', 'pull', '--hosts-dir', hosts, `${reg.host}/team/app:1.0`], { namespace: 'staging2' }),
      skopeo(['--registries-conf', conf, 'copy', `docker://${reg.host}/team/tool:2`, `oci:${skopeoOut}:tool`]),
    ]);
    const listed = new Map((await ctrd.images('staging')).map((i) => [i.ref, i]));
    assert.equal(listed.get(`${reg.host}/team/app:1.0`)?.digest, app.root.digest);
    assert.equal(listed.get(`${reg.host}/team/multi:v1`)?.digest, multi.root.digest);
    const index = JSON.parse(await readFile(join(skopeoOut, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]!.digest, tool.root.digest);

    const { code, result } = await cap.stop();
    assert.equal(code, 0, cap.stderr());
    const recs = records(cap);
    // skopeo really went through capture (it would fall back to the registry itself otherwise).
    assert.ok(recs.some((r) => r.repository === 'team/tool' && r.kind === 'blob' && r.outcome === 'ok'));
    for (const r of recs) {
      assert.equal(r.registry, reg.host);
      assert.equal(r.outcome, 'ok', JSON.stringify(r));
      assert.match(r.client, /127\.0\.0\.1/);
      assert.ok(typeof r.time === 'string' && typeof r.digest === 'string' && typeof r.size === 'number');
    }
    // The manifest containerd chose from the index, with its platform.
    const child = recs.find((r) => r.kind === 'manifest' && r.index === multi.root.digest);
    assert.equal(child?.platform, 'linux/amd64');
    assert.ok(recs.some((r) => r.kind === 'manifest' && r.reference === 'v1' && r.digest === multi.root.digest));
    // Every blob of the pulled images went through, each checked.
    for (const l of [...layersOf(app), ...layersOf(tool)]) assert.ok(recs.some((r) => r.kind === 'blob' && r.digest === l.descriptor.digest), l.descriptor.digest);

    // The spec: exactly the images pulled, each pinned by the digest served; for the index, the platform pulled.
    const text = await readFile(spec, 'utf8');
    const pulled = [`${reg.host}/team/app:1.0@${app.root.digest}`, `${reg.host}/team/multi:v1@${multi.root.digest}`, `${reg.host}/team/tool:2@${tool.root.digest}`];
    assert.deepEqual(parseSpec(text, spec).images.map(formatReference), pulled);
    assert.match(text, /captured: pulled by 1 node; an index: pulled for linux\/amd64\n/);
    assert.deepEqual(result!.spec.added, pulled);
    // The upstreams the nodes asked for, and the comparison with discovery.
    assert.deepEqual(result!.upstreams.map((u: any) => u.registry), [reg.host]);
    assert.deepEqual(result!.compare.missed, [`${reg.host}/team/multi:v1@${multi.root.digest}`, `${reg.host}/team/tool:2@${tool.root.digest}`]);
    assert.deepEqual(result!.compare.unused, [`${reg.host}/team/unused:1`]);
    // The record read back gives the same report.
    const again = await airlock(['capture', '--record', record, '--json'], { env });
    assert.equal(again.code, 0, again.stderr);
    const back = JSON.parse(again.stdout.trim().split('\n').at(-1)!) as Record<string, any>;
    assert.deepEqual(back.images, result!.images);

    // lock + pack of that spec, the upstream stopped, serve answers the same pulls.
    const bundle = join(dir, 'shop.tar');
    const p = await airlock(['pack', '--lock', '-f', spec, '-o', bundle], { env });
    assert.equal(p.code, 0, p.stderr);
    await reg.stop();
    const srv = await startServe([bundle, '--listen', '127.0.0.1:0'], { env });
    servers.push(srv);
    const served = join(dir, 'certs.d-served');
    const cfg2 = await airlock(['mirrors-config', bundle, '--registry', srv.host, '--format', 'containerd', '-o', served], { env });
    assert.equal(cfg2.code, 0, cfg2.stderr);
    await Promise.all([
      ctrd.ctr(['images', 'pull', '--hosts-dir', served, `${reg.host}/team/app:1.0`], { namespace: 'isolated' }),
      ctrd.ctr(['images', 'pull', '--hosts-dir', served, `${reg.host}/team/multi:v1`], { namespace: 'isolated' }),
      ctrd.ctr(['images', 'pull', '--hosts-dir', served, `${reg.host}/team/tool:2`], { namespace: 'isolated' }),
    ]);
    const isolated = new Map((await ctrd.images('isolated')).map((i) => [i.ref, i.digest]));
    assert.equal(isolated.get(`${reg.host}/team/app:1.0`), app.root.digest);
    assert.equal(isolated.get(`${reg.host}/team/multi:v1`), multi.root.digest);
    assert.equal(isolated.get(`${reg.host}/team/tool:2`), tool.root.digest);
  });
});
