import { UsageError } from '../../core/errors.ts';
import { buildInfo } from '../../build-info.ts';
import { defineCommand } from './types.ts';

export const versionCommand = defineCommand({
  name: 'version',
  summary: 'print the version, the commit it was built from, its platform and Node version (also --version)',
  usage: `Usage: airlock version [--json]
       airlock --version

Prints airlock's version, the git commit it was built from (the executable: recorded at build time;
the sources: the checkout's, or "unknown" outside git; "with uncommitted changes" when the tree was
dirty), the platform (os/architecture), whether this is the single executable or the sources run by
Node, and the Node.js version. With --json, one result line with name, version, commit, dirty, from,
platform and node.`,
  options: {},
  async run({ positionals, out }) {
    if (positionals.length > 0) throw new UsageError(`version: unexpected arguments: ${positionals.join(' ')}`);
    const b = await buildInfo();
    const commit = `${b.commit}${b.dirty ? ' (with uncommitted changes)' : ''}`;
    const from = b.from === 'executable' ? 'single executable' : 'running from sources';
    out.result({ ...b }, `${b.name} ${b.version}\n  commit    ${commit}\n  platform  ${b.platform}, ${from}\n  node      ${b.node}`);
  },
});
