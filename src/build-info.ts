// What `airlock version` tells about the airlock that runs: which version, built from which commit,
// for which platform, on which Node. The executable carries its commit from the build
// (scripts/build-exe.ts puts AIRLOCK_BUILD into the bundle); the sources ask git, on demand only,
// so no other command pays for it.
import { realpath } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isExecutable } from './util/executable.ts';
import { runProcess } from './util/run-process.ts';
import { TOOL_NAME, TOOL_VERSION } from './version.ts';

// Replaced by the executable's bundler (esbuild `define`); in the sources the name is not defined.
declare const AIRLOCK_BUILD: { commit: string; dirty: boolean } | undefined;

export interface BuildInfo {
  name: string;
  version: string;
  /** The git commit built (the executable) or checked out (the sources); "unknown" outside git. */
  commit: string;
  /** The tree had changes not committed: the commit alone does not say what runs. */
  dirty: boolean;
  /** The single executable (npm run build:exe), or Node running the scripts (sources, dist/). */
  from: 'executable' | 'sources';
  /** os/architecture, as images name it (linux/amd64). An executable runs only on its own. */
  platform: string;
  /** The Node.js version inside (executable) or running (sources). */
  node: string;
}

/** Node's names for architectures, as OCI platforms spell them. */
export function ociArchitecture(arch: string): string {
  return arch === 'x64' ? 'amd64' : arch === 'ia32' ? '386' : arch;
}

/** This process's platform as an OCI platform string: linux/amd64, linux/arm64. */
export function runningPlatform(): string {
  return `${process.platform}/${ociArchitecture(process.arch)}`;
}

export async function buildInfo(): Promise<BuildInfo> {
  const base = { name: TOOL_NAME, version: TOOL_VERSION, platform: runningPlatform(), node: process.versions.node };
  if (isExecutable()) {
    const b = typeof AIRLOCK_BUILD === 'undefined' ? undefined : AIRLOCK_BUILD;
    return { ...base, commit: b?.commit ?? 'unknown', dirty: b?.dirty ?? false, from: 'executable' };
  }
  return { ...base, ...(await checkout()), from: 'sources' };
}

/**
 * The commit of the git checkout these sources are, when they are one: the package root (the
 * folder above src/ or dist/) must be the top of the work tree, else an installed package inside
 * someone else's repository would report that repository's commit.
 */
async function checkout(): Promise<{ commit: string; dirty: boolean }> {
  const unknown = { commit: 'unknown', dirty: false };
  const root = fileURLToPath(new URL('..', import.meta.url));
  const git = async (args: string[]): Promise<string | undefined> => {
    try {
      const r = await runProcess('git', ['-C', root, ...args], { timeoutMs: 10_000, env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' } });
      return r.exitCode === 0 ? r.stdout.trim() : undefined;
    } catch {
      return undefined; // no git on this machine
    }
  };
  const top = await git(['rev-parse', '--show-toplevel']);
  if (top === undefined || (await realpath(top)) !== (await realpath(root))) return unknown;
  const commit = await git(['rev-parse', 'HEAD']);
  if (commit === undefined) return unknown;
  // A status git cannot give counts as changes: "clean" is a claim.
  return { commit, dirty: (await git(['status', '--porcelain'])) !== '' };
}
