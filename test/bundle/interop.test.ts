// The bundle is a plain OCI archive to the tools on the isolated side: real skopeo reads every
// image by its full reference, real containerd imports it (k3s-style) under the full names. Both
// keep every digest.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '../../src/content/file-store.ts';
import { writeBundle } from '../../src/bundle/index.ts';
import { blobStream, buildImage, buildIndex, layersOf, type BuiltImage } from '../helpers/images.ts';
import { skopeo, skopeoDigest } from '../helpers/skopeo.ts';
import { startContainerd, type RunningContainerd } from '../helpers/containerd.ts';

const SINGLE = 'docker.io/library/single:1';
const MULTI = 'registry.example.com/team/multi:2.0';
const DOCKER = 'quay.io/org/legacy:v3';

describe('bundle interop', () => {
  let dir: string;
  let bundle: string;
  let images: Record<string, BuiltImage>;
  let containerd: RunningContainerd | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-interop-'));
    const store = new FileStore(join(dir, 'cache'));
    const base = buildImage({ layers: [{ files: { 'etc/os-release': 'ID=interop\n' } }] });
    images = {
      [SINGLE]: base,
      [MULTI]: buildIndex([
        buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'bin/app': 'amd64\n' } }] }),
        buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'bin/app': 'arm64\n' } }], platform: 'linux/arm64/v8' }),
      ]),
      [DOCKER]: buildImage({ format: 'docker', layers: [{ files: { 'srv/data': 'legacy\n' } }] }),
    };
    for (const img of Object.values(images)) for (const b of img.blobs) await store.push(b.descriptor, blobStream(b));
    bundle = join(dir, 'bundle.tar');
    await writeBundle({
      out: bundle,
      images: Object.entries(images).map(([reference, img]) => ({ reference, root: img.root })),
      source: store,
      lockText: 'lock\n',
      name: 'interop',
      version: '1',
      toolVersion: '0.0.0-test',
    });
  });
  after(async () => {
    await containerd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('skopeo reads every OCI image by its full reference with the manifest digest unchanged', async () => {
    // skopeo's oci transport looks names up only among OCI media types (skopeo#1975), so the
    // Docker-format image is checked through containerd below.
    for (const ref of [SINGLE, MULTI]) {
      assert.equal(await skopeoDigest(`oci-archive:${bundle}:${ref}`), images[ref]!.root.digest, ref);
    }
  });

  test('skopeo copies a multi-platform index out of the bundle with every digest kept', async () => {
    const out = join(dir, 'copied');
    await skopeo(['copy', '--all', '--preserve-digests', `oci-archive:${bundle}:${MULTI}`, `oci:${out}:multi`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.deepEqual(
      index.manifests.map((m) => m.digest),
      [images[MULTI]!.root.digest],
    );
    for (const b of images[MULTI]!.blobs) {
      const copied = await readFile(join(out, 'blobs', 'sha256', b.descriptor.digest.slice(7)));
      assert.equal(copied.length, b.descriptor.size, `${b.descriptor.digest} copied whole`);
    }
  });

  test('ctr images import (k8s.io namespace) lists every image under its full name and digest', async () => {
    containerd = await startContainerd();
    await containerd.ctr(['images', 'import', '--all-platforms', bundle], { timeoutMs: 60_000 });
    const listed = await containerd.images();
    assert.deepEqual(
      listed.map((i) => [i.ref, i.digest]).sort(),
      Object.entries(images)
        .map(([ref, img]) => [ref, img.root.digest])
        .sort(),
    );
    assert.deepEqual(listed.find((i) => i.ref === MULTI)?.platforms, ['linux/amd64', 'linux/arm64/v8']);
  });
});
