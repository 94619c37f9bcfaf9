// `airlock discover` as a library: every image the given charts, kustomize directories and
// manifests need, each with its reasons. Offline: helm and kubectl run behind the offline seam,
// and nothing here opens a connection (probing registries is verify-remote.ts, opt-in).
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { NotFoundError, throwIfAborted, UsageError } from '../core/errors.ts';
import { resolveChartValues } from './chart-values.ts';
import { loadChartTree, parseValuesText } from './chart-tree.ts';
import { chartFindings } from './combine.ts';
import { extractImages } from './extract.ts';
import { addFinding, sortFindings } from './findings.ts';
import { loadSpec } from '../spec/spec.ts';
import { applySet, mergeValues } from './set-values.ts';
import { buildKustomize, classifyInput, displayPath, readManifests, renderChart, type ChartRenderOptions } from './sources.ts';
import type { Finding, Manifest } from './types.ts';

export interface DiscoverOptions {
  /** Chart directories or .tgz files, kustomize directories, manifest files or directories. */
  inputs: string[];
  /** helm -f files, in order (apply to every chart input). */
  valuesFiles?: string[];
  set?: string[];
  setString?: string[];
  kubeVersion?: string;
  namespace?: string;
  apiVersions?: string[];
  /** Keep images no rendered resource uses with these values (each with the values path that switches it on). */
  includeOptional?: boolean;
  helm?: string;
  kubectl?: string;
  /** Base for relative paths and for the paths shown in reasons (default process.cwd()). */
  cwd?: string;
  signal?: AbortSignal;
}

export interface DiscoveredChart {
  name: string;
  version?: string;
  path: string;
}

export interface DiscoverResult {
  /** Sorted by reference; optional ones only with includeOptional. */
  images: Finding[];
  /** Optional images left out (without includeOptional). */
  hiddenOptional: number;
  charts: DiscoveredChart[];
  warnings: string[];
}

async function userValues(o: DiscoverOptions, cwd: string): Promise<Record<string, unknown>> {
  const values: Record<string, unknown> = {};
  for (const f of o.valuesFiles ?? []) {
    if (/^[a-z]+:\/\//.test(f)) {
      throw new UsageError(`values file ${f}: discover reads local values files only`, { code: 'VALUES_INVALID', hint: 'download it first and pass the local path' });
    }
    let text: string;
    try {
      text = await readFile(resolve(cwd, f), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`values file ${f} does not exist`, { code: 'VALUES_NOT_FOUND' });
      throw new UsageError(`cannot read values file ${f}: ${(e as Error).message}`, { code: 'VALUES_INVALID', cause: e });
    }
    mergeValues(values, parseValuesText(text, `values file ${f}`));
  }
  for (const s of o.set ?? []) applySet(values, s, false);
  for (const s of o.setString ?? []) applySet(values, s, true);
  return values;
}

/** Union over inputs: required anywhere wins over optional; reasons are merged. */
function mergeInto(all: Map<string, Finding>, findings: Finding[]): void {
  for (const f of findings) {
    const before = all.get(f.reference);
    const wasOptional = before ? before.optional !== undefined : true;
    const merged = before ?? { reference: f.reference, reasons: [] };
    all.set(f.reference, merged);
    for (const r of f.reasons) addFinding(all, f.reference, r);
    if (before === undefined && f.optional) merged.optional = f.optional;
    else if (wasOptional && !f.optional) delete merged.optional;
  }
}

interface Collected {
  all: Map<string, Finding>;
  charts: DiscoveredChart[];
  warnings: string[];
}

