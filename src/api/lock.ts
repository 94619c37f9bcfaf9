// lock: pin every image and chart of a spec to a digest, and write the lock beside it.
import { resolve } from 'node:path';
import { lockAndWrite, lockPathFor } from '../lock/lock-file.ts';
import type { Lock } from '../spec/lock.ts';
import type { BaseOptions } from './options.ts';
import { withSession } from './session.ts';

export interface LockOptions extends BaseOptions {
  /** The spec (default ./airlock.yaml). */
  spec?: string | undefined;
  /** Where to write the lock (default airlock.lock beside the spec). */
  lockFile?: string | undefined;
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
    const { lock: locked, text } = await lockAndWrite(specPath, lockFile, { open: (ref) => session.repository(ref), http: session.chartHttp, signal: options.signal, cacheDir: session.cacheDir });
    return { lockFile, lock: locked, text };
  });
}
