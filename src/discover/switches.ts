// The switches a chart leaves off (pure): every `enabled: false` in the computed values and every
// subchart condition or tag that is false. Turning them on and rendering again is how discovery
// learns the optional images exactly as the chart composes them (registry keys, tags from other
// keys, the Kubernetes version), instead of guessing from the values' shape.
import type { ResolvedChart } from './chart-values.ts';
import { formatValuesPath } from './values-path.ts';

type Obj = Record<string, unknown>;

export interface Switch {
  /** Where the boolean sits in the top-level values (`metrics.enabled`, `db.enabled`, `tags.extras`). */
  segments: string[];
  /** formatValuesPath(segments), as `--set` takes it. */
  path: string;
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
      if (i === s.segments.length - 1) node[seg] = true;
      else {
        if (!isObj(node[seg])) node[seg] = {};
        node = node[seg] as Obj;
      }
    });
  }
  return root;
}
