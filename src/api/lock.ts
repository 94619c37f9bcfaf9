// lock: pin every image and chart of a spec to a digest, and write the lock beside it.
import { resolve } from 'node:path';
import { lockAndWrite, lockPathFor } from '../lock/lock-file.ts';
import type { Lock } from '../spec/lock.ts';
import type { BaseOptions, EventOptions } from './options.ts';
import { sinkOf, type WarningEvent } from './events.ts';
import { withSession } from './session.ts';

export interface LockOptions extends BaseOptions, EventOptions<WarningEvent> {
  /** The spec (default ./airlock.yaml). */
  spec?: string | undefined;
  /** Where to write the lock (default airlock.lock beside the spec). */
  lockFile?: string | undefined;
  /** These platforms (`linux/amd64`; comma-separated or one each) instead of the spec's `platforms:`. */
  platforms?: string | readonly string[] | undefined;
  /** false: do not look for the signatures, attestations and SBOMs that refer to the images (default: as the spec says). */
  referrers?: boolean | undefined;
}

export interface LockResult {
  /** The lock file written (absolute). */
  lockFile: string;
  lock: Lock;
  /** The lock as written: sorted, deterministic. */
  text: string;
}

/** Resolve every image tag and chart version of the spec now, and write the lock atomically. */
export async function lock(options: LockOptions = {}): Promise<LockResult> {
  const specPath = resolve(options.spec ?? 'airlock.yaml');
  const lockFile = resolve(options.lockFile ?? lockPathFor(specPath));
  return await withSession(options.session, async (session) => {
    const onEvent = sinkOf(options);
    const { lock: locked, text } = await lockAndWrite(specPath, lockFile, {
      open: (ref) => session.repository(ref),
      http: session.chartHttp,
      signal: options.signal,
      platforms: typeof options.platforms === 'string' ? [options.platforms] : options.platforms,
      // An index reduced to the chosen platforms gets a new digest: said for each (INDEX_REDUCED).
      onWarning: (w) => onEvent({ type: 'warning', ...w }),
      referrers: options.referrers,
      cacheDir: session.cacheDir,
    });
    return { lockFile, lock: locked, text };
  });
}
