// The image set the transfer benchmark moves: shaped like a small product's release, not like a
// test fixture. Two big base layers (an OS and a language runtime) are shared by most images, app
// layers range from a few KiB to tens of MiB, and one image is a 2-platform index (its arm64 side
// has its own base). Layers are incompressible random bytes, like the already-compressed layers
// of real images, so nobody gets a free ride from compression.
//
// All images are OCI: skopeo 1.9 writes a Docker-format manifest into an OCI layout but cannot read
// it back ("no descriptor found for reference": its layout reader skips index.json entries whose
// media type is not an OCI manifest or index), so the skopeo push leg could not run on one.
//
// Sizes are in MiB at full scale (~350 MiB of unique blobs); `small` scales them down to ~60 MiB
// for a smoke run. Everything is deterministic: the same size gives the same digests.
import { buildImage, buildIndex, type BuiltImage, type LayerSpec } from '../test/helpers/images.ts';

export type SetSize = 'full' | 'small';

export interface BenchImage {
  /** Repository path, the same in the source and both target registries. */
  repo: string;
  tag: string;
  image: BuiltImage;
}

const MiB = 1024 * 1024;

export function buildImageSet(size: SetSize, workDir: string): BenchImage[] {
  const scale = size === 'full' ? 1 : 1 / 6;
  // Seeds name the content: equal seed + size = the same layer digest wherever it is used.
  const random = (mib: number, seed: number): LayerSpec => ({ random: { bytes: Math.round(mib * scale * MiB), seed } });
  const os = random(72, 101);
  const runtime = random(64, 102);
  const armOs = random(30, 103);
  const files = (name: string): LayerSpec => ({ files: { [`etc/${name}.conf`]: `name=${name}\nreplicas=3\n`, 'srv/VERSION': `${name}\n` } });
  const image = (layers: LayerSpec[], opts: { platform?: string } = {}): BuiltImage => buildImage({ layers, workDir, ...opts });

  return [
    { repo: 'shop/web', tag: '1.0', image: image([os, runtime, random(24, 201), files('web')]) },
    { repo: 'shop/api', tag: '2.1', image: image([os, runtime, random(40, 202)]) },
    { repo: 'shop/worker', tag: '2.1', image: image([os, runtime, random(16, 203), files('worker')]) },
    // Config-only on top of the OS: the "everything is already there" case.
    { repo: 'shop/cron', tag: '1.0', image: image([os, files('cron')]) },
    { repo: 'shop/gateway', tag: '1.3', image: image([os, runtime, random(2, 204)]) },
    { repo: 'tools/debug', tag: '0.9', image: image([os, random(8, 205)]) },
    { repo: 'data/etl', tag: '3.2', image: image([runtime, random(48, 206)]) },
    { repo: 'libs/cache', tag: '7.2', image: image([random(20, 207), files('cache')]) },
    {
      repo: 'shop/multi',
      tag: '3',
      image: buildIndex([
        image([os, runtime, random(12, 208)], { platform: 'linux/amd64' }),
        image([armOs, random(12, 209)], { platform: 'linux/arm64' }),
      ]),
    },
  ];
}

/** Every distinct blob (layers, configs, manifests, indexes) and its size, across the set. */
export function uniqueBlobBytes(set: BenchImage[]): { count: number; bytes: number } {
  const sizes = new Map<string, number>();
  for (const { image } of set) for (const b of image.blobs) sizes.set(b.descriptor.digest, b.descriptor.size);
  return { count: sizes.size, bytes: [...sizes.values()].reduce((a, b) => a + b, 0) };
}
