// postRender: map every image in rendered manifests to your registry (helm's post-renderer).
import { resolve } from 'node:path';
import { throwIfAborted } from '../core/errors.ts';
import { postRender as mapManifests, type PostRenderResult, type RemainingImage, type RewrittenImage } from '../rewrite/post-render.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import type { BaseOptions } from './options.ts';
import { targetWithDigests, type DigestMapping, type PinnedDigestOptions } from './pinned-digests.ts';

export type { PostRenderResult, RemainingImage, DigestMapping };
export type { RewrittenImage as MappedImage };

export interface PostRenderOptions extends BaseOptions, PinnedDigestOptions {
  /** Namespace of resources that name none, in the results (default `default`). */
  namespace?: string | undefined;
  /** Write what was mapped and what was not to this file, as JSON. */
  report?: string | undefined;
}

/**
 * Map every image reference in `manifests` (multi-document YAML) to `registry` (`R[/PREFIX]`, where
 * a push put them), tags and digests kept; everything else comes out as it went in. `remaining`
 * lists the images that still point outside the registry.
 */
export async function postRender(manifests: string, registry: string, options: PostRenderOptions = {}): Promise<PostRenderResult & { digests?: DigestMapping[] }> {
  throwIfAborted(options.signal);
  // With a bundle or lock: pins to upstream indexes the registry does not hold are mapped too.
  const { target, digests } = await targetWithDigests(registry, options);
  const mapped = mapManifests(manifests, target, options.namespace !== undefined ? { namespace: options.namespace } : {});
  const result = digests ? { ...mapped, digests } : mapped;
  if (options.report !== undefined) {
    const report = { registry, documents: result.documents, changed: result.changed, remaining: result.remaining, warnings: result.warnings, ...(digests ? { digests } : {}) };
    await writeFileAtomic(resolve(options.report), `${JSON.stringify(report, null, 2)}\n`, { signal: options.signal });
  }
  return result;
}
