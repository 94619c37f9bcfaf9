// Image-shaped entries in a chart's computed values (pure): `{registry, repository, tag, digest}`,
// `{repository, tag}`, `{image, tag}`, `{name, tag}` maps and `repo:tag` strings under image keys.
import type { ResolvedChart } from './chart-values.ts';
import { hubContextOf, imageFromHub, imageFromMap, imageFromText, imageFromUntaggedText, isValidTagText, keyHintsImage, type HubContext } from './image-rules.ts';
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

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/**
 * The registry a chart's global knobs put images under: `global.imageRegistry` (bitnami and most
 * library charts), `global.image.registry`, `global.registry` (when it is a host, not a map), a
 * top-level `imageRegistry`.
 */
export function globalRegistryOf(values: Obj): string | undefined {
  const global = isObj(values.global) ? values.global : {};
  const image = isObj(global.image) ? global.image : {};
  return text(global.imageRegistry) ?? text(image.registry) ?? text(global.registry) ?? text(values.imageRegistry);
}

/** The tag an image without one gets: a top-level `appVersion` or `version` value, else Chart.yaml's appVersion. */
function defaultTagOf(chart: ResolvedChart): string | undefined {
  for (const k of ['appVersion', 'version']) {
    const v = chart.values[k];
    const t = typeof v === 'number' ? String(v) : text(v);
    if (t !== undefined && isValidTagText(t)) return t;
  }
  return chart.node.appVersion;
}

export interface ScanOptions {
  /** `v1.30.0`: the tag of an untagged kubectl image. */
  kubeVersion?: string | undefined;
}

/** Image-shaped values of one chart (its subcharts' sections and, below the top chart, `global` left out). */
export function scanChartValues(chart: ResolvedChart, o: ScanOptions = {}): ValuesImage[] {
  const skip = new Set(chart.subchartKeys);
  if (chart.prefix.length > 0) skip.add('global');
  const globalRegistry = globalRegistryOf(chart.values);
  const defaultTag = defaultTagOf(chart);
  const kubeVersion = o.kubeVersion;
  const out: ValuesImage[] = [];

  const walk = (node: unknown, key: string, segments: PathSegment[], depth: number, hub?: HubContext): void => {
    if (depth > MAX_DEPTH) return;
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, key, [...segments, i], depth + 1, hub));
      return;
    }
    if (isObj(node)) {
      const hinted = keyHintsImage(key);
      const m = imageFromMap(node, { globalRegistry, defaultTag, kubeVersion, allowNameTag: hinted, allowUntagged: hinted });
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
    const untagged = keyHintsImage(key) ? imageFromUntaggedText(node, { globalRegistry, defaultTag, kubeVersion }) : undefined;
    if (untagged !== undefined) {
      out.push({ reference: untagged.reference, variants: untagged.variants, tagDefaulted: true, segments });
      return;
    }
    for (const hit of scanText(node)) out.push({ reference: hit.reference, variants: [], tagDefaulted: false, segments });
  };
  walk(chart.values, '', [], 0);
  return out;
}
