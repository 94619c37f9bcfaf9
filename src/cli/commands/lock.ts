import { resolve } from 'node:path';
import { lockAndWrite, lockPathFor } from '../../pack.ts';
import { formatBytes, table } from '../output.ts';
import { makeClient, registryOptions, registryUsage } from './registry-flags.ts';
import type { Command } from './types.ts';

export const lockCommand: Command = {
  name: 'lock',
  summary: 'pin every image of airlock.yaml to a digest in airlock.lock',
  usage: `Usage: airlock lock [-f airlock.yaml] [--json]

Resolves every image tag in the spec to the digest it points at now, chooses the spec's platforms,
and writes airlock.lock beside the spec (sorted, deterministic, readable in a diff).

Options:
  -f, --file FILE   the spec (default ./airlock.yaml)
${registryUsage}`,
  options: { file: { type: 'string', short: 'f' }, ...registryOptions },
  async run({ values, out, signal }) {
    const specPath = resolve((values.file as string | undefined) ?? 'airlock.yaml');
    const lockPath = lockPathFor(specPath);
    const client = makeClient(values);
    try {
      out.info(`locking ${specPath}`);
      const { lock } = await lockAndWrite(specPath, lockPath, { open: (ref) => client.repository(ref), signal });
      const rows = [['IMAGE', 'DIGEST', 'PLATFORMS', 'SIZE']];
      for (const i of lock.images) {
        rows.push([i.reference, i.digest.slice(0, 19), i.platforms?.map((p) => p.platform).join(',') ?? '-', formatBytes(i.totalSize)]);
      }
      out.result(
        { lockFile: lockPath, images: lock.images },
        `${table(rows)}\nwrote ${lockPath} (${lock.images.length} images)`,
      );
    } finally {
      await client.close();
    }
  },
};
