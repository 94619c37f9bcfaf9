// diff: what a new bundle (or lock) changes against an old one, for review before it crosses.
import { diffBundles, type BundleDiff } from '../diff/diff.ts';
import type { BaseOptions } from './options.ts';

export type { BundleDiff, Changed, DiffSideInfo, ListDiff, SideChart, SideFile, SideImage, SideSigner, SideTool } from '../diff/diff.ts';

export interface DiffOptions extends BaseOptions {
  /** Public keys (NAME.pub): a side's signature one of them verifies is reported as verified, else as a claim. */
  keys?: readonly string[] | undefined;
}

/**
 * Compare OLD and NEW: each a bundle (its file, or a split bundle's volumes) or a lock
 * (`airlock.lock`, `*.lock`). Reads metadata only: it does not verify blobs (`verify` does).
 */
export async function diff(oldBundle: string | readonly string[], newBundle: string | readonly string[], options: DiffOptions = {}): Promise<BundleDiff> {
  return await diffBundles(oldBundle, newBundle, { keys: options.keys, signal: options.signal });
}
