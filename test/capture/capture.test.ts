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
      // A client of its own: the body is cut before its end, never complete.
      const res = await fetch(`${cap.url}/v2/team/bad/blobs/${layer}?ns=${reg.host}`);
      assert.equal(res.status, 200);
      await assert.rejects(res.arrayBuffer(), (e: Error) => /terminated|closed|other side/i.test(`${e.message} ${String((e.cause as Error | undefined)?.message)}`));
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
});
