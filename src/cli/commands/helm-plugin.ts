import { resolve } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { installHelmPlugin, PLUGIN_NAME, uninstallHelmPlugin } from '../../rewrite/helm-plugin.ts';
import { TOOL_VERSION } from '../../version.ts';
import { defineCommand } from './types.ts';

export const helmPluginCommand = defineCommand({
  name: 'helm-plugin',
  summary: `install helm 4's post-renderer plugin (${PLUGIN_NAME}) that runs airlock post-render`,
  usage: `Usage: airlock helm-plugin install [--registry R[/P]] [--plugins-dir DIR]
       airlock helm-plugin uninstall [--plugins-dir DIR]

helm 4 runs post-renderers only as plugins (--post-renderer takes a plugin name, not a path).
\`install\` writes the plugin ${PLUGIN_NAME} (type postrenderer/v1, subprocess runtime) into helm's plugins
directory; its command is this airlock (absolute paths: nothing needs to be on PATH) running
\`airlock post-render\`. Then:

  helm install NAME CHART --post-renderer ${PLUGIN_NAME} --post-renderer-args --registry=R[/P]
  helm template CHART --post-renderer ${PLUGIN_NAME} --post-renderer-args --registry=R[/P]

helm appends every --post-renderer-args value to the plugin's command, so any \`airlock post-render\`
option can be passed that way (e.g. --post-renderer-args --report=/tmp/airlock-report.json, since helm 4
does not show a post-renderer's error output). With --registry at install time, that registry is the
default and --post-renderer-args may be left out.

Without this command: the repository's helm-plugin/ directory is the same plugin running \`airlock\`
from PATH (or $AIRLOCK): \`helm plugin install path/to/airlock/helm-plugin\`.

Options:
  --registry R[/P]    default registry for the plugin (a --post-renderer-args --registry=… still wins)
  --plugins-dir DIR   where helm looks for plugins (default: first entry of $HELM_PLUGINS, else
                      $HELM_DATA_HOME/plugins, else helm's data directory: ~/.local/share/helm/plugins
                      on Linux, ~/Library/helm/plugins on macOS)`,
  options: {
    registry: { type: 'string' },
    'plugins-dir': { type: 'string' },
  },
  async run({ values, positionals, out }) {
    const [action, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`helm-plugin ${action ?? ''}: unexpected arguments: ${rest.join(' ')}`);
    const pluginsDir = typeof values['plugins-dir'] === 'string' ? resolve(values['plugins-dir']) : undefined;
    if (action === 'install') {
      const p = await installHelmPlugin({
        version: TOOL_VERSION,
        ...(pluginsDir ? { pluginsDir } : {}),
        ...(typeof values.registry === 'string' ? { registry: values.registry } : {}),
      });
      out.info(`installed helm plugin ${p.name} in ${p.dir}`);
      out.info(`use it: helm install NAME CHART --post-renderer ${p.name}${p.registry ? '' : ' --post-renderer-args --registry=R[/P]'}`);
      out.result({ action: 'install', name: p.name, dir: p.dir, command: p.commandLine, ...(p.registry ? { registry: p.registry } : {}) }, p.dir);
      return;
    }
    if (action === 'uninstall') {
      if (values.registry !== undefined) throw new UsageError('helm-plugin uninstall takes no --registry');
      const r = await uninstallHelmPlugin(pluginsDir ? { pluginsDir } : {});
      out.info(r.removed ? `removed ${r.dir}` : `${PLUGIN_NAME} is not installed in ${r.dir}`);
      out.result({ action: 'uninstall', dir: r.dir, removed: r.removed }, r.removed ? r.dir : '');
      return;
    }
    throw new UsageError(action === undefined ? 'helm-plugin needs an action: install or uninstall' : `unknown helm-plugin action "${action}"`, {
      hint: 'airlock helm-plugin install [--registry R[/P]]',
    });
  },
});
