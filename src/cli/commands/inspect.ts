import { resolve } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { inspectBundle } from '../../bundle/index.ts';
import { formatBytes, table } from '../output.ts';
import type { Command } from './types.ts';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'list the images and charts of a bundle with digests, platforms and sizes',
  usage: `Usage: airlock inspect BUNDLE [--json]

Reads the bundle's inventory (not its blobs), so it is fast on any size of bundle.`,
  options: {},
  async run({ positionals, out }) {
    if (positionals.length !== 1) throw new UsageError('inspect needs one bundle: airlock inspect BUNDLE');
    const info = await inspectBundle(resolve(positionals[0]!));
    const rows = [['IMAGE', 'DIGEST', 'PLATFORMS', 'SIZE']];
    for (const i of info.images) rows.push([i.reference, i.digest, i.platforms.join(',') || '-', formatBytes(i.size)]);
    const chartRows = [['CHART', 'VERSION', 'REFERENCE', 'DIGEST', 'SIZE']];
    for (const c of info.charts) chartRows.push([c.name, c.version, c.reference, c.digest, formatBytes(c.size)]);
    const t = info.totals;
    out.result(
      { ...info },
      `bundle ${info.name} ${info.version} (airlock ${info.toolVersion})\n` +
        (info.images.length > 0 || info.charts.length === 0 ? `${table(rows)}\n` : '') +
        (info.charts.length > 0 ? `${info.images.length > 0 ? '\n' : ''}${table(chartRows)}\n\n` : '') +
        `${info.images.length} images, ${info.charts.length} charts, ${t.blobs} blobs, ${formatBytes(t.bytes)} unique, ${formatBytes(t.sharedBytes)} shared between images; file ${formatBytes(info.fileSize)}`,
    );
  },
};
