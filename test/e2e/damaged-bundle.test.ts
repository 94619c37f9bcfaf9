// push, export and serve of a bundle that lacks a blob or carries one changed after packing, run
// as a user runs them against a real docker-registry: exit 5 naming the blob and the images that
// need it, and nothing half-done — a bundle missing a blob pushes nothing, exports nothing and is
// not served; a changed blob never reaches the registry and leaves no tarball behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { airlock } from '../helpers/cli.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, layersOf, type BuiltImage } from '../helpers/images.ts';
import { copyWithFlips, copyWithout } from '../helpers/tamper.ts';
import { writeFixtureBundle } from '../serve/fixture.ts';

const KiB = 1024;

describe('a damaged bundle: nothing half-done', () => {
  let dir: string;
  let reg: RunningRegistry;
  let good: string;
  let missing: string;
  let flipped: string;
  // One repository: push sends its images one after another, in order; app:3 is the damaged one.
  const base = buildImage({ layers: [{ random: { bytes: 300 * KiB, seed: 301 } }] });
  const images: Record<string, BuiltImage> = {
    'docker.io/library/app:1': buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'etc/v': '1' } }] }),
    'docker.io/library/app:2': buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'etc/v': '2' } }] }),
    'docker.io/library/app:3': buildImage({ baseLayers: layersOf(base), layers: [{ random: { bytes: 2048 * KiB, seed: 303 } }] }),
  };
  const damagedLayer = (): string => layersOf(images['docker.io/library/app:3']!)[1]!.descriptor.digest;

  async function catalog(): Promise<string[]> {
    const res = await fetch(`${reg.url}/v2/_catalog`);
    return ((await res.json()) as { repositories: string[] }).repositories;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-damaged-'));
    reg = await startRegistry();
    good = join(dir, 'good.tar');
    await writeFixtureBundle(good, images);
    missing = join(dir, 'missing.tar');
    await copyWithout(good, missing, [damagedLayer()]);
    flipped = join(dir, 'flipped.tar');
    await copyWithFlips(good, flipped, { [damagedLayer()]: 1024 * KiB });
  });
  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('push of a bundle missing a blob: exit 5 naming it and its image; the registry stays empty', async () => {
    const r = await airlock(['push', missing, `${reg.host}/m`]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, new RegExp(`${damagedLayer()} \\(\\d+ bytes\\) for docker\\.io/library/app:3`));
    assert.match(r.stderr, /nothing was pushed/);
    assert.deepEqual(await catalog(), []);
  });

  test('export of a bundle missing a blob: exit 5 naming it; no tarball, no folder', async () => {
    const out = join(dir, 'export-missing');
    const r = await airlock(['export', 'k3s', missing, out]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, new RegExp(`${damagedLayer()} .*for docker\\.io/library/app:3`));
    await assert.rejects(readdir(out), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  });

  test('serve of a bundle missing a blob refuses to start: exit 5 naming it', async () => {
    const r = await airlock(['serve', missing, '--listen', '127.0.0.1:0'], { timeoutMs: 30_000 });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, new RegExp(`${damagedLayer()} .*for docker\\.io/library/app:3`));
    assert.doesNotMatch(r.stdout + r.stderr, /listening on/);
  });

  test('export of a bundle with a changed blob: exit 5 naming it and its image; nothing is left in the folder', async () => {
    const out = join(dir, 'export-flipped');
    const r = await airlock(['export', 'k3s', flipped, out]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, new RegExp(`${damagedLayer()}.*digest mismatch.*docker\\.io/library/app:3`));
    assert.deepEqual(await readdir(out).catch(() => []), [], 'no tarball and no temp file');
  });

  test('push of a bundle with a changed blob: exit 5 naming it and its image; the registry never holds it', async () => {
    const r = await airlock(['push', flipped, `${reg.host}/f`]);
    assert.equal(r.code, 5, r.stderr);
   
    assert.match(r.stderr, new RegExp(`${damagedLayer()}.*digest mismatch.*docker\\.io/library/app:3`));
    // The images before it went to this repository (push is not all-or-nothing for bytes found bad in flight).
    assert.ok((await catalog()).includes('f/library/app'));
    assert.equal((await fetch(`${reg.url}/v2/f/library/app/blobs/${damagedLayer()}`, { method: 'HEAD' })).status, 404);
    assert.equal((await fetch(`${reg.url}/v2/f/library/app/manifests/3`, { method: 'HEAD' })).status, 404);
  });
});
