// The lock file beside a spec: where it lives, and locking a spec into it.
import { dirname, join } from 'node:path';
import { lockSpec, type LockOptions, type OpenRepository } from './lock.ts';
import { formatLock, type Lock } from '../spec/lock.ts';
import { loadSpec, withPlatforms } from '../spec/spec.ts';
import type { ChartHttpClient } from '../helm/http-client.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';

/** airlock.lock in the spec's folder. */
export function lockPathFor(specPath: string): string {
  return join(dirname(specPath), 'airlock.lock');
}

/** Lock a spec and write the lock atomically (nothing half-written when it fails). */
export async function lockAndWrite(
  specPath: string,
  lockPath: string,
  opts: {
    open: OpenRepository;
    http?: ChartHttpClient | undefined;
    concurrency?: number;
    signal?: AbortSignal | undefined;
    /** `--platform`: these platforms instead of the spec's. */
    platforms?: readonly string[] | undefined;
    onWarning?: LockOptions['onWarning'];
    referrers?: boolean | undefined;
    cacheDir?: string | undefined;
  },
): Promise<{ lock: Lock; text: string }> {
  const spec = withPlatforms(await loadSpec(specPath), opts.platforms);
  const lock = await lockSpec(spec, { ...opts, baseDir: dirname(specPath) });
  const text = formatLock(lock);
  await writeFileAtomic(lockPath, text, { signal: opts.signal });
  return { lock, text };
}
