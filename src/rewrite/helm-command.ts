// The helm command that installs a chart with the overlay and, for what values cannot move, airlock's
// post-renderer (the helm 4 plugin `airlock helm-plugin install` writes): exact, ready to paste.
import { PLUGIN_NAME } from './helm-plugin.ts';

export interface HelmCommandInput {
  /** The chart as the user named it. */
  chart: string;
  /** The user's values files as given, then the overlay's. */
  valuesFiles: readonly string[];
  overlayFile: string;
  set: readonly string[];
  setString: readonly string[];
  namespace?: string | undefined;
  /** `R[/P]` for the post-renderer. */
  target: string;
  /** Add the post-renderer (something is hard-coded). */
  postRenderer: boolean;
  /** push kept each source host under R/P (--keep-host): the post-renderer must point there too. */
  keepHost?: boolean | undefined;
}

/** argv of `helm install RELEASE CHART -f ... -f OVERLAY [--post-renderer airlock-postrender ...]`. */
export function helmInstallCommand(c: HelmCommandInput): string[] {
  const argv = ['helm', 'install', 'RELEASE', c.chart];
  if (c.namespace !== undefined) argv.push('--namespace', c.namespace);
  for (const f of c.valuesFiles) argv.push('-f', f);
  for (const s of c.set) argv.push('--set', s);
  for (const s of c.setString) argv.push('--set-string', s);
  // -f files lose to --set flags: the overlay goes last among the files, and the user's --set
  // flags are theirs (the overlay's header says not to --set its keys).
  argv.push('-f', c.overlayFile);
  if (c.postRenderer) {
    argv.push('--post-renderer', PLUGIN_NAME, '--post-renderer-args', `--registry=${c.target}`);
    if (c.keepHost === true) argv.push('--post-renderer-args', '--keep-host');
  }
  return argv;
}

/** One argv as a POSIX shell line: words with anything but safe characters single-quoted. */
export function shellLine(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