/** Every image of the inputs, optional ones included; callers filter (and may merge several runs). */
async function collect(o: DiscoverOptions, into: Collected): Promise<void> {
  const cwd = o.cwd ?? process.cwd();
  if (o.inputs.length === 0) {
    throw new UsageError('discover needs at least one chart, kustomize directory or manifest file', { hint: 'e.g. airlock discover ./charts/shop -f values-airgap.yaml' });
  }
  const kinds = await Promise.all(
    o.inputs.map(async (i) => {
      // URLs are refused by classifyInput as they are, not as a path below cwd
      const path = /^[a-z][a-z0-9+.-]*:\/\//i.test(i) ? i : resolve(cwd, i);
      return { path, kind: await classifyInput(path) };
    }),
  );
  const hasValues = (o.valuesFiles?.length ?? 0) + (o.set?.length ?? 0) + (o.setString?.length ?? 0) > 0;
  if (hasValues && !kinds.some((k) => k.kind === 'chart')) {
    throw new UsageError('-f/--set/--set-string apply to charts, and no input is a chart', {
      hint: 'pass a chart directory or .tgz, or leave out the values flags',
    });
  }
  const values = await userValues(o, cwd);
  const show = (p: string): string => displayPath(p, cwd);
  const renderOpts: ChartRenderOptions = {
    valuesFiles: (o.valuesFiles ?? []).map((f) => resolve(cwd, f)),
    set: o.set ?? [],
    setString: o.setString ?? [],
    kubeVersion: o.kubeVersion,
    namespace: o.namespace,
    apiVersions: o.apiVersions ?? [],
    helm: o.helm,
    cwd,
    signal: o.signal,
  };
  const namespace = o.namespace ?? 'default';
  const { all, warnings, charts } = into;

  const doChart = async (path: string): Promise<void> => {
    throwIfAborted(o.signal);
    const { manifests, warnings: renderWarnings } = await renderChart(path, { ...renderOpts, chartLabel: show(path), valuesLabels: o.valuesFiles ?? [] });
    warnings.push(...renderWarnings);
    const { chart, warnings: loadWarnings } = await loadChartTree(path);
    warnings.push(...loadWarnings);
    charts.push({ name: chart.name, ...(chart.version ? { version: chart.version } : {}), path: show(path) });
    const extracted = extractImages(manifests, { chart: chart.name, namespace });
    warnings.push(...extracted.warnings);
    const { charts: resolved } = resolveChartValues(chart, values);
    const combined = chartFindings({ chart: chart.name, rendered: extracted.findings, charts: resolved });
    warnings.push(...combined.warnings);
    mergeInto(all, combined.findings);
  };
  const doManifests = (manifests: Manifest[]): void => {
    const extracted = extractImages(manifests, { namespace });
    warnings.push(...extracted.warnings);
    mergeInto(all, extracted.findings);
  };
  const doInput = async (path: string, kind: 'chart' | 'kustomize' | 'manifests'): Promise<void> => {
    throwIfAborted(o.signal);
    if (kind === 'chart') return doChart(path);
    if (kind === 'kustomize') {
      return doManifests(await buildKustomize(path, { kubectl: o.kubectl, helm: o.helm, cwd, signal: o.signal }).then((m) => m.map((d) => ({ ...d, origin: show(path) }))));
    }
    const { manifests, nested } = await readManifests(path, show);
    doManifests(manifests);
    for (const n of nested) await doInput(n.path, n.kind);
  };
  for (const k of kinds) await doInput(k.path, k.kind);
}

function finish(c: Collected, includeOptional: boolean | undefined): DiscoverResult {
  const sorted = sortFindings([...c.all.values()]);
  const images = includeOptional ? sorted : sorted.filter((f) => !f.optional);
  return { images, hiddenOptional: sorted.length - images.length, charts: c.charts, warnings: [...new Set(c.warnings)] };
}

/** Discover the images of the given charts, kustomize directories and manifests. */
export async function discoverImages(o: DiscoverOptions): Promise<DiscoverResult> {
  const c: Collected = { all: new Map(), charts: [], warnings: [] };
  await collect(o, c);
  return finish(c, o.includeOptional);
}

/**
 * Discover the charts airlock.yaml lists with a local `path`, each with its own `values` files
 * (relative to the spec) followed by `o.valuesFiles`, `o.set` and `o.setString`. Charts listed by
 * `repo` are skipped with a warning: discovery reads local files only.
 */
export async function discoverFromSpec(specPath: string, o: Omit<DiscoverOptions, 'inputs'>): Promise<DiscoverResult> {
  const spec = await loadSpec(specPath);
  const base = dirname(resolve(specPath));
  const c: Collected = { all: new Map(), charts: [], warnings: [] };
  const local = spec.charts.filter((ch) => ch.path !== undefined);
  for (const ch of spec.charts) {
    if (ch.path === undefined) {
      c.warnings.push(`chart ${ch.name} comes from ${ch.repo}: discover reads local charts only; pull it (helm pull --untar) and run airlock discover on that directory`);
    }
  }
  if (local.length === 0) {
    throw new UsageError(`${specPath} lists no chart with a local path to discover`, {
      hint: 'pass charts, kustomize directories or manifests: airlock discover ./charts/shop -f values.yaml',
    });
  }
  for (const ch of local) {
    throwIfAborted(o.signal);
    await collect({ ...o, cwd: o.cwd ?? base, inputs: [resolve(base, ch.path!)], valuesFiles: [...ch.values.map((v) => resolve(base, v)), ...(o.valuesFiles ?? [])] }, c);
  }
  return finish(c, o.includeOptional);
}
