// Bundles of one app in two versions, written with writeBundle directly (no registry needed): v2
// bumps nginx 1.27 → 1.28 (sharing its base layer), adds redis, updates the podinfo chart 6.5.0 →
// 6.6.0 and the k3s file; app:1 is the same in both. Also a bundle of many images, for the report.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStore } from '../../src/content/file-store.ts';
import { digestOf } from '../../src/core/digest.ts';
import { MediaType, type Descriptor } from '../../src/core/manifest.ts';
import { writeBundle } from '../../src/bundle/index.ts';
import { buildFileArtifact } from '../../src/files/artifact.ts';
import type { SigningKey } from '../../src/sign/keys.ts';
import { REFERRER_KIND_ANNOTATION, REFERRER_SUBJECT_ANNOTATION } from '../../src/core/referrers.ts';
import { blobStream, buildArtifact, buildImage, layersOf, type BlobData, type BuiltImage } from '../helpers/images.ts';

function blob(mediaType: string, bytes: Buffer): BlobData {
  return { descriptor: { mediaType, digest: digestOf(bytes), size: bytes.length }, bytes };
}

/** A Helm chart as an OCI artifact: helm's config and one chart layer (the bytes need not be a real .tgz here). */
export function buildChart(name: string, version: string): BuiltImage {
  const config = blob(MediaType.helmConfig, Buffer.from(JSON.stringify({ apiVersion: 'v2', name, version })));
  const layer = blob(MediaType.helmChart, Buffer.from(`chart ${name} ${version}`));
  const manifest = blob(MediaType.ociManifest, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: config.descriptor, layers: [layer.descriptor] })));
  return { root: manifest.descriptor, blobs: [config, layer, manifest], platforms: [] };
}

/** A file of `files:` as the bundle carries it: its artifact, named as pack names it. */
export function buildFile(name: string, content: string, version?: string): { reference: string; image: BuiltImage } {
  const bytes = Buffer.from(content);
  const a = buildFileArtifact({ name, digest: digestOf(bytes), size: bytes.length, mode: 0o755, version });
  return {
    reference: a.reference,
    image: { root: a.root, blobs: [{ descriptor: a.config.descriptor, bytes: a.config.bytes }, { descriptor: a.layer, bytes }, { descriptor: a.manifest.descriptor, bytes: a.manifest.bytes }], platforms: [] },
  };
}

/** A cosign-style signature of `subject`, marked as the referrer it is (what pack carries from the lock). */
export function buildSignature(subject: Descriptor): BuiltImage {
  const sig = buildArtifact({ artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', files: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', bytes: Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': subject.digest } } })) }] });
  return { ...sig, root: { ...sig.root, annotations: { [REFERRER_SUBJECT_ANNOTATION]: subject.digest, [REFERRER_KIND_ANNOTATION]: 'signature' } } };
}

export async function writeImages(out: string, images: Record<string, BuiltImage>, meta: { name: string; version: string; sign?: SigningKey | undefined }): Promise<string> {
  const store = new FileStore(`${out}.cache`);
  await mkdir(`${out}.cache`, { recursive: true });
  for (const img of Object.values(images)) for (const b of img.blobs) await store.push(b.descriptor as Descriptor, blobStream(b));
  await writeBundle({
    out,
    images: Object.entries(images).map(([reference, img]) => ({ reference, root: img.root })),
    source: store,
    lockText: 'images: []\n',
    name: meta.name,
    version: meta.version,
    toolVersion: '0.0.0-test',
    ...(meta.sign ? { sign: meta.sign } : {}),
  });
  return out;
}

export interface AppBundles {
  v1: string;
  v2: string;
}

/** shop 1.0 and shop 1.1, in `dir`; signed with the keys given. */
export async function writeAppBundles(dir: string, sign: { v1?: SigningKey | undefined; v2?: SigningKey | undefined } = {}): Promise<AppBundles> {
  const base = buildImage({ layers: [{ random: { bytes: 96 * 1024, seed: 7 } }] });
  const nginx127 = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'etc/nginx/version': '1.27\n' } }] });
  const nginx128 = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'etc/nginx/version': '1.28\n' } }] });
  const app = buildImage({ layers: [{ files: { 'srv/app': 'app 1\n' } }] });
  const redis = buildImage({ layers: [{ random: { bytes: 48 * 1024, seed: 9 } }] });
  const k3s1 = buildFile('k3s', 'k3s v1.30.1\n', 'v1.30.1+k3s1');
  const k3s2 = buildFile('k3s', 'k3s v1.30.2\n', 'v1.30.2+k3s1');
  const v1 = await writeImages(
    join(dir, 'shop-1.0.tar'),
    {
      'docker.io/library/nginx:1.27': nginx127,
      'docker.io/library/app:1': app,
      'ghcr.io/stefanprodan/charts/podinfo:6.5.0': buildChart('podinfo', '6.5.0'),
      [k3s1.reference]: k3s1.image,
    },
    { name: 'shop', version: '1.0', sign: sign.v1 },
  );
  const v2 = await writeImages(
    join(dir, 'shop-1.1.tar'),
    {
      'docker.io/library/nginx:1.28': nginx128,
      [`docker.io/library/nginx:sha256-${nginx128.root.digest.slice(7)}.sig`]: buildSignature(nginx128.root),
      'docker.io/library/app:1': app,
      'docker.io/library/redis:7': redis,
      'ghcr.io/stefanprodan/charts/podinfo:6.6.0': buildChart('podinfo', '6.6.0'),
      [k3s2.reference]: k3s2.image,
    },
    { name: 'shop', version: '1.1', sign: sign.v2 },
  );
  return { v1, v2 };
}

/** `n` images in a few registries and repositories, sharing one base layer. */
export async function writeManyImages(out: string, n: number): Promise<string> {
  const base = buildImage({ layers: [{ random: { bytes: 8 * 1024, seed: 3 } }] });
  const images: Record<string, BuiltImage> = {};
  const registries = ['docker.io/library', 'quay.io/team', 'ghcr.io/org', 'registry.k8s.io'];
  for (let i = 0; i < n; i++) images[`${registries[i % registries.length]}/svc-${String(i).padStart(3, '0')}:1.${i}`] = buildImage({ baseLayers: layersOf(base), layers: [{ files: { 'etc/id': `${i}\n` } }] });
  return await writeImages(out, images, { name: 'many', version: '1.0' });
}
