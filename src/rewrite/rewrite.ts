// `airlock rewrite` as a library: a values overlay that sends every image a chart renders to the
// target registry through the chart's own knobs, proven by rendering again.
//
//  1. Render with the user's values; every image discovery finds (pod specs, CR fields, args, env,
//     ConfigMaps) at every place is one thing to redirect.
//  2. Render with global.imageRegistry set to a probe host: places whose image moves to the probe
//     honour it, and `global.imageRegistry: R/P` redirects them (when the path stays the same).
//  3. Every other image goes through the values entry discovery's values scan ties it to, written in
//     that entry's own shape (values-overlay.ts).
//  4. Render with the user's values plus the overlay and compare place by place with the one
//     mapping push uses. A value that sends an image anywhere else is dropped (the next way tried:
//     a hub or registry value in front of its name) and the render repeated; without
//     global.imageRegistry too, when that does better. What values cannot redirect is listed, for
//     the post-renderer.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Document, isMap, isScalar, isSeq } from 'yaml';
import { NotFoundError, UsageError, throwIfAborted } from '../core/errors.ts';
import { formatReference, parseReference } from '../core/reference.ts';
import { resolveChartValues } from '../discover/chart-values.ts';
import { loadChartTree } from '../discover/chart-tree.ts';
import { chartRenderOptions, displayPath, loadUserValues, renderChart, type ChartRenderOptions, type RenderInputOptions } from '../discover/sources.ts';
import type { ReasonSource } from '../discover/types.ts';
import type { PathSegment } from '../discover/values-path.ts';
import { isAtTarget } from './image-text.ts';
import { locateImages } from './locate.ts';
import { formatTarget, mapReference, parseTarget, type Target } from './mapping.ts';
import { describePath, knobsFor, prefixWrites, setOverlayValue, valuesKnobs, writesFor, type OverlayWrite, type WriteMode } from './values-overlay.ts';

type Obj = Record<string, unknown>;

export interface RewriteOptions extends Omit<RenderInputOptions, 'inputs' | 'kubectl'> {
  /** Chart directory or packaged .tgz. */
  chart: string;
  /** `R[/P]`: where `airlock push BUNDLE R[/P]` put the images. */
  registry: string | Target;
}

export type ImageStatus = 'redirected' | 'not-redirected' | 'misdirected';

export interface ImagePlace {
  resource: string;
  path: string;
  source: ReasonSource;
  status: ImageStatus;
  /** What the place points at after the overlay (when not where it should). */
  now?: string[];
}

export interface RewrittenImage {
  reference: string;
  /** Where push put it: mapReference(reference). */
  target: string;
  status: ImageStatus;
  /** How the overlay redirects it. */
  via: ('global.imageRegistry' | 'values')[];
  places: ImagePlace[];
}

/** A place values cannot redirect (or redirect rightly): the post-renderer's job. */
export interface NotRedirected {
  resource: string;
  path: string;
  source: ReasonSource;
  image: string;
  expected: string;
  status: Exclude<ImageStatus, 'redirected'>;
  now?: string[];
}

export interface OverlayValue {
  /** `--set` form: `db.image.registry`, `sidecars[1].image`. */
  path: string;
  value: unknown;
  images: string[];
}

export interface RewriteResult {
  chart: string;
  /** `R[/P]` */
  target: string;
  overlay: Obj;
  /** The overlay as YAML, with a header saying what it does and what it cannot. */
  overlayText: string;
  /** The chart honours global.imageRegistry and the overlay sets it. */
  globalImageRegistry: boolean;
  values: OverlayValue[];
  images: RewrittenImage[];
  notRedirected: NotRedirected[];
  warnings: string[];
}

// `.invalid` is reserved (RFC 2606): nothing can ever be pulled from the probe by accident.
const PROBE_REGISTRY = 'airlock-probe.invalid';
const INSECURE_IMAGES = /allowInsecureImages/;

interface Place {
  resource: string;
  path: string;
  source: ReasonSource;
  references: Set<string>;
}

type Render = Map<string, Place>;

function placeKey(resource: string, path: string): string {
  return `${resource}\u0000${path}`;
}

