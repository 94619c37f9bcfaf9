// Image-shaped entries in a chart's computed values (pure): `{registry, repository, tag, digest}`,
// `{repository, tag}`, `{image, tag}`, `{name, tag}` maps and `repo:tag` strings under image keys.
import type { ResolvedChart } from './chart-values.ts';
import { hubContextOf, imageFromHub, imageFromMap, imageFromText, keyHintsImage, type HubContext } from './image-rules.ts';
import { scanText } from './text-scan.ts';
import type { PathSegment } from './values-path.ts';

type Obj = Record<string, unknown>;

export interface ValuesImage {
  reference: string;
  /** The same slot composed another way (with or without the global registry). */
  variants: string[];
  /** The map had no tag: the chart's appVersion was assumed, as `helm create` charts do. */
  tagDefaulted: boolean;
  /** Path inside the chart's own values. */
  segments: PathSegment[];
}

const MAX_DEPTH = 48;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Image-shaped values of one chart (its subcharts' sections and, below the top chart, `global` left out). */
export function scanChartValues(chart: ResolvedChart): ValuesImage[] {
  const skip = new Set(chart.subchartKeys);
  if (chart.prefix.length > 0) skip.add('global');
  const global = isObj(chart.values.global) ? chart.values.global : {};
  const globalRegistry = typeof global.imageRegistry === 'string' ? global.imageRegistry : undefined;
  const defaultTag = chart.node.appVersion;
  const out: ValuesImage[] = [];

  const walk = (node: unknown, key: string, segments: PathSegment[], depth: number, hub?: HubContext): void => {
    if (depth > MAX_DEPTH) return;
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, key, [...segments, i], depth + 1, hub));
      return;
    }
    if (isObj(node)) {
      const hinted = keyHintsImage(key);
      const m = imageFromMap(node, { globalRegistry, defaultTag, allowNameTag: hinted, allowUntagged: hinted });
      if (m) {
        out.push({ reference: m.reference, variants: m.variants, tagDefaulted: m.tagDefaulted, segments });
        return;
      }
      const inner = hubContextOf(node, hub);
      for (const [k, v] of Object.entries(node)) {
        if (depth === 0 && skip.has(k)) continue;
        walk(v, k, [...segments, k], depth + 1, inner);
      }
      return;
    }
    if (typeof node !== 'string' || node === '') return;
    const fromHub = imageFromHub(hub, key, node);
    if (fromHub !== undefined) {
      out.push({ reference: fromHub, variants: [], tagDefaulted: false, segments });
      return;
    }
    const keyed = keyHintsImage(key) ? imageFromText(node.trim(), true) : undefined;
    if (keyed !== undefined) {
      out.push({ reference: keyed, variants: [], tagDefaulted: false, segments });
      return;
    }
    for (const hit of scanText(node)) out.push({ reference: hit.reference, variants: [], tagDefaulted: false, segments });
  };
  walk(chart.values, '', [], 0);
  return out;
}
