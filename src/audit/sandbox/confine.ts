// What the sandboxed command keeps of root's powers and what it is shut out of (pure).
//
// The command still runs as root: it owns and reads every file, changes owners and modes, switches
// to another user, kills its own processes and binds ports below 1024. It loses every capability
// that reaches past its namespace: CAP_NET_ADMIN (nftables, links, routes, net sysctls: the
// recorder itself), CAP_NET_RAW (packet sockets, which go around nftables; raw ones, which forge),
// CAP_SYS_ADMIN (setns, unshare, mount: leaving the namespace or re-mounting what it sees),
// CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_BPF, CAP_MKNOD, CAP_SETFCAP and the rest.
// They go from the bounding set too and no_new_privs is set, so no setuid or file-capability
// binary (ping, a planted copy of nft) gives any of them back. setpriv(1) from util-linux does the
// dropping and then execs the command: node cannot change its own capabilities, and a wrapper that
// drops them right before exec leaves nothing in between to get wrong.
//
// Root needs no capability to write a file root owns, and the kernel's sysctls are such files:
// kernel.core_pattern names a program the kernel runs as full root in the host's namespaces when
// something crashes. So /proc/sys, /proc/sysrq-trigger and /sys are read-only where the command
// runs. Its /proc is that of its own PID namespace: airlock, the DNS sink and every process of the
// machine are out of its sight and out of reach of kill().

/** Kept in the bounding set; everything else is dropped. Names as setpriv(1) writes them. */
export const KEPT_CAPABILITIES: readonly string[] = [
  'chown',
  'dac_override',
  'fowner',
  'fsetid',
  'kill',
  'setgid',
  'setuid',
  'net_bind_service',
  'sys_chroot',
  'audit_write',
];

/** The DNS sink needs only to bind port 53. */
export const HELPER_CAPABILITIES: readonly string[] = ['net_bind_service'];

/** setpriv(1) options that leave a root process exactly `keep`, for good. */
export function setprivArgs(keep: readonly string[]): string[] {
  return ['--inh-caps=-all', '--ambient-caps=-all', `--bounding-set=-all${keep.map((c) => `,+${c}`).join('')}`, '--no-new-privs'];
}

export interface ReadOnlyMount {
  /** What becomes read-only; skipped when the kernel has no such file (no magic SysRq, say). */
  path: string;
  /** mount(8)'s arguments. */
  args: readonly string[];
}

/** Run in the command's mount namespace before it starts, in order. */
export const READ_ONLY_MOUNTS: readonly ReadOnlyMount[] = [
  { path: '/proc/sys', args: ['--bind', '-o', 'ro', '/proc/sys', '/proc/sys'] },
  { path: '/proc/sysrq-trigger', args: ['--bind', '-o', 'ro', '/proc/sysrq-trigger', '/proc/sysrq-trigger'] },
  // `ip netns exec` mounted a sysfs of the namespace's own here; uevent_helper and the like sit in it.
  { path: '/sys', args: ['-o', 'remount,bind,ro', '/sys'] },
];

/**
 * The user's NODE_OPTIONS travel to the command under this name: airlock's own node processes in
 * the namespace (ns-init, the DNS sink) must not take them, as an --inspect there would open a
 * debugger, and with it their powers, to the command.
 */
export const HELD_NODE_OPTIONS = 'AIRLOCK_SANDBOX_NODE_OPTIONS';

/** `env` for one of airlock's own node processes in the sandbox: NODE_OPTIONS held aside. */
export function holdNodeOptions(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_OPTIONS, ...rest } = env;
  return NODE_OPTIONS === undefined ? rest : { ...rest, [HELD_NODE_OPTIONS]: NODE_OPTIONS };
}

/** The command's `env`: NODE_OPTIONS back where the user put them. */
export function releaseNodeOptions(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { [HELD_NODE_OPTIONS]: held, ...rest } = env;
  return held === undefined ? rest : { ...rest, NODE_OPTIONS: held };
}