function overlayHeader(r: Omit<RewriteResult, 'overlayText'>, chartLabel: string): string[] {
  const lines = [
    `Written by airlock rewrite: sends every image chart ${chartLabel} renders to ${r.target}`,
    `(where \`airlock push BUNDLE ${r.target}\` puts them). Use it after your own values:`,
    `  helm install NAME ${chartLabel} -f <your values> -f THIS_FILE`,
    '--set flags win over -f files: do not --set the keys this file sets.',
  ];
  const redirected = r.images.filter((i) => i.status === 'redirected').length;
  lines.push(`Proven by rendering again: ${redirected} of ${r.images.length} image(s) point at ${r.target}.`);
  if (r.notRedirected.length > 0) {
    lines.push('Values cannot redirect these; add the post-renderer (airlock helm-plugin install, then', `helm install ... --post-renderer airlock-postrender --post-renderer-args --registry=${r.target}):`);
    for (const n of r.notRedirected) lines.push(`  ${n.resource} ${n.path}: ${n.image}${n.status === 'misdirected' ? ` (would point at ${n.now?.join(', ') ?? '?'})` : ''}`);
  }
  return lines;
}

/** Above each value the overlay sets: which images it redirects, and where to. */
function annotate(doc: Document, values: readonly { segments: PathSegment[]; images: string[] }[], target: Target): void {
  const done = new Set<string>();
  for (const v of values) {
    // registry and repository of one map: said once, above the first
    const key = JSON.stringify([v.segments.slice(0, -1), v.images]);
    if (v.images.length === 0 || done.has(key)) continue;
    done.add(key);
    const parent = v.segments.length === 1 ? doc.contents : doc.getIn(v.segments.slice(0, -1), true);
    const last = v.segments[v.segments.length - 1];
    let node: { commentBefore?: string | null } | undefined;
    if (isMap(parent)) node = parent.items.find((p) => isScalar(p.key) && p.key.value === last)?.key as { commentBefore?: string | null } | undefined;
    else if (isSeq(parent) && typeof last === 'number') node = parent.items[last] as { commentBefore?: string | null } | undefined;
    if (!node || typeof node !== 'object') continue;
    node.commentBefore = v.images.map((i) => ` ${i} -> ${formatReference(mapReference(parseReference(i), target))}`).join('\n');
  }
}

function overlayYaml(overlay: Obj, header: string[], values: readonly { segments: PathSegment[]; images: string[] }[] = [], target?: Target): string {
  if (Object.keys(overlay).length === 0) return `${header.map((l) => `# ${l}`).join('\n')}${header.length > 0 ? '\n' : ''}{}\n`;
  const doc = new Document(overlay);
  if (target) annotate(doc, values, target);
  if (header.length > 0) doc.commentBefore = header.map((l) => ` ${l}`).join('\n');
  return doc.toString({ lineWidth: 0 });
}

