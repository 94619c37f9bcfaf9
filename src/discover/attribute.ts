// Which switch brings an image in (pure). An image that only the render with switches on shows is
// optional; the hint must name the values key a user turns on (`persistence.enabled`,
// `defaultBackend.enabled`, the subchart's condition), not where the image is set. The evidence,
// strongest first: the `if` that encloses the template's image line, the nearest `enabled` above
// the values that set the image, the switch the whole template stands under, the subchart's
// condition, and a switch whose key the template's file name repeats.
import { parseReference } from '../core/reference.ts';
import { findSwitch, type ResolvedChart } from './chart-values.ts';
import { templateLines, type TemplateLine } from './template-guards.ts';
import type { Finding, OptionalInfo } from './types.ts';
import { valueAt, type PathSegment } from './values-path.ts';
import { setFlag, splitSwitchName } from './switches.ts';

/** An image the values scan found, with where it is set. */
export interface StaticImage {
  chart: ResolvedChart;
  /** Inside the chart's own values. */
  segments: PathSegment[];
  references: string[];
}

export interface AttributionContext {
  charts: readonly ResolvedChart[];
  statics: readonly StaticImage[];
  /** Parsed templates by origin, filled as they are needed. */
  parsed?: Map<string, TemplateLine[]>;
}

function linesOf(origin: string, chart: ResolvedChart, file: string, cache: Map<string, TemplateLine[]> | undefined): TemplateLine[] | undefined {
  const hit = cache?.get(origin);
  if (hit) return hit;
  const text = chart.node.templates?.[file];
  if (text === undefined) return undefined;
  const lines = templateLines(text);
  cache?.set(origin, lines);
  return lines;
}

/**
 * The values paths (top-level, dotted) whose conditions enclose line `line` (1-based) of the
 * rendered template `origin`: what to switch off again when helm fails there.
 */
export function guardsAt(origin: string, line: number, charts: readonly ResolvedChart[], cache?: Map<string, TemplateLine[]>): string[] {
  const located = chartOfOrigin(origin, charts);
  if (!located) return [];
  const lines = linesOf(origin, located.chart, located.file, cache);
  const at = lines?.[line - 1];
  return at === undefined ? [] : at.guards.map((g) => topPath(located.chart, g));
}

const VALUES_REF = /\$?[A-Za-z0-9_]*\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)/g;
const MESSAGE = /\b(?:required|fail)\s+"((?:[^"\\]|\\.)+)"/g;

/**
 * The values paths (top-level, dotted) read on the template line whose `required "..."` or
 * `fail "..."` message helm's reason quotes. Helm places a failure where the include or the
 * template call stands (a checksum annotation, a helper's caller), a line no switch may guard;
 * the line that raised the message still names the values behind it (`.Values.tls.certFile`).
 */
