// Which pinned digests the target registry does not hold, and what to point at instead. A bundle
// packed with `platforms:` carries some indexes reduced (a new digest) and their upstream indexes
// beside them; a chart may pin `image@sha256:<upstream>`. Whether that pin resolves depends on what
// push did, which the import history records per target:
//   - the registry kept the upstream index: the pin resolves as written, and is left alone;
//   - the registry refused it (an index whose other platforms are absent): the tag holds the
//     reduced index, and the pin is mapped to it;
//   - no push of it to this target is recorded (post-render runs on another machine than push,
//     or the images are served): the pin is mapped too. Push stores the reduced index by its digest
//     in either case and serve answers it, so the mapped reference resolves wherever airlock put
//     the images; only a pin left alone could fail.
// The decision is pure (decideDigestMap); loadDigestMap reads the bundle or lock and the history.
import { resolve } from 'node:path';
import type { Digest } from '../core/digest.ts';
import { throwIfAborted } from '../core/errors.ts';
import type { HistoryEntry } from '../history/history.ts';
import type { Lock } from '../spec/lock.ts';
import type { Inventory } from '../bundle/format.ts';
import { formatTarget, type Target } from './mapping.ts';

/** An image carried with a reduced index: the upstream digest charts pin, and the reduced one. */
export interface ReducedIndex {
  image: string;
  original: Digest;
  reduced: Digest;
}

/** Why a pin to an upstream index is mapped or left. */
export type DigestDecision = 'refused' | 'kept' | 'unrecorded';

export interface DigestMapping extends ReducedIndex {
  /** Mapped to `reduced` (refused, unrecorded) or left as written (kept). */
  mapped: boolean;
  why: DigestDecision;
}

export interface DigestMap {
  /** upstream digest → reduced digest, for the pins to map (Target.digests). */
  digests: Map<string, Digest>;
  /** Every reduced index of the sources, and what was decided for it. */
  decisions: DigestMapping[];
}

export function reducedIndexesOfLock(lock: Lock): ReducedIndex[] {
  return lock.images.filter((i) => i.bundled).map((i) => ({ image: i.reference, original: i.digest, reduced: i.bundled!.digest }));
}

export function reducedIndexesOfInventory(inv: Inventory): ReducedIndex[] {
  return inv.images.filter((i) => i.original).map((i) => ({ image: i.reference, original: i.original!.digest, reduced: i.digest }));
}

/** What each reduced index's pins need at `target`, from the pushes the history records there (the last one wins). */
export function decideDigestMap(reduced: readonly ReducedIndex[], history: readonly HistoryEntry[], target: Target): DigestMap {
  const where = formatTarget(target);
  const outcome = new Map<string, 'original' | 'reduced'>();
  for (const e of history) {
    // A push with --keep-host put the images elsewhere in the same R/P than one without.
    if (e.action !== 'push' || e.target !== where || (e.keepHost === true) !== (target.keepHost === true)) continue;
    for (const x of e.indexes ?? []) outcome.set(`${x.original}\n${x.reduced}`, x.kept);
  }
  const digests = new Map<string, Digest>();
  const decisions: DigestMapping[] = [];
  for (const r of reduced) {
    const kept = outcome.get(`${r.original}\n${r.reduced}`);
    const why: DigestDecision = kept === 'original' ? 'kept' : kept === 'reduced' ? 'refused' : 'unrecorded';
    const mapped = why !== 'kept';
    if (mapped) digests.set(r.original, r.reduced);
    decisions.push({ ...r, mapped, why });
  }
  return { digests, decisions };
}

export interface LoadDigestMapOptions {
  /** Bundles (their files, or a split bundle's volumes) whose inventories list the reduced indexes. */
  bundles?: readonly string[] | undefined;
  /** Locks that list them (airlock.lock: `bundled:`). */
  locks?: readonly string[] | undefined;
  /** The import history (default: where push writes it). */
  historyFile?: string | undefined;
  target: Target;
  signal?: AbortSignal | undefined;
}

/** Read the reduced indexes from the bundles and locks given, and decide from the import history. */
export async function loadDigestMap(opts: LoadDigestMapOptions): Promise<DigestMap> {
  const reduced: ReducedIndex[] = [];
  for (const path of opts.locks ?? []) {
    throwIfAborted(opts.signal);
    const { readLock } = await import('../spec/lock.ts');
    reduced.push(...reducedIndexesOfLock((await readLock(resolve(path))).lock));
  }
  for (const path of opts.bundles ?? []) {
    throwIfAborted(opts.signal);
    // Loaded only when a bundle is given: post-render is helm's post-renderer and starts often.
    const { openBundle } = await import('../bundle/read.ts');
    const bundle = await openBundle(resolve(path), { signal: opts.signal });
    try {
      reduced.push(...reducedIndexesOfInventory(bundle.inventory));
    } finally {
      await bundle.close();
    }
  }
  const { readHistory } = await import('../history/history.ts');
  const history = await readHistory(opts.historyFile !== undefined ? { path: opts.historyFile } : {});
  return decideDigestMap(reduced, history.entries, opts.target);
}
