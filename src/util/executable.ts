// airlock runs either as scripts on Node (the sources, or the JavaScript built into dist/) or as one
// file, the single executable (`npm run build:exe`: Node's single executable applications, with
// the CLI bundled into it). Code that starts a part of airlock as a process of its own, or points
// another program at airlock, asks here which one it is: the executable has no scripts on disk.
import { isSea } from 'node:sea';

/** This process is the single executable, not Node running airlock's scripts. */
export function isExecutable(): boolean {
  return isSea();
}

/**
 * The first argument that makes the executable run one of its internal entry points instead of
 * the CLI (src/cli/exe-main.ts). Private: no command, not in --help, not for users; only airlock
 * passes it, to itself, for processes that the sources start as separate Node scripts. An argument
 * rather than an environment variable, so nothing of it reaches the processes those start.
 */
export const INTERNAL_ENTRY_ARG = '--airlock-internal-entry';

/** The parts of airlock that run as processes of their own (the sandbox's namespace helpers). */
export type InternalEntry = 'ns-helper' | 'ns-init';

/**
 * What follows `process.execPath` to start `entry` as a process of its own: the executable in its
 * internal mode, or Node options then the entry's script (`script()`, looked up beside the
 * caller's module only when there is one). The executable has its Node options built in (its SEA
 * configuration's execArgv, scripts/build-exe.ts).
 */
export function selfProcessArgs(entry: InternalEntry, script: () => string, nodeOptions: readonly string[] = []): string[] {
  return isExecutable() ? [INTERNAL_ENTRY_ARG, entry] : [...nodeOptions, script()];
}
