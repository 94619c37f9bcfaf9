// Is everything an image needs in the bundle? push, serve and export ask before they send or write
// a byte: a bundle that lacks a blob is refused whole (exit 5, each missing blob named with the
// images that need it) instead of failing halfway, with some images pushed or some tarballs written.
import { Readable } from 'node:stream';
import { IntegrityError, throwIfAborted } from '../core/errors.ts';
import { MAX_MANIFEST_BYTES, type Descriptor } from '../core/manifest.ts';
import { ManifestCache, walkGraph } from '../content/graph.ts';
import { blobPath, compareStrings } from './format.ts';
import type { Bundle } from './read.ts';

/** A blob some images need that the bundle does not hold (or holds at another size). */
export interface MissingBlob {
  digest: string;
  /** The size its descriptor gives. */
  size: number;
  /** What the bundle holds under that digest instead, if anything: its entry's size. */
  found?: number | undefined;
  /** References of the images that need it, sorted. */
  images: string[];
}

/** Collects missing blobs and the images that need them, over the walks of several images. */
export class MissingBlobs {
  readonly #byDigest = new Map<string, { size: number; found: number | undefined; images: Set<string> }>();

  add(desc: Descriptor, image: string, found?: number): void {
    let m = this.#byDigest.get(desc.digest);
    if (!m) this.#byDigest.set(desc.digest, (m = { size: desc.size, found, images: new Set() }));
    m.images.add(image);
  }

  get size(): number {
    return this.#byDigest.size;
  }

  list(): MissingBlob[] {
    return [...this.#byDigest]
      .sort((a, b) => compareStrings(a[0], b[0]))
      .map(([digest, m]) => ({ digest, size: m.size, ...(m.found !== undefined ? { found: m.found } : {}), images: [...m.images].sort(compareStrings) }));
  }
}

/**
 * The error for blobs the images need and the bundle(s) lack: `bundles` names them (their paths),
 * `consequence` says what was not done (e.g. "nothing was pushed").
 */
export function incompleteError(bundles: readonly string[], missing: readonly MissingBlob[], consequence: string, hint?: string): IntegrityError {
  const n = missing.length;
  const bytes = missing.reduce((a, m) => a + m.size, 0);
  const lines = missing.map((m) => `${m.digest} (${m.size} bytes) for ${m.images.join(', ')}${m.found !== undefined ? `: the bundle holds ${m.found} bytes under that digest` : ''}`);
  const where = bundles.length === 1 ? `${bundles[0]}: ${n === 1 ? 'a blob' : `${n} blobs`} (${bytes} bytes) the images need ${n === 1 ? 'is' : 'are'} not in the bundle` : `${bundles.join(', ')}: ${n === 1 ? 'a blob' : `${n} blobs`} (${bytes} bytes) the images need ${n === 1 ? 'is' : 'are'} in none of these bundles`;
  return new IntegrityError(`${where}, so ${consequence}:\n  ${lines.join('\n  ')}`, {
    code: 'BUNDLE_INCOMPLETE',
    hint: hint ?? 'the bundle is damaged or was cut short: copy it again from the source (`airlock verify BUNDLE` lists every problem)',
  });
}

export interface FindMissingOptions {
  /** Blobs the bundle may lack because they come from elsewhere (a delta's base), by digest: their size. */
  elsewhere?: ReadonlyMap<string, number> | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Walk every image's graph in `bundle` (manifests read from the tar and checked against their
 * digests) and return what it lacks, and for each digest reached the images that use it.
 */
export async function findMissingBlobs(
  bundle: Bundle,
  images: readonly { reference: string; root: Descriptor }[],
  opts: FindMissingOptions = {},
): Promise<{ missing: MissingBlob[]; usedBy: Map<string, string[]> }> {
  const missing = new MissingBlobs();
  const usedBy = new Map<string, string[]>();
  const manifests = new ManifestCache().wrap({
    label: bundle.path,
    exists: async (d) => bundle.blobEntry(d.digest) !== undefined,
    fetch: async (d) => Readable.from([await bundle.readEntry(blobPath(d.digest), MAX_MANIFEST_BYTES)]),
  });
  for (const { reference, root } of images) {
    throwIfAborted(opts.signal);
    const seen = new Set<string>();
    await walkGraph(manifests, root, {
      signal: opts.signal,
      image: reference,
      visit: (d) => {
        if (seen.has(d.digest)) return false;
        seen.add(d.digest);
        const users = usedBy.get(d.digest);
        if (users) users.push(reference);
        else usedBy.set(d.digest, [reference]);
        const e = bundle.blobEntry(d.digest);
        if (e?.size === d.size) return true;
        if (!e && opts.elsewhere?.get(d.digest) === d.size) return false;
        missing.add(d, reference, e?.size);
        return false;
      },
    });
  }
  return { missing: missing.list(), usedBy };
}
