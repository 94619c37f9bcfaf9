// The helm 4 post-renderer plugin. Helm 4 takes `--post-renderer NAME` of an installed plugin of
// type postrenderer/v1 (no longer a path to an executable); with the subprocess runtime it runs the
// plugin's command with the rendered manifests on stdin, appends each `--post-renderer-args`
// value to the command's own args, and reads the result from stdout.
//
// `airlock helm-plugin install` writes such a plugin into helm's plugins directory, its command
// being this very airlock (absolute paths), so nothing has to be on PATH. A registry given at install
// time is the default; `--post-renderer-args --registry=R[/P]` overrides it per helm run.
import { realpathSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { formatTarget, parseTarget } from './mapping.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { isExecutable } from '../util/executable.ts';

export const PLUGIN_NAME = 'airlock-postrender';

export interface PluginCommand {
  command: string;
  args: string[];
}

/**
 * helm's plugins directory as helm computes it: the first entry of $HELM_PLUGINS, else
 * $HELM_DATA_HOME/plugins, else the platform's data directory (XDG on Linux) + helm/plugins.
 */
export function helmPluginsDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  const first = env.HELM_PLUGINS?.split(delimiter).find((p) => p !== '');
  if (first) return resolve(first);
  if (env.HELM_DATA_HOME) return join(resolve(env.HELM_DATA_HOME), 'plugins');
  const dataHome = env.XDG_DATA_HOME || (platform === 'darwin' ? join(home, 'Library') : platform === 'win32' ? (env.APPDATA ?? join(home, 'AppData', 'Roaming')) : join(home, '.local', 'share'));
  return join(dataHome, 'helm', 'plugins');
}

/** How to run the airlock that is running now: Node and the entry script, or a single binary. */
export function selfCommand(): PluginCommand {
  // The executable (npm run build:exe) is the whole command; its argv[1] is itself, not a script.
  if (isExecutable()) return { command: process.execPath, args: [] };
  const script = process.argv[1];
  if (script && /\.(m?js|ts)$/.test(script)) {
    let real = script;
    try {
      real = realpathSync(script);
    } catch {
      // keep the path as given
    }
    return { command: process.execPath, args: [real] };
  }
  return { command: process.execPath, args: [] };
}

function q(s: string): string {
  return JSON.stringify(s);
}

/** plugin.yaml of the post-renderer plugin (helm 4 plugin API v1, subprocess runtime). */
export function pluginYaml(cmd: PluginCommand, opts: { version: string; registry?: string }): string {
  const args = [...cmd.args, 'post-render', ...(opts.registry ? ['--registry', opts.registry] : [])];
  return [
    '# Written by `airlock helm-plugin install`: helm 4 runs `airlock post-render` as this post-renderer,',
    '# mapping every image of the rendered manifests to the registry given with',
    '#   helm install|upgrade|template ... --post-renderer airlock-postrender --post-renderer-args --registry=R[/P]',
    ...(opts.registry ? [`# (default when no --registry is given: ${opts.registry})`] : []),
    'apiVersion: v1',
    'type: postrenderer/v1',
    `name: ${PLUGIN_NAME}`,
    `version: ${q(opts.version)}`,
    'runtime: subprocess',
    'runtimeConfig:',
    '  platformCommand:',
    `    - command: ${q(cmd.command)}`,
    `      args: [${args.map(q).join(', ')}]`,
    '',
  ].join('\n');
}

export interface InstallPluginOptions {
  /** helm's plugins directory (default: helmPluginsDir()). */
  pluginsDir?: string;
  /** Default `--registry` baked into the plugin. */
  registry?: string;
  /** What the plugin runs (default: this airlock). */
  command?: PluginCommand;
  version: string;
}

export interface InstalledPlugin {
  name: string;
  /** The plugin's directory. */
  dir: string;
  /** The command line helm will run (before --post-renderer-args). */
  commandLine: string[];
  registry?: string;
}

/** Write (or replace) the post-renderer plugin in helm's plugins directory. */
export async function installHelmPlugin(o: InstallPluginOptions): Promise<InstalledPlugin> {
  const pluginsDir = o.pluginsDir ?? helmPluginsDir();
  const registry = o.registry === undefined ? undefined : formatTarget(parseTarget(o.registry));
  const cmd = o.command ?? selfCommand();
  const dir = join(pluginsDir, PLUGIN_NAME);
  try {
    const s = await stat(pluginsDir);
    if (!s.isDirectory()) throw new UsageError(`helm plugins directory ${pluginsDir} is not a directory`, { code: 'PLUGINS_DIR_INVALID' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await writeFileAtomic(join(dir, 'plugin.yaml'), pluginYaml(cmd, { version: o.version, ...(registry ? { registry } : {}) }), { mkdir: true });
  return {
    name: PLUGIN_NAME,
    dir,
    commandLine: [cmd.command, ...cmd.args, 'post-render', ...(registry ? ['--registry', registry] : [])],
    ...(registry ? { registry } : {}),
  };
}

/** Remove the plugin; false when it was not there. */
export async function uninstallHelmPlugin(o: { pluginsDir?: string } = {}): Promise<{ dir: string; removed: boolean }> {
  const dir = join(o.pluginsDir ?? helmPluginsDir(), PLUGIN_NAME);
  try {
    await stat(join(dir, 'plugin.yaml'));
  } catch {
    return { dir, removed: false };
  }
  await rm(dir, { recursive: true, force: true });
  return { dir, removed: true };
}
