// Bundles for serve/export/mirrors tests, written with writeBundle directly so images carry the
// original names a real bundle would (docker.io/library/…, quay.io/…), with no registry involved.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStore } from '../../src/content/file-store.ts';
import { digestOf } from '../../src/core/digest.ts';
import { MediaType, type Descriptor } from '../../src/core/manifest.ts';
import { writeBundle } from '../../src/bundle/index.ts';
import { blobStream, buildArtifact, buildImage, buildIndex, layersOf, type BlobData, type BuiltImage } from '../helpers/images.ts';

export interface Fixture {
  path: string;
  images: Record<string, BuiltImage>;
}

/** An OCI artifact manifest that refers to `subject` (OCI 1.1 referrers). */
export function buildReferrer(subject: Descriptor, artifactType: string, content: string): BuiltImage {
  const empty: BlobData = { descriptor: { mediaType: MediaType.ociEmpty, digest: digestOf('{}'), size: 2 }, bytes: Buffer.from('{}') };
  const layerBytes = Buffer.from(content);
  const layer: BlobData = { descriptor: { mediaType: 'application/vnd.example.data.v1+json', digest: digestOf(layerBytes), size: layerBytes.length }, bytes: layerBytes };
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType,
    config: empty.descriptor,
    layers: [layer.descriptor],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { 'org.example.kind': artifactType },
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  const root: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.length, artifactType };
  return { root, blobs: [empty, layer, { descriptor: root, bytes }], platforms: [] };
}

/** A set of images with original names; `random` layer sizes are kept small so tests stay fast. */
export function fixtureImages(): Record<string, BuiltImage> {
  const base = buildImage({ layers: [{ random: { bytes: 1536 * 1024, seed: 41 } }] });
  const web1 = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'srv/index.html': '<h1>v1</h1>' } }] });
  const web2 = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'srv/index.html': '<h1>v2</h1>' } }] });
  const multi = buildIndex([
    buildImage({ layers: [{ files: { 'etc/arch': 'amd64\n' } }], platform: 'linux/amd64' }),
    buildImage({ layers: [{ files: { 'etc/arch': 'arm64\n' } }], platform: 'linux/arm64' }),
  ]);
  const dlist = buildIndex(
    [
      buildImage({ layers: [{ files: { a: '1' } }], platform: 'linux/amd64', format: 'docker' }),
      buildImage({ layers: [{ files: { a: '2' } }], platform: 'linux/arm64', format: 'docker' }),
    ],
    { format: 'docker' },
  );
  const chart = buildArtifact({
    artifactType: MediaType.helmConfig,
    files: [{ mediaType: MediaType.helmChart, bytes: Buffer.from('not really a chart tarball') }],
  });
  const sbom = buildReferrer(web1.root, 'application/vnd.example.sbom.v1', '{"sbom":"web:1"}');
  return {
    'docker.io/library/web:1': web1,
    'docker.io/library/web:2': web2,
    'docker.io/library/web:sbom': sbom,
    'quay.io/org/multi:v1': multi,
    'ghcr.io/team/dlist:3': dlist,
    'registry.example.com/charts/app:0.1.0': chart,
  };
}

/** Write `images` as a bundle at `out` (a blob cache is made beside it). */
export async function writeFixtureBundle(out: string, images: Record<string, BuiltImage>, meta: { name?: string; version?: string } = {}): Promise<Fixture> {
  const cache = `${out}.cache`;
  await mkdir(cache, { recursive: true });
  const store = new FileStore(join(cache, 'store'));
  for (const img of Object.values(images)) for (const b of img.blobs) await store.push(b.descriptor, blobStream(b));
  await writeBundle({
    out,
    images: Object.entries(images).map(([reference, img]) => ({ reference, root: img.root })),
    source: store,
    lockText: 'images: []\n',
    name: meta.name ?? 'fixture',
    version: meta.version ?? '1.0.0',
    toolVersion: '0.0.0-test',
  });
  return { path: out, images };
}
