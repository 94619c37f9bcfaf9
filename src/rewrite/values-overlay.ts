// Values that send a chart's images to the target registry (pure): where discovery's values scan
// found each image, the mapped pieces written back in the shape the chart uses there.
//   {registry, repository, tag, digest}  registry: R, repository: P/path   (tag and digest stay)
//   {repository|image|name, tag}         that field: R/P/path
//   image: repo:tag (any string)         the reference inside the string mapped, the rest kept
//   hub: docker.io/istio + image: name   hub: R/P/istio
// Helm replaces lists as a whole, so a path through a list writes the whole list (as computed).
import type { ResolvedChart } from '../discover/chart-values.ts';
import { formatName, formatReference, parseReference, type Reference } from '../core/reference.ts';
import { formatValuesPath, valueAt, type PathSegment } from '../discover/values-path.ts';
import { keyHintsImage } from '../discover/image-rules.ts';
import { scanChartValues, type ValuesImage } from '../discover/values-scan.ts';
import { ImageSet, mapImagesInText, targetOf } from './image-text.ts';
import { mapReference, type Target } from './mapping.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One image-shaped entry of the computed values. */
export interface ValuesKnob {
  /** From the top-level values (a subchart's entries start with its key). */
  segments: PathSegment[];
  /** The chart whose values hold it: `shop`, `shop/db`. */
  chart: string;
  image: ValuesImage;
}

/** One value the overlay sets. */
export interface OverlayWrite {
  segments: PathSegment[];
  value: unknown;
  /** The images it redirects. */
  images: string[];
}

/**
 * How an image is to be redirected through its values:
 *   full        registry and path both come from the values
 *   repository  the chart takes the registry from global.imageRegistry; only the path is fixed
 */
export type WriteMode = 'full' | 'repository';

/** Every image-shaped value in the enabled charts of a resolved chart tree. */
export function valuesKnobs(charts: readonly ResolvedChart[]): ValuesKnob[] {
  const out: ValuesKnob[] = [];
  for (const c of charts) {
    if (!c.enabled) continue;
    for (const image of scanChartValues(c)) out.push({ segments: [...c.prefix, ...image.segments], chart: c.chartPath, image });
  }
  return out;
}

/** The values entries that make the chart render `reference` (its tag may have come from appVersion). */
export function knobsFor(reference: string, knobs: readonly ValuesKnob[]): ValuesKnob[] {
  const name = formatName(parseReference(reference));
  return knobs.filter((k) => {
    const candidates = [k.image.reference, ...k.image.variants];
    if (candidates.includes(reference)) return true;
    return k.image.tagDefaulted && candidates.some((c) => formatName(parseReference(c)) === name);
  });
}

const REPOSITORY_KEYS = ['repository', 'image', 'name'] as const;

/** The key of an image map that holds the repository (as discovery's imageFromMap reads it). */
function repositoryKey(map: Obj): (typeof REPOSITORY_KEYS)[number] | undefined {
  return REPOSITORY_KEYS.find((k) => typeof map[k] === 'string');
}

/** `hub` of the nearest enclosing map (istio: `hub` + `tag` above `image: proxyv2`). */
function hubWrite(top: Obj, knob: ValuesKnob, ref: Reference, target: Target): OverlayWrite | undefined {
  for (let i = knob.segments.length - 1; i >= 0; i--) {
    const at = knob.segments.slice(0, i);
    const map = valueAt(top, at);
    if (!isObj(map) || typeof map.hub !== 'string') continue;
    const hub = map.hub.trim().replace(/\/+$/, '');
    const leaf = valueAt(top, knob.segments);
    if (typeof leaf !== 'string') return undefined;
    let hubRef: Reference;
    try {
      hubRef = parseReference(`${hub}/${leaf}`);
    } catch {
      return undefined;
    }
    if (formatName(hubRef) !== formatName(ref)) return undefined;
    const mapped = formatName(mapReference(hubRef, target));
    const value = mapped.slice(0, mapped.length - leaf.length - 1);
    return { segments: [...at, 'hub'], value, images: [formatReference(ref)] };
  }
  return undefined;
}

/**
 * The overlay values that redirect `reference` through one values entry, or undefined when that
 * entry cannot do it (a string that does not contain the reference, a map of another shape).
 */
