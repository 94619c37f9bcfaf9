// inspect: what a bundle holds, from its metadata alone (fast on a bundle of any size).
import { resolve } from 'node:path';
import { throwIfAborted } from '../core/errors.ts';
import { inspectBundle, type BundleSummary, type BundleSummaryChart, type BundleSummaryFile, type BundleSummaryImage, type BundleSummaryReferrer, type BundleSummaryTool } from '../bundle/inspect.ts';
import type { BaseOptions } from './options.ts';

export type { BundleSummary, BundleSummaryChart, BundleSummaryFile, BundleSummaryImage, BundleSummaryReferrer, BundleSummaryTool };

export type InspectOptions = BaseOptions;

/** The images and charts of a bundle (its file, or a split bundle's volumes), with digests, platforms and sizes. */
export async function inspect(bundle: string | readonly string[], options: InspectOptions = {}): Promise<BundleSummary> {
  throwIfAborted(options.signal);
  return await inspectBundle(typeof bundle === 'string' ? resolve(bundle) : bundle.map((p) => resolve(p)));
}
