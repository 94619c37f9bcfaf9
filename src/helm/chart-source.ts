// Where a chart archive comes from, written as one string in the lock:
//   https://charts.example.com/shop-1.4.2.tgz          a download from a chart repository
//   oci://registry.example.com/charts/shop:1.4.2@sha256:…  a chart in a registry (tag and manifest)
//   file://charts/shop                                  a folder or .tgz, relative to airlock.yaml
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { parseReference, type Reference } from '../core/reference.ts';
import type { ChartHttpClient } from './http-client.ts';
import { loadChartArchive, type LoadedChart } from './chart-load.ts';
import { MAX_CHART_BYTES } from './chart-tgz.ts';
import type { OpenChartRepository } from './oci-chart.ts';
import { packageChartDir } from './package-dir.ts';

/** What fetching charts needs: both lock and pack build one. */
export interface ChartFetchContext {
  http: ChartHttpClient;
  open: OpenChartRepository;
  /** The folder of airlock.yaml: file:// sources and chart paths are relative to it. */
  baseDir: string;
  signal?: AbortSignal | undefined;
}

export type ChartSource =
  | { kind: 'http'; url: string }
  | { kind: 'oci'; ref: Reference & { tag: string; digest: NonNullable<Reference['digest']> } }
  | { kind: 'file'; path: string };

export function parseChartSource(source: string, what: string): ChartSource {
  if (/^https?:\/\//.test(source)) return { kind: 'http', url: source };
  if (source.startsWith('file://')) return { kind: 'file', path: source.slice('file://'.length) };
  if (source.startsWith('oci://')) {
    const ref = parseReference(source.slice('oci://'.length));
    if (ref.tag === undefined || ref.digest === undefined) throw new UsageError(`${what}: source ${source} needs a tag and a digest`, { code: 'LOCK_INVALID', hint: 'regenerate the lock with `airlock lock`' });
    return { kind: 'oci', ref: { ...ref, tag: ref.tag, digest: ref.digest } };
  }
  throw new UsageError(`${what}: unknown chart source "${source}"`, { code: 'LOCK_INVALID', hint: 'regenerate the lock with `airlock lock`' });
}

/** `file://` + the path relative to the spec's folder, "/"-separated, so the lock is portable. */
export function fileSource(baseDir: string, abs: string): string {
  const rel = relative(baseDir, abs);
  return `file://${(rel === '' ? '.' : rel).split(sep).join('/')}`;
}

export interface LocalChart {
  bytes: Buffer;
  chart: LoadedChart;
  /** The folder, when the chart is one (file:// dependencies are relative to it). */
  folder?: string;
}

/** A chart folder (packaged deterministically) or a .tgz file. */
export async function readLocalChart(path: string, what: string): Promise<LocalChart> {
  const abs = isAbsolute(path) ? path : resolve(path);
  let st;
  try {
    st = await stat(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`${what}: ${abs} does not exist`, { code: 'CHART_NOT_FOUND', hint: 'paths are relative to airlock.yaml (file:// dependencies: to the chart that names them)' });
    }
    throw new UsageError(`${what}: cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { code: 'CHART_UNREADABLE', cause: e });
  }
  if (st.isDirectory()) {
    const { bytes, chart } = await packageChartDir(abs, what);
    return { bytes, chart, folder: abs };
  }
  if (st.size > MAX_CHART_BYTES) throw new UsageError(`${what}: ${abs} is ${st.size} bytes, more than helm's ${MAX_CHART_BYTES}-byte limit for a chart`, { code: 'CHART_TOO_LARGE' });
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (e) {
    throw new UsageError(`${what}: cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { code: 'CHART_UNREADABLE', cause: e });
  }
  return { bytes, chart: loadChartArchive(bytes, `${what} (${abs})`) };
}
