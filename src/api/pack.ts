// pack: every locked image and chart into one verifiable bundle (or its volumes).
import { resolve } from 'node:path';
import { pack as packBundle, type PackEvent, type PackResult } from '../pack/pack.ts';
import { checkSplit } from '../bundle/volumes.ts';
import { loadSigningKey, readPassphrase } from '../sign/keys.ts';
import { sinkOf } from './events.ts';
import type { BaseOptions, EventOptions } from './options.ts';
import { withSession } from './session.ts';

export type { PackEvent, PackResult };

export interface PackOptions extends BaseOptions, EventOptions<PackEvent> {
  /** The spec (default ./airlock.yaml); the lock is read from beside it. */
  spec?: string | undefined;
  /** The lock (default airlock.lock beside the spec). */
  lockFile?: string | undefined;
  /** Lock first (and write the lock) instead of failing when it is missing or does not match the spec. */
  relock?: boolean | undefined;
  /** These platforms (`linux/amd64`; comma-separated or one each) instead of the spec's `platforms:` (as `lock` was given them). */
  platforms?: string | readonly string[] | undefined;
  /**
   * Pack a delta: only the blobs this base lacks. The previous bundle (its file, or volumes) or the
   * lock it was packed from.
   */
  since?: string | undefined;
  /** Write volumes of this size: bytes, or a size such as `4GiB`, `700M`, `650MB` (at least 64 KiB). */
  split?: number | string | undefined;
  /** With `split`: this many recovery volumes (0 to 99), from which repair rebuilds as many lost volumes. */
  parity?: number | undefined;
  /** Sign the inventory with this private key (a NAME.key from keygen). */
  sign?: string | undefined;
  /** The signing key's passphrase. Default: $AIRLOCK_KEY_PASSPHRASE when set. */
  passphrase?: string | undefined;
  /**
   * Carry the airlock executable (and the pinned helm, where one is pinned) for each tool platform
   * under airlock/tools/<os>-<arch>/, listed in the inventory. Default: as the spec's `tools:` says;
   * false: none, whatever the spec says.
   */
  withTools?: boolean | undefined;
  /** Platforms to carry tools for (`linux/amd64`, `linux/arm64`; comma-separated or one each): asks for tools. Default: the spec's, else this machine's. */
  toolsPlatforms?: string | readonly string[] | undefined;
  /** The pinned helm to carry; asks for tools (default: $AIRLOCK_TOOLS_DIR/helm-<os>-<arch>, $AIRLOCK_HELM, helm on PATH, the checkout's .tools/bin/helm: the first that is the pinned one). */
  toolsHelm?: string | undefined;
  /** false: leave out the signatures, attestations and SBOMs that refer to the images (default: as the spec says). */
  referrers?: boolean | undefined;
}

/**
 * Download every image and chart of the lock (verified, through the session's blob cache) and write
 * one deterministic bundle at `output`: every blob once, the same bytes for the same lock. Nothing is
 * left at `output` when it fails.
 */
export async function pack(output: string, options: PackOptions = {}): Promise<PackResult> {
  const split = checkSplit(options.split, options.parity);
  // The key is read (and its passphrase checked) before anything is downloaded.
  const sign = options.sign !== undefined ? await loadSigningKey(options.sign, options.passphrase ?? (await readPassphrase(undefined))) : undefined;
  return await withSession(options.session, async (session) => {
    const onEvent = sinkOf(options);
    return await packBundle({
      specPath: resolve(options.spec ?? 'airlock.yaml'),
      ...(options.lockFile !== undefined ? { lockPath: resolve(options.lockFile) } : {}),
      out: resolve(output),
      cacheDir: session.cacheDir,
      open: (ref) => session.repository(ref),
      http: session.chartHttp,
      relock: options.relock === true,
      platforms: typeof options.platforms === 'string' ? [options.platforms] : options.platforms,
      since: options.since,
      split,
      sign,
      tools: {
        carry: options.withTools,
        platforms: typeof options.toolsPlatforms === 'string' ? [options.toolsPlatforms] : options.toolsPlatforms,
        helm: options.toolsHelm,
      },
      concurrency: session.concurrency,
      signal: options.signal,
      onEvent,
      referrers: options.referrers,
    });
  });
}
