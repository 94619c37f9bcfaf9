// `airlock export k3s|containerd`: tarballs that `ctr images import` (what k3s runs on
// agent/images/) loads with full names and the bundle's digests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { airlock, resultOf } from '../helpers/cli.ts';
import { startContainerd, type RunningContainerd } from '../helpers/containerd.ts';
import { skopeo } from '../helpers/skopeo.ts';
import { buildImage, type BuiltImage } from '../helpers/images.ts';
import { scanTar } from '../../src/bundle/tar.ts';
import { archiveFileName, exportImages } from '../../src/export/export.ts';
import { fixtureImages, writeFixtureBundle } from '../serve/fixture.ts';

async function indexOf(tarPath: string): Promise<{ manifests: { digest: string; annotations: Record<string, string> }[] }> {
  const fh = await open(tarPath, 'r');
  try {
    const { size } = await fh.stat();
    const { entries } = await scanTar(fh, size, tarPath);
    const e = entries.find((x) => x.name === 'index.json')!;
    const buf = Buffer.alloc(e.size);
    await fh.read(buf, 0, e.size, e.offset);
    return JSON.parse(buf.toString());
  } finally {
    await fh.close();
  }
}

describe('airlock export', () => {
  let dir: string;
  let bundle: string;
  let images: Record<string, BuiltImage>;
  let ctrd: RunningContainerd;
  /** The container images of the fixture; the chart and the SBOM are artifacts nodes cannot import. */
  let runnable: [string, BuiltImage][];
  const artifacts = ['docker.io/library/web:sbom', 'registry.example.com/charts/app:0.1.0'];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-export-'));
    images = fixtureImages();
    bundle = join(dir, 'bundle.tar');
    await writeFixtureBundle(bundle, images);
    runnable = Object.entries(images).filter(([name]) => !artifacts.includes(name));
    ctrd = await startContainerd();
  });
  after(async () => {
    await ctrd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('export k3s: one tarball per image, each imported by ctr with its full name and digest', async () => {
    const out = join(dir, 'agent-images');
    const r = await airlock(['export', 'k3s', bundle, out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const files = (await readdir(out)).sort();
    assert.deepEqual(files, runnable.map(([name]) => archiveFileName(name)).sort());
    assert.ok(files.includes('docker.io_library_web_1.tar'));
    const result = resultOf(r.stdout);
    assert.equal(result.files.length, runnable.length);
    assert.deepEqual(result.skipped, artifacts);

    for (const f of files) await ctrd.ctr(['images', 'import', '--all-platforms', join(out, f)]);
    const listed = new Map((await ctrd.images()).map((i) => [i.ref, i.digest]));
    for (const [name, img] of runnable) assert.equal(listed.get(name), img.root.digest, name);

    // Each file holds exactly its image, named by the full reference in both annotations.
    const idx = await indexOf(join(out, 'quay.io_org_multi_v1.tar'));
    assert.equal(idx.manifests.length, 1);
    assert.equal(idx.manifests[0]!.digest, images['quay.io/org/multi:v1']!.root.digest);
    assert.equal(idx.manifests[0]!.annotations['io.containerd.image.name'], 'quay.io/org/multi:v1');
    assert.equal(idx.manifests[0]!.annotations['org.opencontainers.image.ref.name'], 'quay.io/org/multi:v1');
  });

  test('--single: one tarball with every image; --format containerd is the same shape', async () => {
    const out = join(dir, 'single');
    const r = await airlock(['export', bundle, out, '--format', 'containerd', '--single']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ctr -n k8s\.io images import/);
    assert.match(r.stdout, /left out 2 artifacts that are not container images/);
    const files = await readdir(out);
    assert.deepEqual(files, ['fixture-1.0.0.tar']);
    await ctrd.ctr(['images', 'import', '--all-platforms', join(out, files[0]!)], { namespace: 'single' });
    const listed = new Map((await ctrd.images('single')).map((i) => [i.ref, i]));
    for (const [name, img] of runnable) assert.equal(listed.get(name)?.digest, img.root.digest, name);
    assert.equal(listed.size, runnable.length);
    assert.deepEqual(listed.get('quay.io/org/multi:v1')?.platforms.sort(), ['linux/amd64', 'linux/arm64']);
    // skopeo reads the same file as an OCI archive, digests kept (skopeo 1.9 reads only OCI
    // manifests from an OCI layout, so the OCI index here).
    const copy = join(dir, 'skopeo-out');
    await skopeo(['copy', '--all', '--preserve-digests', `oci-archive:${join(out, files[0]!)}:quay.io/org/multi:v1`, `oci:${copy}:d`]);
    const idx = JSON.parse(await readFile(join(copy, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(idx.manifests[0]!.digest, images['quay.io/org/multi:v1']!.root.digest);
  });

  test('bad input: unknown format, missing arguments, not a bundle; nothing half-written', async () => {
    const f = await airlock(['export', 'docker', bundle, join(dir, 'x')]);
    assert.equal(f.code, 2);
    assert.match(f.stderr, /unknown export format "docker"/);
    const m = await airlock(['export', 'k3s', bundle]);
    assert.equal(m.code, 2);
    const n = await airlock(['export', 'k3s', join(dir, 'missing.tar'), join(dir, 'y')]);
    assert.equal(n.code, 3);
    assert.match(n.stderr, /does not exist/);
    for (const d of ['agent-images', 'single']) assert.deepEqual((await readdir(join(dir, d))).filter((x) => x.endsWith('.tmp')), []);
  });

  test('file names: safe, and unique when references sanitise alike', async () => {
    assert.equal(archiveFileName('docker.io/library/nginx:1.27'), 'docker.io_library_nginx_1.27.tar');
    assert.equal(archiveFileName(`quay.io/a/b@sha256:${'a'.repeat(64)}`), `quay.io_a_b_sha256_${'a'.repeat(64)}.tar`);
    assert.ok(archiveFileName(`r.io/${'x/'.repeat(150)}y:1`).length <= 204);
    const a = buildImage({ layers: [{ files: { a: '1' } }] });
    const b = buildImage({ layers: [{ files: { b: '1' } }] });
    const alike = join(dir, 'alike.tar');
    await writeFixtureBundle(alike, { 'docker.io/a/b_c:1': a, 'docker.io/a/b/c:1': b });
    const r = await exportImages({ bundles: [alike], dir: join(dir, 'alike-out'), format: 'k3s' });
    const names = r.files.map((f) => basename(f.path)).sort();
    assert.deepEqual(names, [`docker.io_a_b_c_1-${b.root.digest.slice(7, 19)}.tar`, `docker.io_a_b_c_1-${a.root.digest.slice(7, 19)}.tar`].sort());
  });
});
