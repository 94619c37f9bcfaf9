// The values each chart of a chart tree sees, computed the way helm coalesces them (pure):
// user values over the chart's defaults (a user `null` removes a default), each subchart's section
// of the parent over the subchart's own defaults, the parent's `global` over the subchart's, and
// which subcharts are switched off by their `condition` or `tags`.
import { formatValuesPath, type PathSegment } from './values-path.ts';

type Obj = Record<string, unknown>;

export interface ChartDependency {
  name: string;
  alias?: string;
  /** Comma-separated values paths; the first one that holds a boolean decides. */
  condition?: string;
  tags?: string[];
}

/** A chart as discovery needs it: metadata, default values and subcharts (loaded by chart-tree.ts). */
export interface ChartNode {
  name: string;
  version?: string;
  appVersion?: string;
  annotations: Record<string, unknown>;
  dependencies: ChartDependency[];
  /** values.yaml */
  defaults: Obj;
  subcharts: ChartNode[];
  /** `templates/…` files by their path inside the chart: which switch guards an image line. */
  templates?: Record<string, string>;
  /** Where it was loaded from, for messages. */
  source: string;
}

export interface ResolvedChart {
  node: ChartNode;
  /** `shop`, `shop/postgresql`: the chart's place in the tree (aliases used). */
  chartPath: string;
  /** Where this chart's values sit in the top-level values ([] for the top chart). */
  prefix: string[];
  /** The computed values this chart's templates see (the object inside the top-level values). */
  values: Obj;
  enabled: boolean;
  /** For a chart switched off: the values path that switches it on (`postgresql.enabled`, `tags.db`). */
  switchPath?: string;
  /** Keys of `values` that belong to subcharts (scanned as those charts, not as this one). */
  subchartKeys: string[];
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** helm's coalesceTables: `dst` (the stronger side) gains what it lacks from `src`; a null in dst removes. */
function coalesceTables(dst: Obj, src: Obj): Obj {
  for (const [k, sv] of Object.entries(src)) {
    if (!(k in dst)) dst[k] = clone(sv);
    else if (dst[k] === null) delete dst[k];
    else if (isObj(dst[k]) && isObj(sv)) coalesceTables(dst[k] as Obj, sv);
  }
  return dst;
}

/** The parent's globals win over the subchart's (helm coalesceGlobals). */
function coalesceGlobals(sub: Obj, parent: Obj): void {
  const dg = isObj(sub.global) ? sub.global : {};
  const sg = isObj(parent.global) ? parent.global : {};
  for (const [k, v] of Object.entries(sg)) {
    if (isObj(v)) {
      const vv = clone(v);
      if (isObj(dg[k])) coalesceTables(vv, dg[k] as Obj);
      dg[k] = vv;
    } else dg[k] = v;
  }
  sub.global = dg;
}

function valuesKeyOf(node: ChartNode, dep: ChartDependency | undefined): string {
  return dep?.alias ?? node.name;
}

/** Pair each subchart with its Chart.yaml dependency entry (by name; an alias may repeat a chart). */
function pairs(node: ChartNode): { sub: ChartNode; dep: ChartDependency | undefined }[] {
  const out: { sub: ChartNode; dep: ChartDependency | undefined }[] = [];
  const used = new Set<ChartNode>();
  for (const dep of node.dependencies) {
    const sub = node.subcharts.find((s) => s.name === dep.name);
    if (sub) {
      out.push({ sub, dep });
      used.add(sub);
    }
  }
  for (const sub of node.subcharts) if (!used.has(sub)) out.push({ sub, dep: undefined });
  return out;
}

function coalesce(node: ChartNode, v: Obj): void {
  coalesceTables(v, node.defaults);
  for (const { sub, dep } of pairs(node)) {
    const key = valuesKeyOf(sub, dep);
    if (!isObj(v[key])) v[key] = {};
    const sv = v[key] as Obj;
    coalesceGlobals(sv, v);
    coalesce(sub, sv);
  }
}

function pathValue(top: Obj, dotted: string): unknown {
  let node: unknown = top;
  for (const part of dotted.split('.')) {
    if (!isObj(node)) return undefined;
    node = node[part];
  }
  return node;
}

/** helm: tags first (any true tag enables, all-false disables), then the first boolean condition wins. */
function dependencyEnabled(dep: ChartDependency | undefined, top: Obj, cpath: string): { enabled: boolean; switchPath?: string } {
  if (!dep) return { enabled: true };
  let enabled = true;
  let switchPath: string | undefined;
  if (dep.tags && dep.tags.length > 0) {
    const tags = isObj(top.tags) ? top.tags : {};
    const states = dep.tags.map((t) => tags[t]);
    const anyTrue = states.some((s) => s === true);
    const anyFalse = states.some((s) => s === false);
    if (!anyTrue && anyFalse) {
      enabled = false;
      switchPath = `tags.${dep.tags[states.findIndex((s) => s === false)]}`;
    }
  }
  if (dep.condition) {
    for (const c of dep.condition.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      const v = pathValue(top, `${cpath}${c}`);
      if (typeof v === 'boolean') {
        enabled = v;
        switchPath = v ? undefined : `${cpath}${c}`;
        break;
      }
    }
  }
  return switchPath === undefined ? { enabled } : { enabled, switchPath };
}

/**
 * Every chart of the tree with the values it sees. `user` is the merged -f/--set values; it is not
 * changed. The top-level values (with every subchart's section filled in) are returned as `top`.
 */
export function resolveChartValues(root: ChartNode, user: Obj): { top: Obj; charts: ResolvedChart[] } {
  const top = clone(user);
  coalesce(root, top);
  const charts: ResolvedChart[] = [];
  const visit = (node: ChartNode, values: Obj, chartPath: string, prefix: string[], enabled: boolean, switchPath: string | undefined): void => {
    const children = pairs(node);
    charts.push({
      node,
      chartPath,
      prefix,
      values,
      enabled,
      ...(switchPath === undefined ? {} : { switchPath }),
      subchartKeys: children.map(({ sub, dep }) => valuesKeyOf(sub, dep)),
    });
    const cpath = prefix.length === 0 ? '' : `${prefix.join('.')}.`;
    for (const { sub, dep } of children) {
      const key = valuesKeyOf(sub, dep);
      const own = dependencyEnabled(dep, top, cpath);
      const childValues = isObj(values[key]) ? (values[key] as Obj) : {};
      visit(sub, childValues, `${chartPath}/${key}`, [...prefix, key], enabled && own.enabled, switchPath ?? own.switchPath);
    }
  };
  visit(root, top, root.name, [], true, undefined);
  return { top, charts };
}

/**
 * The values path that would switch on what sits at `segments` inside `values`: the nearest
 * enclosing map with `enabled: false` (`metrics.enabled`), or undefined when nothing is off.
 */
export function findSwitch(values: Obj, segments: PathSegment[]): PathSegment[] | undefined {
  const maps: { node: Obj; at: number }[] = [{ node: values, at: 0 }];
  let node: unknown = values;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    node = Array.isArray(node) && typeof seg === 'number' ? node[seg] : isObj(node) && typeof seg === 'string' ? node[seg] : undefined;
    if (isObj(node)) maps.push({ node, at: i + 1 });
  }
  for (let j = maps.length - 1; j >= 0; j--) {
    const m = maps[j]!;
    if (m.node.enabled === false) return [...segments.slice(0, m.at), 'enabled'];
  }
  return undefined;
}

export { formatValuesPath };
