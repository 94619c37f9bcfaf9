import { UsageError } from '../../core/errors.ts';
import { diff } from '../../api/diff.ts';
import { formatDiffText } from '../../diff/diff.ts';
import { defineCommand } from './types.ts';

export const diffCommand = defineCommand({
  name: 'diff',
  summary: 'what a bundle or lock changes against another: images, charts, files, tools, new bytes, signer',
  usage: `Usage: airlock diff OLD NEW [--key NAME.pub]... [--json]

OLD and NEW are bundles (a .tar file, or a split bundle by its shared name or any of its volumes)
or locks (airlock.lock, *.lock). Lists, grouped: images, charts, files and tools added (+), removed
(-) and changed (~, old → new digest, platforms, size; a chart's version and dependencies). An image
whose tag moved (nginx:1.27 → nginx:1.28) is one change. For two bundles: the bytes that are new
(blobs of NEW that OLD lacks: what a reviewer has not seen before), carried over and dropped. The
signer of each: the key a signature names is a claim unless a key given (--key) verifies it.

Reads the bundles' metadata only; it does not verify their blobs (\`airlock verify\` does).

Options:
  --key NAME.pub   a public key to check the signatures with (repeatable)
  --json           the diff as one JSON result, for scripts`,
  options: { key: { type: 'string', multiple: true } },
  async run({ values, positionals, out, signal }) {
    if (positionals.length !== 2) throw new UsageError(`diff needs two bundles or locks: airlock diff OLD NEW (got ${positionals.length})`);
    const d = await diff(positionals[0]!, positionals[1]!, { keys: (values.key as string[] | undefined) ?? [], signal });
    out.result({ ...d }, formatDiffText(d));
  },
});
