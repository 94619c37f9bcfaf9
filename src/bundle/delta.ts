// A delta's base, from a bundle: its identity (the digest of its inventory) and every blob its
// images are made of — those it carries and, if it is a delta itself, those it relies on — since a
// registry that took the base holds all of them.
import { allBlobs } from './format.ts';
import type { DeltaBase } from './plan.ts';
import { openBundle, type Bundle } from './read.ts';
import type { BundleFiles } from './volumes.ts';

export function deltaBaseOf(bundle: Bundle): DeltaBase {
  return {
    inventory: bundle.inventoryDigest,
    name: bundle.bundleInfo.name,
    version: bundle.bundleInfo.version,
    blobs: new Map(allBlobs(bundle.inventory).map((b) => [b.digest, b.size])),
  };
}

/** Open a bundle (or its volumes) just for its base description; only its metadata is read. */
export async function loadDeltaBase(spec: string | readonly string[] | BundleFiles, signal?: AbortSignal): Promise<DeltaBase> {
  const bundle = await openBundle(spec, { signal });
  try {
    return deltaBaseOf(bundle);
  } finally {
    await bundle.close();
  }
}
