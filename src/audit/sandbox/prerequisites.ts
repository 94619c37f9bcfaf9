// What the sandbox needs from the machine: Linux, root (network namespaces, nftables), `ip`
// (iproute2), `nft` (nftables), and `setpriv`, `unshare` and `mount` (util-linux) to shut the
// command in. Missing pieces are named with the way to get them.
import { AuthError, NotFoundError, UsageError } from '../../core/errors.ts';
import { findExecutable } from '../../util/run-process.ts';

export interface SandboxTools {
  ip: string;
  nft: string;
  setpriv: string;
  unshare: string;
  mount: string;
}

/** Where root's tools live even when PATH (a sudo or non-login shell) leaves them out. */
const SBIN = ['/usr/sbin', '/sbin', '/usr/local/sbin'];
const BIN = ['/usr/bin', '/bin'];

async function findTool(name: string, override: string | undefined, env: NodeJS.ProcessEnv, extraDirs = SBIN): Promise<string | undefined> {
  if (override !== undefined && override !== '') return findExecutable(override, { env });
  return findExecutable(name, { env, extraDirs });
}

function listed(items: string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)!}`;
}

export interface PrerequisiteInput {
  platform?: NodeJS.Platform;
  uid?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * The tools, or a typed error naming everything that is missing. `AIRLOCK_IP` / `AIRLOCK_NFT`
 * name the binaries explicitly (and let a test point at one that is not there).
 */
export async function checkPrerequisites(o: PrerequisiteInput = {}): Promise<SandboxTools> {
  const platform = o.platform ?? process.platform;
  if (platform !== 'linux') {
    throw new UsageError(`airlock sandbox needs Linux network namespaces; this is ${platform}`, { code: 'SANDBOX_UNSUPPORTED', hint: 'run it on a Linux machine or VM (as root)' });
  }
  const env = o.env ?? process.env;
  const ip = await findTool('ip', env.AIRLOCK_IP, env);
  const nft = await findTool('nft', env.AIRLOCK_NFT, env);
  const utilLinux = await Promise.all(['setpriv', 'unshare', 'mount'].map(async (name) => [name, await findTool(name, undefined, env, [...BIN, ...SBIN])] as const));
  const missing: string[] = [];
  const packages: string[] = [];
  if (!ip) {
    missing.push(`ip (package iproute2)${env.AIRLOCK_IP ? ` at ${env.AIRLOCK_IP} from $AIRLOCK_IP` : ''}`);
    packages.push('iproute2');
  }
  if (!nft) {
    missing.push(`nft (package nftables)${env.AIRLOCK_NFT ? ` at ${env.AIRLOCK_NFT} from $AIRLOCK_NFT` : ''}`);
    packages.push('nftables');
  }
  const absent = utilLinux.filter(([, path]) => !path).map(([name]) => name);
  if (absent.length > 0) {
    missing.push(`${listed(absent)} (package util-linux)`);
    packages.push('util-linux');
  }
  if (missing.length > 0) {
    throw new NotFoundError(`airlock sandbox needs ${listed(missing)}, not found`, {
      code: 'SANDBOX_TOOLS_MISSING',
      hint: `install ${listed(packages)} (e.g. apt-get install ${packages.join(' ')})`,
    });
  }
  const uid = o.uid ?? process.getuid?.() ?? -1;
  if (uid !== 0) {
    throw new AuthError('airlock sandbox must run as root: it creates network namespaces and nftables rules', {
      code: 'SANDBOX_NEEDS_ROOT',
      hint: 'run it with sudo (sudo -E keeps your environment), or as root in a VM or CI job',
    });
  }
  const [setpriv, unshare, mount] = utilLinux.map(([, path]) => path!);
  return { ip: ip!, nft: nft!, setpriv: setpriv!, unshare: unshare!, mount: mount! };
}
