// Volumes for removable media and parity for one-way transfer, as a user runs them: a bundle split
// within a size limit, the same bytes every time, verified as a set, taken in place by inspect,
// push and export; one volume deleted and one cut short, reported by name, and `repair` restoring
// them byte for byte. Real docker-registry processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, layersOf, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { airlock, resultOf } from '../helpers/cli.ts';

const KiB = 1024;
const SPLIT = 256 * KiB;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';
const sha = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');

describe('updates: volumes and repair', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let dir: string;
  let files: string[];
  let originals: Map<string, string>;
  const img: Record<string, BuiltImage> = {};
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), AIRLOCK_STATE: join(dir, 'state'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });
  const run = (args: string[]) => airlock(args, { env: env() });
  const vols = (): string[] => files.filter((f) => /\.\d{3}$/.test(f));

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-volumes-e2e-'));
    const os = buildImage({ layers: [{ random: { bytes: 900 * KiB, seed: 71 } }] });
    img.web = buildImage({ baseLayers: layersOf(os), layers: [{ random: { bytes: 400 * KiB, seed: 72 } }] });
    img.api = buildImage({ baseLayers: layersOf(os), layers: [{ random: { bytes: 300 * KiB, seed: 73 } }] });
    await seedRegistry(src.url, 'shop/web', '1', img.web);
    await seedRegistry(src.url, 'shop/api', '1', img.api);
    await writeFile(
      join(dir, 'airlock.yaml'),
      ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', "metadata: {name: media, version: '1'}", 'images:', `  - ${src.host}/shop/web:1`, `  - ${src.host}/shop/api:1`, ''].join('\n'),
    );
    await mkdir(join(dir, 'out'));
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('pack --split 256KiB --parity 2: volumes within the size, two recovery volumes, the same bytes on a second pack', async () => {
    const r = await run(['pack', '--lock', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'out', 'b.tar'), '--split', '256KiB', '--parity', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stdout);
    files = res.files as string[];
    assert.ok(vols().length >= 7, `${vols().length} volumes`);
    assert.deepEqual(files.slice(vols().length).map((f) => f.slice(f.lastIndexOf('/') + 1)), ['b.tar.par01', 'b.tar.par02']);
    for (const f of vols()) assert.ok((await stat(f)).size <= SPLIT, f);
    assert.deepEqual((await readdir(join(dir, 'out'))).sort(), files.map((f) => f.slice(f.lastIndexOf('/') + 1)).sort(), 'no b.tar, no temp files');
    originals = new Map(await Promise.all(files.map(async (f) => [f, await sha(f)] as const)));
    await mkdir(join(dir, 'again'));
    const again = await run(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'again', 'b.tar'), '--split', '256KiB', '--parity', '2']);
    assert.equal(again.code, 0, again.stderr);
    for (const f of files) assert.equal(await sha(join(dir, 'again', f.slice(f.lastIndexOf('/') + 1))), originals.get(f), f);
  });

  test('verify b.tar.* passes as a set; inspect reads the first volume; cat of the volumes is the plain bundle', async () => {
    const v = await run(['verify', ...files]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, new RegExp(`volumes: ${vols().length} of at most 256\\.0 KiB, 2 recovery volumes, all intact`));
    const i = await run(['inspect', vols()[0]!]);
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, new RegExp(`split into ${vols().length} volumes of at most 256\\.0 KiB with 2 recovery volumes`));
    assert.match(i.stdout, /shop\/web:1/);
    const joined = join(dir, 'joined.tar');
    await writeFile(joined, Buffer.concat(await Promise.all(vols().map((f) => readFile(f)))));
    const j = await run(['verify', joined]);
    assert.equal(j.code, 0, j.stdout);
  });

  test('push and export take the volumes in place', async () => {
    const p = await run(['push', ...files, `${dst.host}/media`]);
    assert.equal(p.code, 0, p.stderr);
    for (const [repo, i] of [['shop/web', img.web!], ['shop/api', img.api!]] as const) {
      const res = await fetch(`${dst.url}/v2/media/${repo}/manifests/1`, { method: 'HEAD', headers: { accept: ACCEPT } });
      assert.equal(res.headers.get('docker-content-digest'), i.root.digest, repo);
    }
    const e = await run(['export', 'k3s', join(dir, 'out', 'b.tar'), join(dir, 'k3s')]);
    assert.equal(e.code, 0, e.stderr);
    assert.equal((await readdir(join(dir, 'k3s'))).filter((f) => f.endsWith('.tar')).length, 2);
  });

  test('a deleted and a truncated volume are named, with parity enough; repair restores both byte for byte', async () => {
    const [, second, third] = vols();
    await rm(third!);
    await truncate(second!, 1000);
    const present = (await readdir(join(dir, 'out'))).map((f) => join(dir, 'out', f));
    const v = await run(['verify', ...present]);
    assert.equal(v.code, 5, v.stdout);
    assert.match(v.stdout, /b\.tar\.003 is missing/);
    assert.match(v.stdout, /b\.tar\.002 is truncated: 1000 of 262144 bytes/);
    assert.match(v.stdout, /2 volumes lost \(b\.tar\.002, b\.tar\.003\); 2 usable recovery volumes: enough, `airlock repair .*b\.tar` rebuilds them/);
    const r = await run(['repair', ...present]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rebuilt b\.tar\.002, b\.tar\.003; every volume now matches its checksum/);
    for (const f of files) assert.equal(await sha(f), originals.get(f), f);
    const again = await run(['verify', join(dir, 'out', 'b.tar')]);
    assert.equal(again.code, 0, again.stdout);
  });

  test('three losses with two recovery volumes: repair refuses, naming what is lost', async () => {
    const [first, , , fourth] = vols();
    await rm(first!);
    await rm(fourth!);
    await rm(files.at(-1)!);
    const r = await run(['repair', join(dir, 'out', 'b.tar')]);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /cannot repair .*b\.tar: 2 volumes lost, 1 usable recovery volume/);
    assert.match(r.stderr, /b\.tar\.001 is missing/);
    const inspect = await run(['inspect', join(dir, 'out', 'b.tar')]);
    assert.equal(inspect.code, 3);
    assert.match(inspect.stderr, /b\.tar\.001 is missing: the first volume holds the bundle's metadata/);
  });
});
