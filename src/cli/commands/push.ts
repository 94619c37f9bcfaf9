import { resolve } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { pushBundle } from '../../push.ts';
import { formatTarget, parseTarget } from '../../rewrite/mapping.ts';
import { inspectBundle } from '../../bundle/index.ts';
import { formatBytes, table } from '../output.ts';
import { concurrencyOf, makeClient, registryOptions, registryUsage } from './registry-flags.ts';
import type { Command } from './types.ts';

export const pushCommand: Command = {
  name: 'push',
  summary: 'push every image and chart of a bundle into a registry, digests unchanged',
  usage: `Usage: airlock push BUNDLE REGISTRY[/PREFIX]

Pushes every image of the bundle: host/path:tag goes to REGISTRY/PREFIX/path:tag with the manifest
bytes untouched, so every digest (indexes included) is the same as upstream. Charts go to
REGISTRY/PREFIX/charts/NAME:VERSION, where \`helm pull oci://REGISTRY/PREFIX/charts/NAME --version VERSION\`
and \`helm install\` find them. Blobs and manifests the
registry already has are skipped; a blob is mounted from another repository when it can be; an
interrupted push completes when run again.

${registryUsage}`,
  options: { ...registryOptions },
  async run({ values, positionals, out, signal }) {
    if (positionals.length !== 2) throw new UsageError('push needs a bundle and a target: airlock push BUNDLE REGISTRY[/PREFIX]');
    const bundlePath = resolve(positionals[0]!);
    const target = parseTarget(positionals[1]!);
    const client = makeClient(values);
    const started = Date.now();
    try {
      const info = await inspectBundle(bundlePath);
      out.begin(`push to ${formatTarget(target)}`, info.totals.bytes);
      for (const img of info.images) out.image(img.reference, img.size);
      for (const c of info.charts) out.image(c.reference, c.size);
      const result = await pushBundle({
        bundlePath,
        target,
        open: (ref) => client.repository(ref),
        concurrency: concurrencyOf(values),
        signal,
        onEvent: (e) => {
          if (e.type === 'image-done') out.imageDone(e.image, `pushed ${e.target}@${e.digest.slice(0, 19)}`);
          else out.copy(e);
        },
      });
      const secs = (Date.now() - started) / 1000;
      const rows = [['SOURCE', 'TARGET', 'DIGEST', 'UPLOADED', 'SKIPPED', 'MOUNTED']];
      for (const i of result.images) rows.push([i.source, i.target, i.digest, String(i.blobs.copied), String(i.blobs.exists), String(i.blobs.mounted)]);
      const charts = result.images.filter((i) => i.kind === 'chart');
      // What a user types next: the helm command that pulls each chart back out.
      const pulls = charts.map((c) => {
        const colon = c.target.lastIndexOf(':');
        return `  helm pull oci://${c.target.slice(0, colon)} --version ${c.target.slice(colon + 1).replaceAll('_', '+')}`;
      });
      out.result(
        { target: formatTarget(target), images: result.images, bytes: result.bytes, seconds: secs },
        `${table(rows)}\npushed ${result.images.length - charts.length} images and ${charts.length} charts to ${formatTarget(target)}: uploaded ${formatBytes(result.bytes)} in ${secs.toFixed(1)}s` +
          (pulls.length > 0 ? `\ncharts:\n${pulls.join('\n')}` : ''),
      );
    } finally {
      await client.close();
    }
  },
};
