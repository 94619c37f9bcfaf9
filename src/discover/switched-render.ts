// Render a chart again with its switches on (impure: runs helm), so optional images come out
// exactly as the chart composes them. All switches at once first; when helm refuses (two modes
// that exclude each other, a switch that needs a value nobody set), the switches are split in
// halves and tried again, within a small budget of renders. Switches that still fail are reported.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirlockError, throwIfAborted } from '../core/errors.ts';
import { helmFailureReason, renderChartWith, type ChartRenderOptions } from './sources.ts';
import type { ResolvedChart } from './chart-values.ts';
import { findModeKeys, findOffSwitches, modeScenarios, switchOverlay, type Switch } from './switches.ts';
import type { Manifest } from './types.ts';
import { Limiter } from '../util/limiter.ts';

export interface SwitchedRender {
  manifests: Manifest[];
  /** The switches that were on in this render. */
  on: Switch[];
}

export interface SwitchedResult {
  renders: SwitchedRender[];
  /** Switches helm would not render even alone (or left over when the budget ran out), with helm's reason. */
  failed: { switch: Switch; reason: string }[];
}

const DEFAULT_BUDGET = 16;
const SLOW_RENDER_MS = 5000;
const SLOW_BUDGET = 6;

/** Where helm says a template failed: `execution error at (chart/templates/x.yaml:26:12)`, `template: chart/templates/x.yaml:9:4: ...`. */
export function failureLocation(reason: string): { origin: string; line: number } | undefined {
  const m = /(?:error at \(|template: )([^\s():]+\.[A-Za-z0-9]+):([0-9]+):[0-9]+/.exec(reason);
  return m ? { origin: m[1]!, line: Number(m[2]) } : undefined;
}

function namedIn(text: string, path: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_.-])${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9_-])`).test(text);
}

export interface SwitchedRenderOptions {
  /** Helm runs at most (default 16, or 6 when the first render takes longer than 5 s). */
  budget?: number;
  /** The switches (dotted values paths) that guard a template line: the ones to blame when helm fails there. */
  guardsAt?: (origin: string, line: number) => string[];
  /** The values paths read where the message in helm's reason is raised (`required "..." .Values.tls.certFile`). */
  valuesBehind?: (reason: string) => string[];
}

/** `tls.enabled` owns `tls.certFile`: the switch of the component whose value a failing line reads. */
function owns(s: Switch, paths: readonly string[]): boolean {
  const owner = s.segments.slice(0, -1).join('.');
  return owner !== '' && paths.some((p) => p === owner || p.startsWith(`${owner}.`));
}

/**
 * Render `chart` with `switches` on. When helm fails at a template line some switches guard, those
 * are set aside and the rest rendered again; otherwise the group is split in halves.
 */
export async function renderWithSwitches(chart: string, o: ChartRenderOptions, switches: readonly Switch[], so: SwitchedRenderOptions = {}): Promise<SwitchedResult> {
  let budget = so.budget ?? DEFAULT_BUDGET;
  const result: SwitchedResult = { renders: [], failed: [] };
  if (switches.length === 0) return result;
  const dir = await mkdtemp(join(tmpdir(), 'airlock-switches-'));
  let runs = 0;
  let file = 0;
  // halves render side by side, two helms at a time at most
  const slots = new Limiter(2);
  try {
    const render = async (group: Switch[]): Promise<Manifest[]> => {
      const overlay = join(dir, `on-${file++}.yaml`);
      await writeFile(overlay, `${JSON.stringify(switchOverlay(group))}\n`);
      const release = await slots.acquire(o.signal);
      try {
        return await renderChartWith(chart, o, [overlay]);
      } finally {
        release();
      }
    };
    const attempt = async (group: Switch[]): Promise<void> => {
      throwIfAborted(o.signal);
      runs++;
      let reason: string;
      const started = Date.now();
      try {
        result.renders.push({ manifests: await render(group), on: group });
        return;
      } catch (e) {
        // helm refusing, or output that is not YAML (a switch that breaks a template): that group fails, not discover
        if (!(e instanceof AirlockError) || (e.code !== 'HELM_FAILED' && e.code !== 'YAML_INVALID') || o.signal?.aborted) throw e;
        reason = helmFailureReason(e);
      }
      // a chart that takes long to render (a whole platform in one chart) gets fewer tries
      if (runs === 1 && so.budget === undefined && Date.now() - started > SLOW_RENDER_MS) budget = SLOW_BUDGET;
      const where = failureLocation(reason);
      const blamed = where && so.guardsAt ? new Set(so.guardsAt(where.origin, where.line)) : new Set<string>();
      const behind = so.valuesBehind ? so.valuesBehind(reason) : [];
      // a message that names the switch (`tls.secretName is required when tls.enabled is true`), or
      // whose `required` reads a value of the switch's component (`tls.certFile`)
      const culprits = group.filter((s) => blamed.has(s.segments.join('.')) || namedIn(reason, s.segments.join('.')) || owns(s, behind));
      if (culprits.length > 0 && culprits.length < group.length && runs < budget) {
        await attempt(group.filter((s) => !culprits.includes(s)));
        // `if and .Values.a.enabled .Values.b.enabled`: either may render alone
        if (culprits.length === 1 || runs + culprits.length > budget) for (const s of culprits) result.failed.push({ switch: s, reason });
        else for (const s of culprits) await attempt([s]);
        return;
      }
      if (group.length === 1 || runs + 2 > budget) {
        for (const s of group) result.failed.push({ switch: s, reason });
        return;
      }
      const half = Math.ceil(group.length / 2);
      await Promise.all([attempt(group.slice(0, half)), attempt(group.slice(half))]);
    };
    await attempt([...switches]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return result;
}

/** `helm fails with a.enabled, b.enabled switched on (REASON)`: the switches helm refused, at most six named. */
export function refusedSwitches(failed: readonly { path: string; reason: string }[]): string {
  const names = failed.map((f) => f.path);
  const shown = names.length > 6 ? `${names.slice(0, 6).join(', ')} and ${names.length - 6} more` : names.join(', ');
  return `helm fails with ${shown} switched on (${failed[0]!.reason})`;
}

/** Renders with string modes set (`expose.type=clusterIP`), beyond the one with every boolean on. */
const MAX_MODE_RENDERS = 4;
/** Helm runs per mode render (the first, then its halves). */
const MODE_BUDGET = 3;

/**
 * Every render that shows what the chart leaves off (impure: runs helm): every boolean switch on
 * (renderWithSwitches), then up to four renders more for the string modes the templates compare
 * (switches.ts findModeKeys): the k-th other value of each key, with the booleans of the largest
 * render helm accepted on too. Modes helm refuses are reported like switches.
 */
export async function renderOptional(chart: string, o: ChartRenderOptions, top: Record<string, unknown>, charts: readonly ResolvedChart[], so: SwitchedRenderOptions = {}): Promise<SwitchedResult> {
  const result = await renderWithSwitches(chart, o, findOffSwitches(top, charts), so);
  const scenarios = modeScenarios(findModeKeys(charts), MAX_MODE_RENDERS);
  if (scenarios.length === 0) return result;
  const booleans = result.renders.reduce<Switch[]>((best, r) => (r.on.length > best.length ? r.on : best), []);
  // the modes first: halving keeps them with the first half of the booleans
  // two at a time (each renders its halves two at a time too)
  const moded: SwitchedResult[] = [];
  for (let i = 0; i < scenarios.length; i += 2) {
    moded.push(...(await Promise.all(scenarios.slice(i, i + 2).map((modes) => renderWithSwitches(chart, o, [...modes, ...booleans], { ...so, budget: MODE_BUDGET })))));
  }
  for (const r of moded) {
    // a render with no mode on shows nothing the first renders did not
    result.renders.push(...r.renders.filter((x) => x.on.some((s) => s.value !== undefined)));
    for (const f of r.failed) if (f.switch.value !== undefined && !result.failed.some((g) => g.switch.path === f.switch.path)) result.failed.push(f);
  }
  return result;
}
