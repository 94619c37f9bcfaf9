import { resolve } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { pack } from '../../pack.ts';
import { formatBytes } from '../output.ts';
import { defaultCacheDir, makeClient, concurrencyOf, registryOptions, registryUsage } from './registry-flags.ts';
import { makeChartHttp } from './chart-http.ts';
import type { Command } from './types.ts';

export const packCommand: Command = {
  name: 'pack',
  summary: 'download every locked image and chart and write one verifiable bundle',
  usage: `Usage: airlock pack -o BUNDLE.tar [-f airlock.yaml] [--lock] [--cache DIR]

Downloads every image of airlock.lock (in parallel, verified, into a content-addressed cache that
later packs reuse and that survives an interruption) and every locked chart (as a Helm OCI artifact,
its dependencies vendored into charts/), and writes one OCI-layout tar: every blob once, the same
bytes for the same lock. Nothing is left at the output path if it fails.

Options:
  -o, --output FILE  the bundle to write (required)
  -f, --file FILE    the spec (default ./airlock.yaml); the lock is read from beside it
  --lock             lock first (update airlock.lock), then pack
  --cache DIR        blob cache (default $AIRLOCK_CACHE or ~/.cache/airlock)
${registryUsage}`,
  options: {
    output: { type: 'string', short: 'o' },
    file: { type: 'string', short: 'f' },
    lock: { type: 'boolean', default: false },
    cache: { type: 'string' },
    ...registryOptions,
  },
  async run({ values, out, signal }) {
    if (typeof values.output !== 'string') throw new UsageError('pack needs an output file: -o BUNDLE.tar');
    const specPath = resolve((values.file as string | undefined) ?? 'airlock.yaml');
    const client = makeClient(values);
    const http = makeChartHttp(values);
    const started = Date.now();
    try {
      const result = await pack({
        specPath,
        out: resolve(values.output),
        cacheDir: resolve((values.cache as string | undefined) ?? defaultCacheDir()),
        open: (ref) => client.repository(ref),
        http,
        relock: values.lock === true,
        concurrency: concurrencyOf(values),
        signal,
        onEvent: (e) => {
          if (e.type === 'phase') {
            if (e.phase === 'download') {
              out.begin('download', e.total ?? 0);
              for (const i of e.images ?? []) out.image(i.reference, i.size);
            }
            else if (e.phase === 'write') out.begin('write', 0);
            else out.info('locking');
          } else if (e.type === 'write-progress') out.progress(e.written, e.total);
          else out.copy(e);
        },
      });
      const inv = result.inventory;
      const secs = (Date.now() - started) / 1000;
      const charts = result.lock.charts?.length ?? 0;
      const images = inv.images.length - charts;
      out.result(
        { bundle: result.path, size: result.size, images, charts, blobs: inv.blobs.length, downloaded: result.downloaded, seconds: secs },
        `wrote ${result.path}: ${images} images, ${charts} charts, ${inv.blobs.length} blobs, ${formatBytes(result.size)} (downloaded ${formatBytes(result.downloaded)}) in ${secs.toFixed(1)}s`,
      );
    } finally {
      await Promise.all([client.close(), http.close()]);
    }
  },
};
