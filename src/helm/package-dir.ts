// A chart folder packaged into a .tgz deterministically: the files helm would package (its
// .helmignore rules, symlinks followed, irregular files refused), byte for byte, in sorted order
// with fixed metadata. The same folder content always gives the same archive digest, so a lock
// can pin a local chart and pack can check that it did not change.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { parseChartMetadata } from './chart-metadata.ts';
import { MAX_CHART_BYTES, MAX_CHART_FILE_BYTES, writeChartTgz, type ChartFile } from './chart-tgz.ts';
import { parseHelmignore, type IgnoreRules } from './helmignore.ts';
import { loadChartFiles, type LoadedChart } from './chart-load.ts';

export interface PackagedChart {
  bytes: Buffer;
  chart: LoadedChart;
}

export async function packageChartDir(dir: string, what: string): Promise<PackagedChart> {
  let chartYaml: Buffer;
  try {
    chartYaml = await readFile(join(dir, 'Chart.yaml'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new NotFoundError(`${what}: ${dir} has no Chart.yaml: it is not a helm chart folder`, { code: 'CHART_NOT_FOUND', hint: 'point path at the folder that holds Chart.yaml, or at a packaged .tgz' });
    }
    throw new UsageError(`${what}: cannot read ${join(dir, 'Chart.yaml')}: ${code ?? (e as Error).message}`, { code: 'CHART_UNREADABLE', cause: e });
  }
  const meta = parseChartMetadata(chartYaml.toString('utf8').replace(/^\uFEFF/, ''), `${what}: Chart.yaml`);
  let rules: IgnoreRules;
  try {
    rules = parseHelmignore(await readFile(join(dir, '.helmignore'), 'utf8'), `${what}: .helmignore`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    rules = parseHelmignore('', what);
  }

  const files: ChartFile[] = [];
  let total = 0;
  const visited = new Set<string>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    // Symlinked folders are followed like helm follows them; a loop would never end.
    const real = await realpath(abs);
    if (visited.has(real)) throw new UsageError(`${what}: ${abs} links back into itself`, { code: 'CHART_INVALID' });
    visited.add(real);
    const names = (await readdir(abs)).sort();
    for (const name of names) {
      const childAbs = join(abs, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      let st;
      try {
        st = await stat(childAbs);
      } catch (e) {
        throw new UsageError(`${what}: cannot read ${childAbs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (a broken symlink?)`, { code: 'CHART_UNREADABLE', cause: e });
      }
      if (st.isDirectory()) {
        if (!rules.ignores(childRel, true)) await walk(childAbs, childRel);
        continue;
      }
      if (rules.ignores(childRel, false)) continue;
      if (!st.isFile()) throw new UsageError(`${what}: cannot package the irregular file ${childAbs} (a socket, device or pipe)`, { code: 'CHART_INVALID', hint: 'remove it or list it in .helmignore' });
      if (st.size > MAX_CHART_FILE_BYTES) {
        throw new UsageError(`${what}: ${childRel} is ${st.size} bytes, more than helm's ${MAX_CHART_FILE_BYTES}-byte limit for one chart file`, { code: 'CHART_TOO_LARGE', hint: 'list it in .helmignore' });
      }
      total += st.size;
      if (total > MAX_CHART_BYTES) throw new UsageError(`${what}: the chart is larger than helm's ${MAX_CHART_BYTES}-byte limit`, { code: 'CHART_TOO_LARGE' });
      files.push({ path: childRel, data: await readFile(childAbs), mtime: 0 });
    }
    visited.delete(real);
  };
  await walk(dir, '');
  const bytes = writeChartTgz(meta.name, files);
  return { bytes, chart: loadChartFiles(meta.name, files, what) };
}