export function writesFor(knob: ValuesKnob, top: Obj, reference: string, target: Target, mode: WriteMode): OverlayWrite[] | undefined {
  const ref = parseReference(reference);
  const mapped = targetOf(ref, target);
  const node = valueAt(top, knob.segments);
  const images = [reference];
  if (typeof node === 'string') {
    if (mode === 'repository') return undefined;
    // Under a key that says image the whole value is the image; other strings are free text.
    const key = [...knob.segments].reverse().find((s) => typeof s === 'string') ?? '';
    const m = mapImagesInText(node, new ImageSet([ref]), target, keyHintsImage(key) ? 'any' : 'qualified');
    if (m.mappings.length > 0) return [{ segments: knob.segments, value: m.text, images }];
    const hub = hubWrite(top, knob, ref, target);
    return hub ? [hub] : undefined;
  }
  if (!isObj(node)) return undefined;
  const key = repositoryKey(node);
  if (key === undefined) return undefined;
  const current = String(node[key]).trim();
  // A `digest` the target holds another index for (Target.digests) is written beside the name.
  const newDigest = typeof node.digest === 'string' ? target.digests?.get(node.digest.trim()) : undefined;
  const digest: OverlayWrite[] = newDigest !== undefined ? [{ segments: [...knob.segments, 'digest'], value: newDigest, images }] : [];
  if (mode === 'repository') {
    return [...(current === ref.repository ? [] : [{ segments: [...knob.segments, key], value: ref.repository, images }]), ...digest];
  }
  if (typeof node.registry === 'string' && node.registry.trim() !== '') {
    const writes: OverlayWrite[] = [{ segments: [...knob.segments, 'registry'], value: mapped.registry, images }];
    if (current !== mapped.repository) writes.push({ segments: [...knob.segments, key], value: mapped.repository, images });
    return [...writes, ...digest];
  }
  const m = mapImagesInText(current, new ImageSet([ref]), target, 'any');
  if (m.mappings.length === 0) return digest.length > 0 ? digest : undefined;
  // An empty `registry` beside it would be put in front by some charts: keep it empty.
  return [{ segments: [...knob.segments, key], value: m.text, images }, ...digest];
}

/**
 * Set `value` at `segments` in `overlay`. Helm merges maps key by key but replaces lists: a path
 * through a list first copies the whole list from the computed values `top` into the overlay.
 */
export function setOverlayValue(overlay: Obj, top: Obj, segments: readonly PathSegment[], value: unknown): void {
  let node: Obj | unknown[] = overlay;
  let src: unknown = top;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    const container = node as Record<string | number, unknown>;
    if (last) {
      container[seg] = value;
      return;
    }
    const srcChild = typeof seg === 'number' ? (Array.isArray(src) ? src[seg] : undefined) : isObj(src) ? src[seg] : undefined;
    if (typeof segments[i + 1] === 'number') {
      if (!Array.isArray(container[seg])) container[seg] = Array.isArray(srcChild) ? structuredClone(srcChild) : [];
    } else if (!isObj(container[seg])) {
      container[seg] = {};
    }
    node = container[seg] as Obj | unknown[];
    src = srcChild;
  }
}

/** `--set`-style path of a write, for people. */
export function describePath(segments: readonly PathSegment[]): string {
  return formatValuesPath(segments);
}

const MAX_DEPTH = 32;

/**
 * Values that hold the start of an image's name, for images no image-shaped value names: a
 * `hub: docker.io/istio` or `registry: quay.io` the chart puts in front of a name written in a
 * template. Each is only a candidate; the render afterwards says whether it did the job.
 * Host-only values count only under a key that says registry or hub (a bare `docker.io` is too
 * often something else, like the server of a pull secret).
 */
export function prefixWrites(top: Obj, reference: string, target: Target, knobs: readonly ValuesKnob[] = []): OverlayWrite[] {
  // Image-shaped values are handled in their own shape (writesFor), never as a prefix.
  const inKnob = (segments: PathSegment[]): boolean => knobs.some((k) => k.segments.length <= segments.length && k.segments.every((s, i) => s === segments[i]));
  const ref = parseReference(reference);
  const name = formatName(ref);
  const out: OverlayWrite[] = [];
  const walk = (node: unknown, segments: PathSegment[], depth: number): void => {
    if (depth > MAX_DEPTH) return;
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, [...segments, i], depth + 1));
      return;
    }
    if (isObj(node)) {
      for (const [k, v] of Object.entries(node)) {
        // Below the top, `global` is the parent's global copied in: helm lets the parent's win.
        if (k === 'global' && depth > 0) continue;
        walk(v, [...segments, k], depth + 1);
      }
      return;
    }
    if (typeof node !== 'string' || inKnob(segments)) return;
    const text = node.trim().replace(/\/+$/, '');
    if (text === '' || text.includes('://') || /[\s@]/.test(text)) return;
    const key = String([...segments].reverse().find((s) => typeof s === 'string') ?? '');
    const hostOnly = !text.includes('/');
    if (hostOnly && !/registry|hub/i.test(key)) return;
    let probe: Reference;
    try {
      probe = parseReference(`${text}/airlock/probe`);
    } catch {
      return;
    }
    if (probe.tag !== 'latest' || probe.digest !== undefined) return;
    const prefix = formatName(probe).slice(0, -'/airlock/probe'.length);
    if (!name.startsWith(`${prefix}/`)) return;
    const mapped = formatName(mapReference(probe, target)).slice(0, -'/airlock/probe'.length);
    out.push({ segments, value: mapped, images: [formatReference(ref)] });
  };
  walk(top, [], 0);
  return out;
}
