// Which files a bundle carries for `pack --with-tools`: for each platform asked for, the airlock
// executable (executables.ts) and, where this repository pins one, helm (pinned-helm.ts). Every
// platform must have its executable: a bundle that promises the tool and lacks it would be found
// out only on the isolated side. A pinned helm not on this machine is left out, with a warning.
import { NotFoundError } from '../core/errors.ts';
import type { ToolFile } from '../bundle/tools.ts';
import { toolExecutable } from './executables.ts';
import { findPinnedHelm, pinnedHelm } from './pinned-helm.ts';

export interface CarriedToolsOptions {
  /** `os/arch` of each platform, checked (platforms.ts). */
  platforms: readonly string[];
  /** The pinned helm, named. */
  helm?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
  /** A pinned helm that is not on this machine (and none was named): the bundle carries none. */
  onHelmMissing?: ((platform: string, why: string) => void) | undefined;
}

/** The files to carry, every platform's airlock executable first found; each platform without one is named. */
export async function carriedTools(opts: CarriedToolsOptions): Promise<ToolFile[]> {
  const out: ToolFile[] = [];
  const missing: string[] = [];
  for (const platform of opts.platforms) {
    const exe = await toolExecutable(platform);
    if (exe === undefined) missing.push(platform);
    else out.push({ platform, name: 'airlock', file: exe });
  }
  if (missing.length > 0) {
    const names = missing.map((p) => `airlock-${p.replace('/', '-')}`);
    throw new NotFoundError(`no airlock executable for ${missing.join(' and ')} is at hand to carry in the bundle`, {
      code: 'TOOL_NOT_FOUND',
      hint: `build the executables with \`npm run build:exe\` in the airlock checkout (it writes ${names.map((n) => `dist/${n}`).join(', ')}), or set AIRLOCK_TOOLS_DIR to a folder holding ${names.join(', ')}, or run pack from the airlock executable of that platform`,
    });
  }
  for (const platform of opts.platforms) {
    const pin = pinnedHelm(platform);
    if (!pin) continue;
    try {
      out.push({ platform, name: 'helm', file: await findPinnedHelm(pin, { helm: opts.helm, env: opts.env, signal: opts.signal }) });
    } catch (e) {
      // A helm named for this must be there; otherwise airlock is what the other side needs most.
      if (opts.helm !== undefined || !(e instanceof NotFoundError) || !opts.onHelmMissing) throw e;
      opts.onHelmMissing(platform, e.message);
    }
  }
  return out;
}
