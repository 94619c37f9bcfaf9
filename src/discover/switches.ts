// The switches a chart leaves off (pure): every `enabled: false` in the computed values and every
// subchart condition or tag that is false. Turning them on and rendering again is how discovery
// learns the optional images exactly as the chart composes them (registry keys, tags from other
// keys, the Kubernetes version), instead of guessing from the values' shape.
import type { ResolvedChart } from './chart-values.ts';
import type { OptionalInfo } from './types.ts';
import { formatValuesPath, valueAt } from './values-path.ts';

type Obj = Record<string, unknown>;

export interface Switch {
  /** Where the boolean sits in the top-level values (`metrics.enabled`, `db.enabled`, `tags.extras`). */
  segments: string[];
  /** formatValuesPath(segments), as `--set` takes it; for a mode, `expose.type=clusterIP`. */
  path: string;
  /** A string mode (`expose.type: clusterIP`) instead of a boolean turned on. */
  value?: string;
}

const MAX_DEPTH = 32;
/** A chart with hundreds of switches is still rendered once; past this, the rest are left off. */
const MAX_SWITCHES = 400;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFalse(v: unknown): boolean {
  return v === false || v === 'false';
}

/**
 * Every switch that is off: `enabled: false` (or `enable: false`) anywhere in `top` (lists are
 * skipped: a `--set` into a list would replace the chart's whole list) and the conditions and tags
 * of subcharts switched off.
 */
export function findOffSwitches(top: Obj, charts: readonly ResolvedChart[]): Switch[] {
  const out = new Map<string, Switch>();
  const add = (segments: string[]): void => {
    const path = formatValuesPath(segments);
    if (!out.has(path) && out.size < MAX_SWITCHES) out.set(path, { segments, path });
  };
  const walk = (node: Obj, at: string[], depth: number): void => {
    if (depth > MAX_DEPTH) return;
    for (const [k, v] of Object.entries(node)) {
      if ((k === 'enabled' || k === 'enable') && isFalse(v)) add([...at, k]);
      // a subchart's `global` is the parent's, copied down: switched at the top only
      else if (isObj(v) && !(k === 'global' && at.length > 0)) walk(v, [...at, k], depth + 1);
    }
  };
  walk(top, [], 0);
  for (const c of charts) {
    if (c.enabled || c.switchPath === undefined) continue;
    // conditions are dotted values paths; tags live under `tags`
    add(c.switchPath.split('.'));
  }
  return [...out.values()];
}

/** A values overlay that turns the given switches on (to pass to helm as one more -f file). */
export function switchOverlay(switches: readonly Switch[]): Obj {
  const root: Obj = {};
  for (const s of switches) {
    let node = root;
    s.segments.forEach((seg, i) => {
      if (i === s.segments.length - 1) node[seg] = s.value ?? true;
      else {
        if (!isObj(node[seg])) node[seg] = {};
        node = node[seg] as Obj;
      }
    });
  }
  return root;
}

/**
 * How attribution names a switch that is on: its dotted values path (`metrics.enabled`), and for a
 * mode the value too (`expose.type=clusterIP`).
 */
export function switchName(s: Switch): string {
  const dotted = s.segments.join('.');
  return s.value === undefined ? dotted : `${dotted}=${s.value}`;
}

/** `metrics.enabled` → `--set metrics.enabled=true`; a mode `expose.type=clusterIP` → `--set expose.type=clusterIP`. */
export function setFlag(name: string): string {
  return /(^|[^\\])=/.test(name) ? `--set ${name}` : `--set ${name}=true`;
}

/** The switches that turn an optional image on (none when which one is not known). */
export function optionalSwitches(optional: OptionalInfo): string[] {
  return optional.switches ?? (optional.valuesPath === '' ? [] : [optional.valuesPath]);
}

/** The `--set` flags that switch an optional image on. */
export function switchFlags(optional: OptionalInfo): string[] {
  return optionalSwitches(optional).map(setFlag);
}

/** A switch name split into its values path and, for a mode, the value. */
export function splitSwitchName(name: string): { path: string; value?: string } {
  const m = /^((?:[^=\\]|\\.)*)=([\s\S]*)$/.exec(name);
  return m ? { path: m[1]!, value: m[2]! } : { path: name };
}

const MODE_COMPARISON = /\b(?:eq|ne)\s+\$?[A-Za-z0-9_]*\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)((?:\s+"(?:[^"\\]|\\.)*")+)/g;
const MODE_COMPARISON_REVERSED = /\b(?:eq|ne)\s+"((?:[^"\\]|\\.)*)"\s+\$?[A-Za-z0-9_]*\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)/g;
/** Past this many keys, the rest keep their values. */
const MAX_MODE_KEYS = 64;

function unquote(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

export interface ModeKey {
  /** Where the string sits in the top-level values (`expose.type`, `redis.architecture`). */
  segments: string[];
  /** The value the chart renders with now. */
  current: string;
  /** The other values the templates compare it against, in the order they first appear. */
  literals: string[];
}

/**
 * String modes (pure): every `eq|ne .Values.a.b "lit"` (or `eq "lit" .Values.a.b`) in the templates
 * of the chart and its subcharts whose value is a string in the computed values. A subchart's
 * `.Values.x` is the parent's `<subchart>.x`; `global.` stays at the top.
 */
export function findModeKeys(charts: readonly ResolvedChart[]): ModeKey[] {
  const out = new Map<string, ModeKey>();
  for (const chart of charts) {
    const templates = chart.node.templates ?? {};
    for (const file of Object.keys(templates).sort()) {
      const text = templates[file]!;
      const found: { path: string; literals: string[] }[] = [];
      for (const m of text.matchAll(MODE_COMPARISON)) found.push({ path: m[1]!.slice(1), literals: [...m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((l) => unquote(l[1]!)) });
      for (const m of text.matchAll(MODE_COMPARISON_REVERSED)) found.push({ path: m[2]!.slice(1), literals: [unquote(m[1]!)] });
      for (const { path, literals } of found) {
        const own = path.split('.');
        const current = valueAt(chart.values, own);
        if (typeof current !== 'string') continue;
        const segments = own[0] === 'global' ? own : [...chart.prefix, ...own];
        const key = segments.join('.');
        let entry = out.get(key);
        if (entry === undefined) {
          if (out.size >= MAX_MODE_KEYS) continue;
          entry = { segments, current, literals: [] };
          out.set(key, entry);
        }
        // `ne .Values.x ""` asks whether it is set: no mode
        // (a value `--set` could not take as it is, with a comma or a backslash, is left out)
        for (const l of literals) if (l !== '' && l !== current && !/[,\\\n]/.test(l) && !entry.literals.includes(l)) entry.literals.push(l);
      }
    }
  }
  return [...out.values()].filter((k) => k.literals.length > 0);
}

/**
 * The mode renders: one value of a key excludes the others, so render k sets the k-th literal of
 * every key (a key with fewer keeps its value), at most `max` renders.
 */
export function modeScenarios(keys: readonly ModeKey[], max: number): Switch[][] {
  const count = Math.min(max, Math.max(0, ...keys.map((k) => k.literals.length)));
  const out: Switch[][] = [];
  for (let i = 0; i < count; i++) {
    out.push(keys.filter((k) => i < k.literals.length).map((k) => ({ segments: k.segments, path: `${formatValuesPath(k.segments)}=${k.literals[i]!}`, value: k.literals[i]! })));
  }
  return out;
}
