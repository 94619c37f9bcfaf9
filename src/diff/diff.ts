// `airlock diff OLD NEW`: what a new bundle (or lock) changes against the one before, for a
// reviewer: images, charts, files and tools added, removed and changed, the bytes not seen before,
// and the signer. The one entry point of src/diff.
import { throwIfAborted } from '../core/errors.ts';
import { loadVerifyingKey, type VerifyingKey } from '../sign/keys.ts';
import { compareSides, type BundleDiff } from './compare.ts';
import { loadSide } from './side.ts';

export type { BundleDiff, Changed, DiffSideInfo, ListDiff } from './compare.ts';
export type { DiffSide, SideChart, SideFile, SideImage, SideSigner, SideTool } from './side.ts';
export { formatDiffText } from './text.ts';

export interface DiffBundlesOptions {
  /** Public keys (NAME.pub paths, or loaded): a signature one of them verifies is reported verified, else only claimed. */
  keys?: readonly (string | VerifyingKey)[] | undefined;
  signal?: AbortSignal | undefined;
}

/** Compare two bundles (each a file, or a split bundle's volumes) or locks (airlock.lock); a bundle with a lock works too. */
export async function diffBundles(oldSpec: string | readonly string[], newSpec: string | readonly string[], opts: DiffBundlesOptions = {}): Promise<BundleDiff> {
  const keys = await Promise.all((opts.keys ?? []).map((k) => (typeof k === 'string' ? loadVerifyingKey(k) : k)));
  throwIfAborted(opts.signal);
  const a = await loadSide(oldSpec, keys);
  throwIfAborted(opts.signal);
  const b = await loadSide(newSpec, keys);
  return compareSides(a, b);
}
