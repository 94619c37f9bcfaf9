// `airlock discover` as a library: every image the given charts, kustomize directories and
// manifests need, each with its reasons. Offline: helm and kubectl run behind the offline seam,
// and nothing here opens a connection (probing registries is verify-remote.ts, opt-in).
import { dirname, resolve } from 'node:path';
import { throwIfAborted, UsageError } from '../core/errors.ts';
import { parseReference } from '../core/reference.ts';
import { resolveChartValues } from './chart-values.ts';
import { loadChartTree } from './chart-tree.ts';
import { chartFindings } from './combine.ts';
import { extractImages } from './extract.ts';
import { addFinding, sortFindings } from './findings.ts';
import { loadSpec } from '../spec/spec.ts';
import { chartRenderOptions, helmDefaultKubeVersion, loadInputs, type RenderInputOptions } from './sources.ts';
import { normaliseKubeVersion } from './image-rules.ts';
import { switchName } from './switches.ts';
import { guardsAt, valuesBehindMessage } from './attribute.ts';
import type { TemplateLine } from './template-guards.ts';
import { refusedSwitches, renderOptional } from './switched-render.ts';
import type { Finding } from './types.ts';

export interface DiscoverOptions extends RenderInputOptions {
  /** Keep images no rendered resource uses with these values (each with the values path that switches it on). */
  includeOptional?: boolean;
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
  const loaded = await loadInputs({ ...o, command: 'discover' });
  const namespace = o.namespace ?? 'default';
  const cwd = o.cwd ?? process.cwd();
  const kubeVersion = normaliseKubeVersion(o.kubeVersion);
  const { all, warnings, charts } = into;
  for (const input of loaded.inputs) {
    warnings.push(...input.warnings);
    if (input.kind !== 'chart') {
      const extracted = extractImages(input.manifests, { namespace });
      warnings.push(...extracted.warnings);
      mergeInto(all, extracted.findings);
      continue;
    }
    const { chart, warnings: loadWarnings } = await loadChartTree(input.path);
    warnings.push(...loadWarnings);
    charts.push({ name: chart.name, ...(chart.version ? { version: chart.version } : {}), path: input.label });
    const extracted = extractImages(input.manifests, { chart: chart.name, namespace });
    warnings.push(...extracted.warnings);
    const { top, charts: resolved } = resolveChartValues(chart, loaded.values);
    // Render once more with every switch on (and a few times with other string modes): optional
    // images exactly as the chart would render them.
    const parsed = new Map<string, TemplateLine[]>();
    const on = await renderOptional(input.path, { ...chartRenderOptions(o, cwd), chartLabel: input.label }, top, resolved, {
      guardsAt: (origin, line) => guardsAt(origin, line, resolved, parsed),
      valuesBehind: (reason) => valuesBehindMessage(reason, resolved),
    });
    if (on.failed.length > 0 && o.includeOptional) {
      const refused = refusedSwitches(on.failed.map((f) => ({ path: f.switch.path, reason: f.reason })));
      warnings.push(`chart ${input.label}: ${refused}; optional images behind ${on.failed.length > 1 ? 'them' : 'it'} are taken from the values alone`);
    }
    const switched = on.renders.map((r) => ({
      findings: extractImages(r.manifests, { chart: chart.name, namespace }).findings,
      on: new Set(r.on.map(switchName)),
    }));
    const combined = chartFindings({ chart: chart.name, rendered: extracted.findings, charts: resolved, switched, kubeVersion, parsed });
    warnings.push(...combined.warnings);
    if (kubeVersion === undefined) warnings.push(...(await kubeVersionGuesses(input.label, combined.findings, o)));
    mergeInto(all, combined.findings);
  }
}

/**
 * Without --kube-version helm renders with a Kubernetes version of its own; a chart that fills an
 * image tag from the cluster's version (a kubectl image) then names helm's version, not the
 * cluster's: say so, once per image, so the bundle does not carry the wrong one unnoticed.
 */
async function kubeVersionGuesses(label: string, findings: Finding[], o: DiscoverOptions): Promise<string[]> {
  const assumed = await helmDefaultKubeVersion(o);
  if (assumed === undefined) return [];
  const bare = assumed.replace(/^v/, '');
  return findings
    .filter((f) => parseReference(f.reference).tag?.replace(/^v/, '') === bare)
    .map((f) => `chart ${label}: ${f.reference} is tagged ${assumed}, the Kubernetes version helm assumes when none is given: if the chart takes this tag from the cluster's version, give --kube-version with your cluster's`);
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
      code: 'SPEC_NO_LOCAL_CHARTS',
      hint: 'name the charts, kustomize directories or manifests to discover instead',
    });
  }
  for (const ch of local) {
    throwIfAborted(o.signal);
    await collect({ ...o, cwd: o.cwd ?? base, inputs: [resolve(base, ch.path!)], valuesFiles: [...ch.values.map((v) => resolve(base, v)), ...(o.valuesFiles ?? [])] }, c);
  }
  return finish(c, o.includeOptional);
}
