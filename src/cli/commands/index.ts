// The command table. Each command's module (and everything it imports) is loaded only when that
// command runs: a pack does not pay for loading serve, audit or the sandbox (start-up is part of
// every command's time). `airlock --help` loads them all for their summaries.
import type { Command } from './types.ts';

export type { Command } from './types.ts';

const loaders = {
  discover: async () => (await import('./discover.ts')).discoverCommand,
  lock: async () => (await import('./lock.ts')).lockCommand,
  pack: async () => (await import('./pack.ts')).packCommand,
  verify: async () => (await import('./verify.ts')).verifyCommand,
  inspect: async () => (await import('./inspect.ts')).inspectCommand,
  diff: async () => (await import('./diff.ts')).diffCommand,
  report: async () => (await import('./report.ts')).reportCommand,
  push: async () => (await import('./push.ts')).pushCommand,
  serve: async () => (await import('./serve.ts')).serveCommand,
  capture: async () => (await import('./capture.ts')).captureCommand,
  export: async () => (await import('./export.ts')).exportCommand,
  extract: async () => (await import('./extract.ts')).extractCommand,
  'mirrors-config': async () => (await import('./mirrors-config.ts')).mirrorsConfigCommand,
  rewrite: async () => (await import('./rewrite.ts')).rewriteCommand,
  'post-render': async () => (await import('./post-render.ts')).postRenderCommand,
  'helm-plugin': async () => (await import('./helm-plugin.ts')).helmPluginCommand,
  audit: async () => (await import('./audit.ts')).auditCommand,
  netpol: async () => (await import('./netpol.ts')).netpolCommand,
  sandbox: async () => (await import('./sandbox.ts')).sandboxCommand,
  keygen: async () => (await import('./keygen.ts')).keygenCommand,
  approve: async () => (await import('./approve.ts')).approveCommand,
  repair: async () => (await import('./repair.ts')).repairCommand,
  history: async () => (await import('./history.ts')).historyCommand,
  login: async () => (await import('./login.ts')).loginCommand,
  logout: async () => (await import('./login.ts')).logoutCommand,
  version: async () => (await import('./version.ts')).versionCommand,
  completion: async () => (await import('./completion.ts')).completionCommand,
} satisfies Record<string, () => Promise<Command>>;

/** Every command's name, in the order `airlock --help` lists them. */
export const commandNames: readonly string[] = Object.keys(loaders);

/** The command called `name`, or undefined when there is none. */
export async function loadCommand(name: string): Promise<Command | undefined> {
  return Object.hasOwn(loaders, name) ? await loaders[name as keyof typeof loaders]() : undefined;
}

/** Every command, in table order. */
export async function loadCommands(): Promise<Command[]> {
  return await Promise.all(Object.values(loaders).map((load) => load()));
}

// The executable's bundler (scripts/build-exe.ts) records every command's summary here, so its
// `airlock --help` needs not load every module of the bundle (most of its start-up); the sources
// load the commands.
declare const AIRLOCK_COMMAND_SUMMARIES: { name: string; summary: string }[] | undefined;

/** Every command's name and summary, in table order (what `airlock --help` lists). */
export async function commandSummaries(): Promise<{ name: string; summary: string }[]> {
  if (typeof AIRLOCK_COMMAND_SUMMARIES !== 'undefined') return AIRLOCK_COMMAND_SUMMARIES;
  return (await loadCommands()).map((c) => ({ name: c.name, summary: c.summary }));
}