/** Write a values overlay that redirects every image of a chart to `registry`, and prove it by rendering. */
export async function rewriteChart(o: RewriteOptions): Promise<RewriteResult> {
  const cwd = o.cwd ?? process.cwd();
  const target = typeof o.registry === 'string' ? parseTarget(o.registry) : o.registry;
  const targetText = formatTarget(target);
  const chartPath = resolve(cwd, o.chart);
  const chartLabel = displayPath(chartPath, cwd);
  const warnings: string[] = [];
  const base: ChartRenderOptions = { ...chartRenderOptions(o, cwd), chartLabel };
  const namespace = o.namespace ?? 'default';
  let allowInsecure = false;

  const renderOnce = async (extraFiles: string[], extraSetString: string[]): Promise<Render> => {
    const { manifests, warnings: w } = await renderChart(chartPath, {
      ...base,
      valuesFiles: [...base.valuesFiles, ...extraFiles],
      set: [...base.set, ...(allowInsecure ? ['global.security.allowInsecureImages=true'] : [])],
      setString: [...base.setString, ...extraSetString],
    });
    warnings.push(...w);
    const places: Render = new Map();
    for (const m of manifests) {
      for (const l of locateImages(m.object, { namespace }).locations) {
        const key = placeKey(l.resource, l.path);
        const p = places.get(key) ?? { resource: l.resource, path: l.path, source: l.source, references: new Set<string>() };
        for (const r of l.references) p.references.add(r);
        places.set(key, p);
      }
    }
    return places;
  };
  // Charts built on the Bitnami common library refuse images other than their own unless told
  // global.security.allowInsecureImages; a different registry for the same image counts as other.
  const render = async (extraFiles: string[], extraSetString: string[]): Promise<Render> => {
    try {
      return await renderOnce(extraFiles, extraSetString);
    } catch (e) {
      if (allowInsecure || !INSECURE_IMAGES.test(String((e as Error).message))) throw e;
      allowInsecure = true;
      warnings.push('the chart refuses images from another registry unless global.security.allowInsecureImages is true: the overlay sets it (the images are the same, only their registry differs)');
      return renderOnce(extraFiles, extraSetString);
    }
  };

  throwIfAborted(o.signal);
  // Missing inputs are reported as such, before helm reports them as a failed render.
  try {
    await stat(chartPath);
  } catch {
    throw new NotFoundError(`chart ${o.chart} does not exist`, { code: 'CHART_NOT_FOUND', hint: 'pass a chart directory or a packaged .tgz' });
  }
  const user = await loadUserValues(o, cwd, 'rewrite');
  const original = await render([], []);
  const { chart: tree, warnings: loadWarnings } = await loadChartTree(chartPath);
  warnings.push(...loadWarnings);

  // (place, image) pairs still to redirect; images already at the target are left as they are.
  const pairs: { place: Place; image: string }[] = [];
  for (const place of original.values()) {
    for (const image of [...place.references].sort()) if (!isAtTarget(parseReference(image), target)) pairs.push({ place, image });
  }
  const imagesToRedirect = [...new Set(pairs.map((p) => p.image))].sort();

  // Probe: which places take their registry from global.imageRegistry?
  const honoured = new Map<string, string>(); // pair key → repository the probe render gave
  if (pairs.length > 0) {
    try {
      const probe = await render([], [`global.imageRegistry=${PROBE_REGISTRY}`]);
      for (const { place, image } of pairs) {
        const moved = [...(probe.get(placeKey(place.resource, place.path))?.references ?? [])].map(parseReference).filter((r) => r.registry === PROBE_REGISTRY);
        const ref = parseReference(image);
        const same = moved.find((m) => m.repository === ref.repository && m.tag === ref.tag && m.digest === ref.digest);
        const only = moved.length === 1 && place.references.size === 1 ? moved[0] : undefined;
        const hit = same ?? only;
        if (hit) honoured.set(`${placeKey(place.resource, place.path)}\u0000${image}`, hit.repository);
      }
    } catch (e) {
      warnings.push(`rendering with global.imageRegistry set failed, so it is not used (${String((e as Error).message).split('\n')[0]})`);
    }
  }

  const { top, charts } = resolveChartValues(tree, user);
  const knobs = valuesKnobs(charts);

  interface ImagePlan {
    honouredAll: boolean;
    honouredAny: boolean;
    repositoryOk: boolean;
  }
  const plans = new Map<string, ImagePlan>();
  for (const image of imagesToRedirect) {
    const ref = parseReference(image);
    const mine = pairs.filter((p) => p.image === image);
    const repos = mine.map((p) => honoured.get(`${placeKey(p.place.resource, p.place.path)}\u0000${image}`));
    plans.set(image, {
      honouredAll: repos.every((r) => r !== undefined),
      honouredAny: repos.some((r) => r !== undefined),
      repositoryOk: repos.every((r) => r === undefined || r === ref.repository),
    });
  }

  /** Writes through the image-shaped values discovery ties the image to; undefined when none can. */
  const knobWrites = (image: string, mode: WriteMode): OverlayWrite[] | undefined => {
    const all: OverlayWrite[] = [];
    let any = false;
    for (const k of knobsFor(image, knobs)) {
      const w = writesFor(k, top, image, target, mode);
      if (w === undefined) continue;
      any = true;
      all.push(...w);
    }
    return any ? all : undefined;
  };

  // global.imageRegistry is used when every image it moves lands right, or can be made to.
  const anyHonoured = [...plans.values()].some((p) => p.honouredAny);
  const feasible = [...plans.entries()].every(([image, p]) => !p.honouredAny || p.repositoryOk || knobWrites(image, 'repository') !== undefined);

  /**
   * The ways to redirect an image, best first: its image-shaped values, then a hub or registry
   * value the templates put in front of its name. A way that sends it elsewhere is dropped for the next.
   */
  const ways = (image: string, useGlobal: boolean): OverlayWrite[][] => {
    const p = plans.get(image)!;
    if (useGlobal && p.honouredAll) {
      if (p.repositoryOk) return [[]];
      const w = knobWrites(image, 'repository');
      return w ? [w] : [];
    }
    const out: OverlayWrite[][] = [];
    const own = knobWrites(image, 'full');
    if (own && own.length > 0) out.push(own);
    const prefixed = prefixWrites(top, image, target, knobs);
    if (prefixed.length > 0) out.push(prefixed);
    return out;
  };

  interface Plan {
    useGlobal: boolean;
    overlay: Obj;
    writes: OverlayWrite[];
    via: Map<string, Set<'global.imageRegistry' | 'values'>>;
  }
  const plan = (useGlobal: boolean, level: ReadonlyMap<string, number>): Plan => {
    const overlay: Obj = {};
    const writes: OverlayWrite[] = [];
    const via = new Map<string, Set<'global.imageRegistry' | 'values'>>();
    const how = (image: string, v: 'global.imageRegistry' | 'values'): void => {
      via.set(image, (via.get(image) ?? new Set()).add(v));
    };
    if (useGlobal) setOverlayValue(overlay, top, ['global', 'imageRegistry'], targetText);
    for (const [image, p] of plans) {
      if (useGlobal && p.honouredAny) how(image, 'global.imageRegistry');
      const w = ways(image, useGlobal)[level.get(image) ?? 0];
      if (w && w.length > 0) {
        how(image, 'values');
        writes.push(...w);
      }
    }
    // First write of a path wins: two images through one value cannot both be right anyway.
    const seen = new Map<string, OverlayWrite>();
    for (const w of writes) {
      const key = JSON.stringify(w.segments);
      const before = seen.get(key);
      if (before) {
        if (JSON.stringify(before.value) === JSON.stringify(w.value)) before.images.push(...w.images.filter((i) => !before.images.includes(i)));
        continue;
      }
      seen.set(key, { ...w, images: [...w.images] });
    }
    for (const w of seen.values()) setOverlayValue(overlay, top, w.segments, w.value);
    if (allowInsecure) setOverlayValue(overlay, top, ['global', 'security', 'allowInsecureImages'], true);
    return { useGlobal, overlay, writes: [...seen.values()], via };
  };

  /** Each (place, image): where the render with the overlay points it. */
  const statusOf = (after: Render, place: Place, image: string): { status: ImageStatus; now: Set<string>; expected: string } => {
    const now = after.get(placeKey(place.resource, place.path))?.references ?? new Set<string>();
    const expected = formatReference(mapReference(parseReference(image), target));
    if (now.has(expected)) return { status: 'redirected', now, expected };
    // Changed, but not to where push put it: worse than unchanged, since the post-renderer would
    // map the wrong name (or skip it as already in R).
    return { status: now.has(image) || now.size === 0 ? 'not-redirected' : 'misdirected', now, expected };
  };

  interface Attempt {
    plan: Plan;
    after: Render;
    misdirected: number;
    notRedirected: number;
  }
  const tmp = await mkdtemp(join(tmpdir(), 'airlock-rewrite-'));
  let renders = 0;
  /**
   * Render with a plan's overlay. An image a value sends somewhere other than where push put it
   * gets its next way (or none), or global.imageRegistry goes, and it renders again.
   */
  const attempt = async (startGlobal: boolean): Promise<Attempt> => {
    let useGlobal = startGlobal;
    const level = new Map<string, number>();
    let current = plan(useGlobal, level);
    for (let pass = 0; ; pass++) {
      throwIfAborted(o.signal);
      const file = join(tmp, `overlay-${renders++}.yaml`);
      await writeFile(file, overlayYaml(current.overlay, []));
      const insecureBefore = allowInsecure;
      const after = await render([file], []);
      // The render was repeated with allowInsecureImages set: the overlay gains that key.
      if (allowInsecure !== insecureBefore) current = plan(useGlobal, level);
      const misdirected = new Set<string>();
      const redirectedSomewhere = new Set<string>();
      let notRedirected = 0;
      for (const { place, image } of pairs) {
        const s = statusOf(after, place, image);
        if (s.status === 'misdirected') misdirected.add(image);
        if (s.status === 'not-redirected') notRedirected++;
        if (s.status === 'redirected') redirectedSomewhere.add(image);
      }
      const done = { plan: current, after, misdirected: misdirected.size, notRedirected };
      // A way that sent an image elsewhere, or changed nothing at all, is replaced by the next one
      // (a value that does nothing for its image is not left in the overlay to change something else).
      const culprits = [...plans.keys()].filter((i) => current.writes.some((w) => w.images.includes(i)) && (misdirected.has(i) || !redirectedSomewhere.has(i)));
      if ((misdirected.size === 0 && culprits.length === 0) || pass >= 4) return done;
      if (culprits.length > 0) for (const c of culprits) level.set(c, (level.get(c) ?? 0) + 1);
      else if (useGlobal) useGlobal = false;
      else return done;
      current = plan(useGlobal, level);
    }
  };

  try {
    let chosen: Attempt = { plan: plan(false, new Map()), after: original, misdirected: 0, notRedirected: 0 };
    if (pairs.length > 0) {
      chosen = await attempt(anyHonoured && feasible);
      // global.imageRegistry left places behind: see whether values alone do better.
      if (chosen.plan.useGlobal && chosen.misdirected + chosen.notRedirected > 0) {
        const alone = await attempt(false);
        const worse = (a: Attempt, b: Attempt): boolean => a.misdirected > b.misdirected || (a.misdirected === b.misdirected && a.notRedirected > b.notRedirected);
        if (worse(chosen, alone)) chosen = alone;
      }
    }
    const current = chosen.plan;
    const after = chosen.after;
    const useGlobal = current.useGlobal;

    // The proof: every place compared with the one mapping.
    const images = new Map<string, RewrittenImage>();
    const notRedirected: NotRedirected[] = [];
    const rank: Record<ImageStatus, number> = { redirected: 0, 'not-redirected': 1, misdirected: 2 };
    for (const { place, image } of pairs) {
      const { status, now, expected } = statusOf(after, place, image);
      const entry = images.get(image) ?? { reference: image, target: expected, status: 'redirected' as ImageStatus, via: [...(current.via.get(image) ?? [])].sort(), places: [] };
      images.set(image, entry);
      const pl: ImagePlace = { resource: place.resource, path: place.path, source: place.source, status };
      if (status !== 'redirected') {
        const others = [...now].filter((r) => r !== expected).sort();
        if (status === 'misdirected') pl.now = others;
        notRedirected.push({ resource: place.resource, path: place.path, source: place.source, image, expected, status, ...(status === 'misdirected' ? { now: others } : {}) });
      }
      entry.places.push(pl);
      if (rank[status] > rank[entry.status]) entry.status = status;
    }
    // Anything the overlay render pulls from elsewhere that the first render did not have.
    const known = new Set(pairs.map((p) => placeKey(p.place.resource, p.place.path)));
    for (const place of after.values()) {
      if (known.has(placeKey(place.resource, place.path))) continue;
      for (const image of place.references) {
        if (isAtTarget(parseReference(image), target)) continue;
        const expected = formatReference(mapReference(parseReference(image), target));
        notRedirected.push({ resource: place.resource, path: place.path, source: place.source, image, expected, status: 'not-redirected' });
      }
    }

    const values: OverlayValue[] = current.writes.map((w) => ({ path: describePath(w.segments), value: w.value, images: w.images }));
    if (useGlobal) values.unshift({ path: 'global.imageRegistry', value: targetText, images: [...current.via].filter(([, v]) => v.has('global.imageRegistry')).map(([i]) => i) });
    if (allowInsecure) values.push({ path: 'global.security.allowInsecureImages', value: true, images: [] });
    const result: Omit<RewriteResult, 'overlayText'> = {
      chart: chartLabel,
      target: targetText,
      overlay: current.overlay,
      globalImageRegistry: useGlobal,
      values,
      images: [...images.values()].sort((a, b) => (a.reference < b.reference ? -1 : 1)),
      notRedirected,
      warnings: [...new Set(warnings)],
    };
    const annotated = [...(useGlobal ? [{ segments: ['global', 'imageRegistry'], images: values[0]!.images }] : []), ...current.writes];
    return { ...result, overlayText: overlayYaml(current.overlay, overlayHeader(result, chartLabel), annotated, target) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
