// A chart as helm's loader sees it: metadata, its lock, and the subcharts already vendored in
// charts/ (archives `charts/x-1.2.3.tgz` and folders `charts/x/`), loaded recursively.
import { UsageError } from '../core/errors.ts';
import { digestOf, type Digest } from '../core/digest.ts';
import { parseChartLock, parseChartMetadata, type ChartLockEntry, type ChartMetadata } from './chart-metadata.ts';
import { readChartTgz, type ChartFile } from './chart-tgz.ts';

export interface VendoredSubchart {
  /** Where it sits in the parent chart: `charts/redis-17.3.1.tgz` or `charts/redis`. */
  location: string;
  kind: 'archive' | 'folder';
  /** sha256 of the archive (archives only). */
  digest?: Digest;
  size?: number;
  chart: LoadedChart;
}

export interface LoadedChart {
  /** The folder the files sit in inside an archive (normally the chart name). */
  root: string;
  meta: ChartMetadata;
  /** Chart.lock (requirements.lock for v1 charts), when the chart has one. */
  lock: ChartLockEntry[] | undefined;
  /** Every file, charts/ included, paths relative to the chart. */
  files: ChartFile[];
  subcharts: VendoredSubchart[];
  /** mtime of Chart.yaml in the archive (seconds): the chart's packaging time. */
  packagedAt: number;
}

const TEXT = (b: Buffer): string => b.toString('utf8').replace(/^\uFEFF/, '');

export function loadChartArchive(bytes: Buffer, what: string): LoadedChart {
  const { root, files } = readChartTgz(bytes, what);
  return loadChartFiles(root, files, what);
}

export function loadChartFiles(root: string, files: ChartFile[], what: string): LoadedChart {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const chartYaml = byPath.get('Chart.yaml');
  if (!chartYaml) {
    throw new UsageError(`${what}: Chart.yaml file is missing: this is not a helm chart`, { code: 'CHART_INVALID', hint: 'point at the chart folder (the one holding Chart.yaml) or its .tgz' });
  }
  const requirements = byPath.get('requirements.yaml');
  const meta = parseChartMetadata(TEXT(chartYaml.data), `${what}: Chart.yaml`, requirements ? TEXT(requirements.data) : undefined);
  const lockFile = meta.apiVersion === 'v1' ? byPath.get('requirements.lock') : byPath.get('Chart.lock');
  const lock = lockFile ? parseChartLock(TEXT(lockFile.data), `${what}: ${lockFile.path}`) : undefined;

  // Group charts/ entries by their first component, as helm's loader does.
  const groups = new Map<string, ChartFile[]>();
  for (const f of files) {
    if (!f.path.startsWith('charts/')) continue;
    const rest = f.path.slice('charts/'.length);
    if (rest === '' || rest.startsWith('.') || rest.startsWith('_')) continue;
    const slash = rest.indexOf('/');
    const key = slash < 0 ? rest : rest.slice(0, slash);
    groups.set(key, [...(groups.get(key) ?? []), { ...f, path: slash < 0 ? '' : rest.slice(slash + 1) }]);
  }
  const subcharts: VendoredSubchart[] = [];
  for (const key of [...groups.keys()].sort()) {
    const group = groups.get(key)!;
    const location = `charts/${key}`;
    if (key.endsWith('.tgz')) {
      const file = group.find((g) => g.path === '');
      if (!file) continue;
      subcharts.push({ location, kind: 'archive', digest: digestOf(file.data), size: file.data.length, chart: loadChartArchive(file.data, `${what}: ${location}`) });
    } else if (group.some((g) => g.path === 'Chart.yaml')) {
      subcharts.push({ location, kind: 'folder', chart: loadChartFiles(key, group.filter((g) => g.path !== ''), `${what}: ${location}`) });
    }
  }
  return { root, meta, lock, files, subcharts, packagedAt: chartYaml.mtime };
}

/** The vendored subchart helm would use for a dependency named `name` (by its Chart.yaml name). */
export function findVendored(chart: LoadedChart, name: string): VendoredSubchart | undefined {
  return chart.subcharts.find((s) => s.chart.meta.name === name);
}
