// push: every image and chart of a bundle into a target registry, manifest bytes untouched so every
// digest (index included) is preserved; a chart lands where `helm pull oci://REGISTRY/PREFIX/charts/NAME`
// finds it. Blobs and manifests already there are skipped; a blob pushed to one repository is
// mounted into the next; killed and rerun, it completes.
import { formatReference, parseReference, type Reference } from './core/reference.ts';
import type { Descriptor } from './core/manifest.ts';
import type { Storage, TagResolver } from './content/types.ts';
import { openBundle } from './bundle/index.ts';
import { copyGraph, type CopyEvent, type SiblingUploads } from './copy.ts';
import { mapAll, type Target } from './rewrite/mapping.ts';
import { Limiter } from './util/limiter.ts';
import { ARTIFACT_ANNOTATION, CHART_ARTIFACT } from './helm/artifact.ts';

export interface PushRepository extends Storage, Partial<TagResolver> {}
export type OpenTarget = (ref: Reference) => PushRepository;

export interface PushOptions {
  bundlePath: string;
  target: Target;
  open: OpenTarget;
  concurrency?: number;
  signal?: AbortSignal | undefined;
  onEvent?: (e: CopyEvent | { type: 'image-done'; image: string; target: string; digest: string }) => void;
}

export interface PushedImage {
  /** A Helm chart (pullable with `helm pull oci://…`) or an image. */
  kind: 'image' | 'chart';
  source: string;
  target: string;
  digest: string;
  blobs: { copied: number; exists: number; mounted: number };
  bytes: number;
}

export interface PushResult {
  images: PushedImage[];
  bytes: number;
}

export async function pushBundle(opts: PushOptions): Promise<PushResult> {
  const bundle = await openBundle(opts.bundlePath);
  try {
    const images = bundle.images();
    // Map everything first: a conflict is reported before a single byte is sent.
    const mapping = mapAll(images.map((i) => parseReference(i.reference)), opts.target);
    const limiter = new Limiter(opts.concurrency ?? 8);
    // Per target repository, what it already received in this run; across repositories, which
    // blob is being uploaded where, so siblings mount it instead of uploading it again.
    const done = new Map<string, Map<string, Promise<void>>>();
    const uploads: SiblingUploads['uploads'] = new Map();
    const stats = new Map<string, PushedImage>();

    const pushOne = async (img: { reference: string; root: Descriptor }): Promise<PushedImage> => {
      const src = formatReference(parseReference(img.reference));
      const dst = mapping.get(src)!;
      const repoKey = `${dst.registry}/${dst.repository}`;
      const stat: PushedImage = { kind: img.root.annotations?.[ARTIFACT_ANNOTATION] === CHART_ARTIFACT ? 'chart' : 'image', source: img.reference, target: formatReference({ ...dst, digest: undefined, tag: dst.tag ?? undefined }), digest: img.root.digest, blobs: { copied: 0, exists: 0, mounted: 0 }, bytes: 0 };
      if (dst.tag === undefined) stat.target = `${dst.registry}/${dst.repository}@${img.root.digest}`;
      stats.set(img.reference, stat);
      if (!done.has(repoKey)) done.set(repoKey, new Map());
      await copyGraph(bundle, opts.open(dst), img.root, {
        limiter,
        done: done.get(repoKey)!,
        signal: opts.signal,
        image: img.reference,
        tag: dst.tag ?? img.root.digest,
        siblings: { repository: dst.repository, uploads },
        onEvent: (e) => {
          if (e.type === 'blob-done') {
            stat.blobs[e.how]++;
            if (e.how === 'copied') stat.bytes += e.size;
          }
          opts.onEvent?.(e);
        },
      });
      opts.onEvent?.({ type: 'image-done', image: img.reference, target: stat.target, digest: img.root.digest });
      return stat;
    };

    // Images in the same target repository go one after another (their blobs overlap most);
    // different repositories run in parallel under the shared blob limiter.
    const byRepo = new Map<string, typeof images>();
    for (const img of images) {
      const dst = mapping.get(formatReference(parseReference(img.reference)))!;
      const key = `${dst.registry}/${dst.repository}`;
      byRepo.set(key, [...(byRepo.get(key) ?? []), img]);
    }
    const results = await Promise.allSettled(
      [...byRepo.values()].map(async (group) => {
        const out: PushedImage[] = [];
        for (const img of group) out.push(await pushOne(img));
        return out;
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const pushed = images.map((i) => stats.get(i.reference)!);
    return { images: pushed, bytes: pushed.reduce((a, p) => a + p.bytes, 0) };
  } finally {
    await bundle.close();
  }
}