export function valuesBehindMessage(reason: string, charts: readonly ResolvedChart[]): string[] {
  const out = new Set<string>();
  for (const chart of charts) {
    for (const text of Object.values(chart.node.templates ?? {})) {
      if (!/\b(?:required|fail)\s+"/.test(text)) continue;
      for (const line of text.split('\n')) {
        for (const m of line.matchAll(MESSAGE)) {
          const message = m[1]!.replace(/\\(.)/g, '$1');
          // a short message ("no", "x") could be part of any reason
          if (message.length < 8 || !reason.includes(message)) continue;
          for (const r of line.matchAll(VALUES_REF)) out.add(topPath(chart, r[1]!.slice(1)));
        }
      }
    }
  }
  return [...out];
}

/** The repository path without registry, tag or digest: the same slot however the chart composes it. */
export function repositoryKey(reference: string): string {
  try {
    return parseReference(reference).repository;
  } catch {
    return reference;
  }
}

/** The image without its registry (`bitnami/nginx:1.27`): the same content wherever it is pulled from. */
export function slotKey(reference: string): string {
  try {
    const r = parseReference(reference);
    return `${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
  } catch {
    return reference;
  }
}

/** `shop/charts/db/templates/job.yaml` → the chart `shop/db` and `templates/job.yaml`. */
function chartOfOrigin(origin: string, charts: readonly ResolvedChart[]): { chart: ResolvedChart; file: string } | undefined {
  const parts = origin.split('/');
  let end = 1;
  while (parts[end] === 'charts' && end + 1 < parts.length) end += 2;
  const chartPath = parts.slice(0, end).filter((_, i) => i % 2 === 0).join('/');
  const chart = charts.find((c) => c.chartPath === chartPath);
  return chart ? { chart, file: parts.slice(end).join('/') } : undefined;
}

function dotted(segments: readonly PathSegment[]): string {
  return segments.map(String).join('.');
}

/** A guard path of a template of `chart`, as a top-level values path (`global.` stays at the top). */
function topPath(chart: ResolvedChart, guard: string): string {
  return guard.startsWith('global.') || chart.prefix.length === 0 ? guard : `${chart.prefix.join('.')}.${guard}`;
}

function normalise(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/g, '');
}

function guardsOn(l: TemplateLine, chart: ResolvedChart, on: ReadonlySet<string>): string[] {
  return [...new Set(l.guards.map((g) => topPath(chart, g)).filter((g) => on.has(g)))];
}

/** The image lines that name one of `valuesPaths` (`.Values.metrics.image`), for the first path that has any. */
function namedLines(imageLines: TemplateLine[], valuesPaths: string[]): TemplateLine[] | undefined {
  for (const p of valuesPaths) {
    const parent = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : p;
    const named = imageLines.filter((l) => l.text.includes(`.Values.${p}`) || (parent !== p && new RegExp(`\\.Values\\.${parent.replace(/\./g, '\\.')}\\b`).test(l.text)));
    if (named.length > 0) return named;
  }
  return undefined;
}

function fromNamedLines(lines: TemplateLine[], chart: ResolvedChart, on: ReadonlySet<string>, valuesPaths: string[]): string[] | undefined {
  const named = namedLines(lines.filter((l) => /image/i.test(l.text)), valuesPaths);
  return named?.map((l) => guardsOn(l, chart, on)).find((x) => x.length > 0);
}

/** The switches (outermost first) the image line of this template stands under. */
function fromTemplate(lines: TemplateLine[], chart: ResolvedChart, on: ReadonlySet<string>, valuesPaths: string[]): string[] | undefined {
  const onGuards = (l: TemplateLine): string[] => guardsOn(l, chart, on);
  const imageLines = lines.filter((l) => !l.inDefine && /image/i.test(l.text));
  // the image line that names the values the image comes from decides
  const named = namedLines(imageLines, valuesPaths);
  // [] says: the image line is found and no switch stands over it
  if (named !== undefined) return named.map(onGuards).find((x) => x.length > 0) ?? [];
  if (imageLines.length === 0) return lines.filter((l) => !l.inDefine).map(onGuards).find((g) => g.length > 0);
  const guarded = imageLines.map(onGuards).filter((g) => g.length > 0);
  const innermost = new Set(guarded.map((g) => g[g.length - 1]!));
  const unguarded = guarded.length < imageLines.length;
  if (innermost.size === 0) return undefined;
  // In a chart that renders by default an unguarded image line was there already: the new image
  // stands under a switch. In a chart switched off as a whole, either could be it.
  if (innermost.size === 1 && (!unguarded || chart.enabled)) return guarded[0];
  if (valuesPaths.length > 0 || !chart.enabled) return undefined;
  return guarded[0];
}

function fromNamedTemplates(chart: ResolvedChart, on: ReadonlySet<string>, valuesPaths: string[], cache: Map<string, TemplateLine[]> | undefined): string[] | undefined {
  for (const file of Object.keys(chart.node.templates ?? {}).sort()) {
    const lines = linesOf(`${chart.chartPath}//${file}`, chart, file, cache)?.filter((l) => l.inDefine);
    if (lines === undefined || lines.length === 0) continue;
    const found = fromNamedLines(lines, chart, on, valuesPaths);
    if (found !== undefined) return found;
  }
  return undefined;
}

function fromFileName(file: string, chart: ResolvedChart, on: ReadonlySet<string>): string | undefined {
  const base = normalise(file.replace(/^.*\//, '').replace(/\.[a-z]+$/i, ''));
  let best: string | undefined;
  let bestLen = 0;
  for (const s of on) {
    const parts = s.split('.');
    if (parts.length < 2 || !/^enabled?$/.test(parts[parts.length - 1]!)) continue;
    const owner = parts.slice(0, -1);
    if (chart.prefix.length > 0 && dotted(owner.slice(0, chart.prefix.length)) !== dotted(chart.prefix)) continue;
    const key = normalise(owner[owner.length - 1]!);
    if (key.length >= 3 && base.includes(key) && key.length > bestLen) {
      best = s;
      bestLen = key.length;
    }
  }
  return best;
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object' && v !== null) return Object.keys(v).length > 0;
  return v !== undefined && v !== null && v !== false && v !== '' && v !== 0;
}

/**
 * The fewest switches of `on` that render an image line naming `valuesPaths` in any template of
 * `chart`, where every other condition over that line holds with the chart's values. A render with
 * every switch on shows an image where one mode (`cluster.enabled`) moved it to another template;
 * the template of the default mode renders it with its own switch alone.
 */
function fewestSwitches(chart: ResolvedChart, on: ReadonlySet<string>, valuesPaths: string[], cache: Map<string, TemplateLine[]> | undefined): string[] | undefined {
  let best: string[] | undefined;
  for (const file of Object.keys(chart.node.templates ?? {}).sort()) {
    const lines = linesOf(`${chart.chartPath}//${file}`, chart, file, cache)?.filter((l) => !l.inDefine && /image/i.test(l.text));
    if (lines === undefined || lines.length === 0) continue;
    for (const l of namedLines(lines, valuesPaths) ?? []) {
      const needed = guardsOn(l, chart, on);
      if (needed.length === 0) continue;
      // an `or` needs one of its values: a switch of `on` among them is enough
      const others = l.guards.filter((g) => !on.has(topPath(chart, g)) && !l.anyOf.includes(g));
      if (!others.every((g) => truthy(valueAt(chart.values, g.split('.'))))) continue;
      if (best === undefined || needed.length < best.length) best = needed;
    }
  }
  return best;
}

function setFlags(paths: readonly string[]): string {
  return paths.map(setFlag).join(' and ');
}

/**
 * The switch that brings `finding` (seen only when the switches in `on` were turned on) into the
 * render, and a hint naming it.
 */
export function attributeOptional(finding: Finding, switchedOn: ReadonlySet<string>, ctx: AttributionContext): OptionalInfo {
  // a string mode is on as `expose.type=clusterIP`: its key guards the lines, its value is the hint
  const modes = new Map<string, string>();
  const on = new Set<string>();
  for (const name of switchedOn) {
    const { path, value } = splitSwitchName(name);
    on.add(path);
    if (value !== undefined) modes.set(path, value);
  }
  const named = (p: string): string => (modes.has(p) ? `${p}=${modes.get(p)!}` : p);
  const origin = finding.reasons.find((r) => r.origin !== undefined)?.origin;
  const located = origin === undefined ? undefined : chartOfOrigin(origin, ctx.charts);
  const key = repositoryKey(finding.reference);
  const statics = ctx.statics.filter((s) => s.references.some((r) => repositoryKey(r) === key));
  const chart = located?.chart ?? statics[0]?.chart;

  let inner: string[] | undefined;
  let unguarded = false;
  const own = located ? statics.filter((s) => s.chart === located.chart).map((s) => dotted(s.segments)) : [];
  if (located && origin !== undefined) {
    const lines = linesOf(origin, located.chart, located.file, ctx.parsed);
    const found = lines === undefined ? undefined : fromTemplate(lines, located.chart, on, own);
    if (found !== undefined && found.length > 0) inner = found;
    unguarded = found !== undefined && found.length === 0;
    // Pod specs kept in named templates (`_pod.tpl`, included by the deployment): the image line
    // that names the image's values, wherever the chart defines it.
    if (inner === undefined && !unguarded && own.length > 0) inner = fromNamedTemplates(located.chart, on, own, ctx.parsed);
  }
  if (inner !== undefined && inner.length > 1 && located && own.length > 0) {
    const fewer = fewestSwitches(located.chart, on, own, ctx.parsed);
    if (fewer !== undefined && fewer.length < inner.length && fewer.every((p) => inner!.includes(p))) inner = fewer;
  }
  if (inner === undefined) {
    for (const s of statics) {
      const sw = findSwitch(s.chart.values, s.segments);
      const p = sw === undefined ? undefined : dotted([...s.chart.prefix, ...sw]);
      if (p !== undefined && on.has(p)) {
        inner = [p];
        break;
      }
    }
  }
  // An unguarded image line in a chart that renders by default still brought a new image in: the
  // switch hides in a helper (`if (include "x.enabled" .)`), and the file's name may tell it.
  if (inner === undefined && located && (!unguarded || located.chart.enabled)) {
    const byName = fromFileName(located.file, located.chart, on);
    if (byName !== undefined) inner = [byName];
  }

  const where = origin === undefined ? 'rendered' : `rendered by ${origin}`;
  if (chart && !chart.enabled && chart.switchPath !== undefined) {
    const all = [chart.switchPath, ...(inner ?? []).filter((p) => p !== chart.switchPath)];
    return { valuesPath: chart.switchPath, switches: all, hint: `${where}; chart ${chart.chartPath} is switched off; switch it on with ${setFlags(all)}` };
  }
  if (inner !== undefined && inner.length > 0) {
    const all = inner.map(named);
    const when = inner.some((p) => modes.has(p)) ? `with ${all.join(' and ')}` : `when ${inner.join(' and ')} ${inner.length > 1 ? 'are' : 'is'} on`;
    return { valuesPath: inner[0]!, switches: all, hint: `${where} only ${when}; switch it on with ${setFlags(all)}` };
  }
  const listed = [...switchedOn].slice(0, 3).join(', ');
  return { valuesPath: '', hint: `${where} only with switches on (${listed}${switchedOn.size > 3 ? ', ...' : ''}); which one brings it in is not known` };
}
