// What post-render and rewrite take to map pins to upstream indexes a push could not keep: the
// bundle (or its lock) that says which indexes are reduced, and the import history that says what
// push did with them (rewrite/digest-map.ts has the rule).
import { loadDigestMap, type DigestMapping } from '../rewrite/digest-map.ts';
import { parseTarget, type Target } from '../rewrite/mapping.ts';

export type { DigestMapping };

export interface PinnedDigestOptions {
  /** The bundle(s) pushed: their inventories list the images whose index is reduced. */
  bundle?: string | readonly string[] | undefined;
  /** Or the lock(s) they were packed from (`bundled:` entries). */
  lock?: string | readonly string[] | undefined;
  /** The import history that records each push (default: where push writes it). */
  historyFile?: string | undefined;
  /**
   * Keep each image's source registry host in the path: `quay.io/x/app:1` → `R/P/quay.io/x/app:1`
   * (`localhost:5000` as `localhost_5000`), so images that differ only by host do not collide.
   * Whatever pushes, serves, rewrites, post-renders and writes mirror configs must agree on it.
   */
  keepHost?: boolean | undefined;
}

const list = (v: string | readonly string[] | undefined): readonly string[] => (v === undefined ? [] : typeof v === 'string' ? [v] : v);

/** `registry` as a target, with the digests to map when a bundle or lock is given (none otherwise). */
export async function targetWithDigests(registry: string, o: PinnedDigestOptions & { signal?: AbortSignal | undefined }): Promise<{ target: Target; digests?: DigestMapping[] }> {
  const target = parseTarget(registry, { keepHost: o.keepHost });
  const bundles = list(o.bundle);
  const locks = list(o.lock);
  if (bundles.length === 0 && locks.length === 0) return { target };
  const map = await loadDigestMap({ bundles, locks, historyFile: o.historyFile, target, signal: o.signal });
  return { target: map.digests.size > 0 ? { ...target, digests: map.digests } : target, digests: map.decisions };
}
