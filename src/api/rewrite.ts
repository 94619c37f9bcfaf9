// rewrite: a values overlay that points every image of a chart at your registry, proven by rendering.
import { resolve } from 'node:path';
import { rewriteChart, type RewriteResult } from '../rewrite/rewrite.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { renderSettings, type BaseOptions, type RenderOptions } from './options.ts';
import { targetWithDigests, type DigestMapping, type PinnedDigestOptions } from './pinned-digests.ts';

export type { RewriteResult };
export type { ImagePlace, ImageStatus, NotRedirected, OptionalCoverage, OverlayValue, PostRenderFallback, RewrittenImage } from '../rewrite/rewrite.ts';

export interface RewriteOptions extends BaseOptions, Omit<RenderOptions, 'kubectl'>, PinnedDigestOptions {
  /** Write the overlay (YAML) to this file too, atomically. */
  output?: string | undefined;
  /**
   * What values cannot move goes to airlock's post-renderer: the result carries the exact helm
   * command (`postRender`), proven by running the post-renderer over the overlay's render.
   */
  postRenderFallback?: boolean | undefined;
  /**
   * Redirect the images of components switched off by default too (`metrics.enabled: false`, a
   * subchart's condition): the chart is rendered again with its switches on, as
   * `discover({ includeOptional })` does, and the proof renders both ways; `optional` says what was
   * moved and what was left (with the switch that brings each in).
   */
  includeOptional?: boolean | undefined;
}

export interface RewriteReport extends RewriteResult {
  /** The overlay file written (absolute), when `output` was given. */
  file?: string;
  /** With a bundle or lock: each image whose index it carries reduced, and whether pins to its upstream digest are mapped. */
  digests?: DigestMapping[];
}

/**
 * Write a values overlay that sends every image `chart` renders to `registry` (`R[/PREFIX]`, where a
 * push put them), using the chart's own values, then render again and prove it place by place.
 * `notRedirected` lists what values cannot redirect (the post-renderer's job).
 */
export async function rewrite(chart: string, registry: string, options: RewriteOptions = {}): Promise<RewriteReport> {
  const { target, digests } = await targetWithDigests(registry, options);
  const rewritten = await rewriteChart({
    chart,
    registry: target,
    ...renderSettings(options),
    ...(options.includeOptional ? { includeOptional: true } : {}),
    ...(options.postRenderFallback ? { postRenderFallback: true, ...(options.output !== undefined ? { overlayFile: options.output } : {}) } : {}),
  });
  const result = digests ? { ...rewritten, digests } : rewritten;
  if (options.output === undefined) return result;
  const file = resolve(options.output);
  await writeFileAtomic(file, result.overlayText, { signal: options.signal });
  return { ...result, file };
}
