// `airlock rewrite` as a library: a values overlay that sends every image a chart renders to the
// target registry through the chart's own values, proven by rendering again.
//
//  1. Render with the user's values; every image discovery finds (pod specs, CR fields, args, env,
//     ConfigMaps) at every place is one thing to redirect.
//  2. Render once more with every value that could be part of an image name marked, registry knobs
//     the values do not set included (value-probe.ts): each place then shows which values its image
//     is made of, whatever the template does with them. Values that go into no image are left alone.
//  3. Solve, by substitution into those traces, what each value must be for every image to render
//     where push put it, shared values agreeing (value-solve.ts).
//  4. Render with the user's values plus the overlay and compare place by place with the one
//     mapping push uses; a value that still sends an image elsewhere is dropped and the render
//     repeated. What no value goes into (hard-coded) is listed with its template and line, for the
//     post-renderer (--post-render-fallback: the helm command, proven by post-rendering).
//  When the probe cannot trace some image (a template that changes a marker), the older search is
//  the second opinion: global.imageRegistry probed alone, then the image-shaped values discovery's
//  values scan ties each image to, written in their own shape (values-overlay.ts); the better
//  overlay wins.
//  With includeOptional every render is also made with the switches discover turns on (optional.ts),
//  each beside the user's values: what components switched off by default render is solved for and
//  proven too, and said with the switch that brings it in.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Document, isMap, isScalar, isSeq, stringify } from 'yaml';
import { AirlockError, NotFoundError, throwIfAborted } from '../core/errors.ts';
import { formatReference, parseReference } from '../core/reference.ts';
import { resolveChartValues } from '../discover/chart-values.ts';
import { loadChartTree } from '../discover/chart-tree.ts';
import { chartRenderOptions, displayPath, helmFailureReason, loadUserValues, renderChart, renderChartWith, type ChartRenderOptions, type RenderInputOptions } from '../discover/sources.ts';
import type { Manifest, OptionalInfo, ReasonSource } from '../discover/types.ts';
import type { PathSegment } from '../discover/values-path.ts';
import { isAtTarget, targetOf } from './image-text.ts';
import { locateImages } from './locate.ts';
import { formatTarget, parseTarget, type Target } from './mapping.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { describePath, knobsFor, prefixWrites, setOverlayValue, valuesKnobs, writesFor, type OverlayWrite, type ValuesKnob, type WriteMode } from './values-overlay.ts';
import { digestWrites, probeLeaves, probeOverlay, traceOf, type ProbeLeaf, type Trace } from './value-probe.ts';
import { solvePairs, type TracedPair } from './value-solve.ts';
import { templateLines } from './template-line.ts';
import { helmInstallCommand, shellLine } from './helm-command.ts';
import { postRender } from './post-render.ts';
import type { PathSegment as Segment } from '../discover/values-path.ts';
import { optionalAttribution, optionalRenders, type OptionalRenders } from './optional.ts';
import { refusedSwitches } from '../discover/switched-render.ts';
import { optionalSwitches } from '../discover/switches.ts';

type Obj = Record<string, unknown>;

export interface RewriteOptions extends Omit<RenderInputOptions, 'inputs' | 'kubectl'> {
  /** Chart directory or packaged .tgz. */
  chart: string;
  /** `R[/P]`: where `airlock push BUNDLE R[/P]` put the images. */
  registry: string | Target;
  /**
   * Finish with airlock's post-renderer what values cannot move: the result carries the exact helm
   * command, and the post-renderer is run over the overlay's render to prove nothing is left.
   */
  postRenderFallback?: boolean;
  /** The overlay's file name in that command (default `overlay.yaml`). */
  overlayFile?: string;
  /**
   * Redirect the images of components switched off by default too (an exporter under
   * `metrics.enabled: false`, a subchart under its condition): the chart is rendered again with its
   * switches on, as `discover --include-optional` does, and the proof renders both ways.
   */
  includeOptional?: boolean;
}

export interface PostRenderFallback {
  /** `helm install RELEASE CHART ... -f OVERLAY --post-renderer airlock-postrender ...` as argv. */
  command: string[];
  /** The same as one shell line. */
  commandLine: string;
  /** Places the post-renderer maps (run over the overlay's render). */
  mapped: number;
  /** What would still point outside R[/P] after both: empty when the proof holds. */
  remaining: { resource: string; path: string; image: string }[];
}

export type ImageStatus = 'redirected' | 'not-redirected' | 'misdirected';

export interface ImagePlace {
  resource: string;
  path: string;
  source: ReasonSource;
  status: ImageStatus;
  /** What the place points at after the overlay (when not where it should). */
  now?: string[];
  /** Seen in the render with these switches on (includeOptional), not with the values given. */
  switches?: string[];
}

export interface RewrittenImage {
  reference: string;
  /** Where push put it: mapReference(reference). */
  target: string;
  status: ImageStatus;
  /** How the overlay redirects it. */
  via: ('global.imageRegistry' | 'values')[];
  places: ImagePlace[];
  /** Only renders with switches on use it (includeOptional): the values key that switches it on. */
  optional?: OptionalInfo;
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
  /** The template that rendered the place (`shop/templates/job.yaml`), from helm's `# Source:`. */
  template?: string;
  /** The line of that template where the image is written, when it is written there (hard-coded). */
  line?: number;
  /** Seen in the render with these switches on (includeOptional). */
  switches?: string[];
  /** The image is one only renders with switches on use: the values key that switches it on. */
  optional?: OptionalInfo;
}

/** What includeOptional covered: the renders with switches on, and the images only they use. */
export interface OptionalCoverage {
  /** The switches (values paths) on in each render the proof ran with besides the user's values. */
  renders: string[][];
  /** Switches helm would not render even alone: images behind them are not covered. */
  failed: { switch: string; reason: string }[];
  /** Images only renders with switches on use, now pointing where push put them, with the values key that switches each on ('' when not known) and every key it needs. */
  moved: { reference: string; target: string; switch: string; switches: string[] }[];
  /** Such images values could not redirect (the post-renderer's job), with the same keys. */
  left: { reference: string; switch: string; switches: string[]; hint: string }[];
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
  /** With postRenderFallback: the helm command and the proof that values plus post-renderer leave nothing. */
  postRender?: PostRenderFallback;
  /** With includeOptional: the images of components switched off by default. */
  optional?: OptionalCoverage;
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
  /** The template, from helm's `# Source:` comment. */
  origin?: string;
  /** 1.. for a render with switches on (includeOptional); absent for the user's values alone. */
  scenario?: number;
  /** The switches on in that render. */
  on?: string[];
  /** A place of a switched render that names what the same place of the user's render names: nothing more to redirect. */
  same?: boolean;
}

/**
 * Places of one render (with includeOptional: of the user's values and of each render with switches
 * on, side by side), and the manifests they came from (for the post-renderer's proof).
 */
type Render = Map<string, Place> & {
  manifests?: readonly Manifest[];
  switched?: { on: string[]; manifests: readonly Manifest[] }[];
  /** Renders with switches on that helm refused with this render's extra values (the user's render never is). */
  failed?: { on: string[]; reason: string }[];
};

/** Where `airlock push` puts an image: the one mapping. */
function pushedAs(image: string, target: Target): string {
  return formatReference(targetOf(parseReference(image), target));
}

function placeKey(resource: string, path: string, scenario?: number): string {
  return scenario ? `${resource}\u0000${path}\u0000${scenario}` : `${resource}\u0000${path}`;
}

/** The key of a place in its render (a switched render's places apart from the user's). */
function keyOf(place: Place): string {
  return placeKey(place.resource, place.path, place.scenario);
}

function overlayHeader(r: Omit<RewriteResult, 'overlayText'>, chartLabel: string): string[] {
  const lines = [
    `Written by airlock rewrite: sends every image chart ${chartLabel} renders to ${r.target}`,
    `(where \`airlock push BUNDLE ${r.target}\` puts them). Use it after your own values:`,
    `  helm install NAME ${chartLabel} -f <your values> -f THIS_FILE`,
    '--set flags win over -f files: do not --set the keys this file sets.',
  ];
  const redirected = r.images.filter((i) => i.status === 'redirected').length;
  lines.push(`Proven by rendering again: ${redirected} of ${r.images.length} image${r.images.length === 1 ? '' : 's'} point at ${r.target}.`);
  if (r.optional) {
    const moved = r.optional.moved.length;
    const all = moved + r.optional.left.length;
    const on = [...new Set(r.optional.renders.flat())];
    lines.push(
      all === 0
        ? 'Components switched off by default bring no other image in (rendered with their switches on too).'
        : `Of those, ${moved} of ${all} belong to components switched off by default (${on.slice(0, 6).join(', ')}${on.length > 6 ? ', ...' : ''}): proven with them switched on.`,
    );
  }
  if (r.postRender) {
    lines.push('Install with (the post-renderer moves what values cannot; `airlock helm-plugin install` first):', `  ${r.postRender.commandLine}`);
  }
  if (r.notRedirected.length > 0) {
    if (r.postRender) lines.push('Values cannot redirect these; the post-renderer in that command does:');
    else lines.push('Values cannot redirect these; add the post-renderer (airlock helm-plugin install, then', `helm install ... --post-renderer airlock-postrender --post-renderer-args --registry=${r.target}):`);
    for (const n of r.notRedirected) lines.push(`  ${n.resource} ${n.path}: ${n.image}${n.status === 'misdirected' ? ` (would point at ${n.now?.join(', ') ?? '?'})` : ''}${n.template ? ` [${n.template}${n.line ? `:${n.line}` : ''}]` : ''}${n.optional?.valuesPath ? ` (with ${n.optional.valuesPath} on)` : ''}`);
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
    node.commentBefore = v.images.map((i) => ` ${i} -> ${pushedAs(i, target)}`).join('\n');
  }
}

function overlayYaml(overlay: Obj, header: string[], values: readonly { segments: PathSegment[]; images: string[] }[] = [], target?: Target): string {
  if (Object.keys(overlay).length === 0) return `${header.map((l) => `# ${l}`).join('\n')}${header.length > 0 ? '\n' : ''}{}\n`;
  const doc = new Document(overlay);
  if (target) annotate(doc, values, target);
  if (header.length > 0) doc.commentBefore = header.map((l) => ` ${l}`).join('\n');
  return doc.toString({ lineWidth: 0 });
}

/** One image at one place of the first render, not yet at the target. */
interface Pair {
  place: Place;
  image: string;
}

/** What the probe render says about an image, over all its places. */
interface ImagePlan {
  honouredAll: boolean;
  honouredAny: boolean;
  repositoryOk: boolean;
}

/** The chart's computed values and the images in them, and where the images go. */
interface ValuesContext {
  top: Obj;
  knobs: ValuesKnob[];
  target: Target;
  targetText: string;
}

type Via = 'global.imageRegistry' | 'values';

interface OverlayPlan {
  useGlobal: boolean;
  overlay: Obj;
  writes: OverlayWrite[];
  via: Map<string, Set<Via>>;
}

interface Attempt {
  plan: OverlayPlan;
  after: Render;
  misdirected: number;
  notRedirected: number;
  /** Every place left behind names an image no value goes into (hard-coded): no other search can do better. */
  settled?: boolean;
}

/** What every attempt at an overlay works from. */
interface OverlaySearch {
  renderer: ChartRenderer;
  /** Writes an overlay to a new file for helm's --values; resolves to its path. */
  writeOverlay: (overlay: Obj) => Promise<string>;
  pairs: readonly Pair[];
  plans: ReadonlyMap<string, ImagePlan>;
  values: ValuesContext;
  signal: AbortSignal | undefined;
}

/** Write a values overlay that redirects every image of a chart to `registry`, and prove it by rendering. */
export async function rewriteChart(o: RewriteOptions): Promise<RewriteResult> {
  const cwd = o.cwd ?? process.cwd();
  const target = typeof o.registry === 'string' ? parseTarget(o.registry) : o.registry;
  const targetText = formatTarget(target);
  const chartPath = resolve(cwd, o.chart);
  const chartLabel = displayPath(chartPath, cwd);
  const warnings: string[] = [];
  const renderer = new ChartRenderer(chartPath, { ...chartRenderOptions(o, cwd), chartLabel }, o.namespace ?? 'default', warnings);

  throwIfAborted(o.signal);
  await requireChart(chartPath, o.chart);
  const user = await loadUserValues(o, cwd, 'rewrite');
  let original = await renderer.render([], []);
  const { chart: tree, warnings: loadWarnings } = await loadChartTree(chartPath);
  warnings.push(...loadWarnings);

  const { top, charts } = resolveChartValues(tree, user);
  const values: ValuesContext = { top, knobs: valuesKnobs(charts), target, targetText };

  const tmp = await mkdtemp(join(tmpdir(), 'airlock-rewrite-'));
  try {
    // includeOptional: discover's renders with the switches on, rendered from now on beside the
    // user's values (the overlay solved for, and proven on, both).
    let optional: OptionalRenders | undefined;
    if (o.includeOptional) {
      optional = await optionalRenders(chartPath, { ...chartRenderOptions(o, cwd), chartLabel }, top, charts, tmp);
      if (optional.failed.length > 0) warnings.push(failedSwitchesWarning(optional.failed));
      if (optional.scenarios.length > 0) {
        renderer.scenarios = optional.scenarios;
        original = await renderer.render([], []);
      }
    }
    const pairs = pairsToRedirect(original, target);
    const writeOverlay = overlayFileWriter(tmp);
    // values of subcharts switched off are probed too when their switches are on in some render
    const prefixes = charts.filter((c) => c.enabled || (optional?.scenarios.length ?? 0) > 0).map((c) => c.prefix as Segment[]);
    const probed = await probedOverlay({ renderer, writeOverlay, pairs, values, signal: o.signal }, prefixes);
    let chosen: Attempt;
    if (probed && (probed.misdirected + probed.notRedirected === 0 || probed.settled)) chosen = probed;
    else {
      // The probe is the general way; the older search by image-shaped values (global.imageRegistry
      // probed alone, then each image's values in their shape) is the second opinion for what the
      // probe could not trace: a marker a template changed, a probe render that failed.
      const plans = planImages(pairs, await probeGlobalRegistry(renderer, pairs, warnings));
      const search: OverlaySearch = { renderer, writeOverlay, pairs, plans, values, signal: o.signal };
      chosen = better(probed, await chooseOverlay(search, original, globalImageRegistryFirst(plans, values)));
    }
    const attribution =
      optional && optional.scenarios.length > 0
        ? optionalAttribution(tree.name, o.namespace ?? 'default', original.manifests ?? [], (original.switched ?? []).map((r, i) => ({ dotted: optional.scenarios[i]!.dotted, manifests: r.manifests })), charts, o.kubeVersion, optional.parsed)
        : new Map<string, OptionalInfo>();
    const proof = proveRedirects(pairs, chosen, target, attribution);
    await templateLines(chartPath, proof.notRedirected);
    for (const f of chosen.after.failed ?? []) {
      warnings.push(`with ${f.on.join(', ')} switched on, helm refuses the overlay, so images there are not proven (${f.reason})`);
    }
    const fallback = o.postRenderFallback ? postRenderFallback(o, chosen.after, target, proof.notRedirected.length > 0) : undefined;
    const coverage = optional ? optionalCoverage(optional, proof) : undefined;
    return rewriteResult(chartLabel, values, chosen.plan, proof, renderer.allowInsecure, warnings, fallback, coverage);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function failedSwitchesWarning(failed: readonly { switch: string; reason: string }[]): string {
  return `${refusedSwitches(failed.map((f) => ({ path: f.switch, reason: f.reason })))}: the overlay does not cover images behind ${failed.length > 1 ? 'them' : 'it'}`;
}

/** What includeOptional covered: images only switched renders use, moved or left (with the switch that brings each in). */
function optionalCoverage(optional: OptionalRenders, proof: { images: RewrittenImage[]; notRedirected: NotRedirected[] }): OptionalCoverage {
  const moved: OptionalCoverage['moved'] = [];
  const left: OptionalCoverage['left'] = [];
  for (const i of proof.images) {
    if (!i.optional) continue;
    const keys = { switch: i.optional.valuesPath, switches: optionalSwitches(i.optional) };
    if (i.status === 'redirected') moved.push({ reference: i.reference, target: i.target, ...keys });
    else left.push({ reference: i.reference, ...keys, hint: i.optional.hint });
  }
  // new places of a switched render the first one did not have (a value that brings one in)
  for (const n of proof.notRedirected) {
    if (n.optional && !left.some((l) => l.reference === n.image)) {
      left.push({ reference: n.image, switch: n.optional.valuesPath, switches: optionalSwitches(n.optional), hint: n.optional.hint });
    }
  }
  return { renders: optional.scenarios.map((s) => s.on), failed: optional.failed, moved, left };
}

/** Missing inputs are reported as such, before helm reports them as a failed render. */
async function requireChart(chartPath: string, chart: string): Promise<void> {
  try {
    await stat(chartPath);
  } catch {
    throw new NotFoundError(`chart ${chart} does not exist`, { code: 'CHART_NOT_FOUND', hint: 'pass a chart directory or a packaged .tgz' });
  }
}

/**
 * helm template with the user's inputs plus extra values files and --set-string flags, as the
 * images found at each place. Charts built on the Bitnami common library refuse images other than
 * their own unless told global.security.allowInsecureImages; a different registry for the same
 * image counts as other. Once one render needs it, every later one sets it too.
 */
class ChartRenderer {
  readonly #chartPath: string;
  readonly #base: ChartRenderOptions;
  readonly #namespace: string;
  readonly #warnings: string[];
  #allowInsecure = false;
  /** includeOptional: values files that turn switches on, each rendered beside the user's values. */
  #scenarios: { file: string; on: string[] }[] = [];

  constructor(chartPath: string, base: ChartRenderOptions, namespace: string, warnings: string[]) {
    this.#chartPath = chartPath;
    this.#base = base;
    this.#namespace = namespace;
    this.#warnings = warnings;
  }

  /** Where renders (and the search around them) say what went wrong without failing. */
  get warnings(): string[] {
    return this.#warnings;
  }

  /** The chart needed global.security.allowInsecureImages, so the overlay sets it. */
  get allowInsecure(): boolean {
    return this.#allowInsecure;
  }

  /** From now on every render is also made with each of these switch files (and its overlay). */
  set scenarios(s: { file: string; on: string[] }[]) {
    this.#scenarios = s;
  }

  async render(extraFiles: string[], extraSetString: string[]): Promise<Render> {
    try {
      return await this.#renderOnce(extraFiles, extraSetString);
    } catch (e) {
      if (this.#allowInsecure || !INSECURE_IMAGES.test(String((e as Error).message))) throw e;
      this.#allowInsecure = true;
      this.#warnings.push('the chart refuses images from another registry unless global.security.allowInsecureImages is true: the overlay sets it (the images are the same, only their registry differs)');
      return this.#renderOnce(extraFiles, extraSetString);
    }
  }

  async #renderOnce(extraFiles: string[], extraSetString: string[]): Promise<Render> {
    const base = this.#base;
    const { manifests, warnings } = await renderChart(this.#chartPath, {
      ...base,
      valuesFiles: [...base.valuesFiles, ...extraFiles],
      set: [...base.set, ...(this.#allowInsecure ? ['global.security.allowInsecureImages=true'] : [])],
      setString: [...base.setString, ...extraSetString],
    });
    this.#warnings.push(...warnings);
    const places: Render = placesOf(manifests, this.#namespace);
    places.manifests = manifests;
    if (this.#scenarios.length > 0) await this.#renderSwitched(places, extraFiles, extraSetString);
    return places;
  }

  /**
   * The same render with each scenario's switches on, its places added apart (a place that names
   * what the user's render names there is marked `same`). A scenario helm refuses is recorded, not
   * thrown: the user's render must never fail for a component that is off.
   */
  async #renderSwitched(places: Render, extraFiles: string[], extraSetString: string[]): Promise<void> {
    const base = this.#base;
    places.switched = [];
    places.failed = [];
    const o: ChartRenderOptions = {
      ...base,
      set: [...base.set, ...(this.#allowInsecure ? ['global.security.allowInsecureImages=true'] : [])],
      setString: [...base.setString, ...extraSetString],
    };
    const renders = await Promise.allSettled(this.#scenarios.map((sc) => renderChartWith(this.#chartPath, o, [sc.file, ...extraFiles])));
    renders.forEach((r, i) => {
      const sc = this.#scenarios[i]!;
      if (r.status === 'rejected') {
        const e = r.reason as unknown;
        // allowInsecureImages is learnt from any render; anything but a refusal by helm is thrown
        if (!(e instanceof AirlockError) || (e.code !== 'HELM_FAILED' && e.code !== 'YAML_INVALID') || base.signal?.aborted) throw e;
        if (!this.#allowInsecure && INSECURE_IMAGES.test(String(e.message))) throw e;
        places.failed!.push({ on: sc.on, reason: helmFailureReason(e) });
        return;
      }
      places.switched!.push({ on: sc.on, manifests: r.value });
      for (const p of placesOf(r.value, this.#namespace).values()) {
        const own = places.get(keyOf(p));
        const same = own !== undefined && own.references.size === p.references.size && [...p.references].every((x) => own.references.has(x));
        const q: Place = { ...p, scenario: i + 1, on: sc.on, ...(same ? { same } : {}) };
        places.set(keyOf(q), q);
      }
    });
  }
}

/** Every place of the rendered manifests that holds images, with the images there. */
function placesOf(manifests: readonly { object: unknown; origin?: string | undefined }[], namespace: string): Render {
  const places: Render = new Map();
  for (const m of manifests) {
    for (const l of locateImages(m.object, { namespace }).locations) {
      const key = placeKey(l.resource, l.path);
      const p = places.get(key) ?? { resource: l.resource, path: l.path, source: l.source, references: new Set<string>(), ...(m.origin ? { origin: m.origin } : {}) };
      for (const r of l.references) p.references.add(r);
      places.set(key, p);
    }
  }
  return places;
}

/** (place, image) pairs still to redirect; images already at the target are left as they are. */
function pairsToRedirect(original: Render, target: Target): Pair[] {
  const pairs: Pair[] = [];
  for (const place of original.values()) {
    // a switched render's place that names what the user's render names there adds nothing to redirect
    if (place.same) continue;
    for (const image of [...place.references].sort()) if (!isAtTarget(parseReference(image), target)) pairs.push({ place, image });
  }
  return pairs;
}

function pairKey(place: Place, image: string): string {
  return `${keyOf(place)}\u0000${image}`;
}

/**
 * Which places take their registry from global.imageRegistry: rendered with it set to a probe
 * host, pair key → the repository the place then names.
 */
async function probeGlobalRegistry(renderer: ChartRenderer, pairs: readonly Pair[], warnings: string[]): Promise<Map<string, string>> {
  const honoured = new Map<string, string>();
  if (pairs.length === 0) return honoured;
  try {
    const probe = await renderer.render([], [`global.imageRegistry=${PROBE_REGISTRY}`]);
    for (const { place, image } of pairs) {
      const moved = [...(probe.get(keyOf(place))?.references ?? [])].map(parseReference).filter((r) => r.registry === PROBE_REGISTRY);
      const ref = parseReference(image);
      const same = moved.find((m) => m.repository === ref.repository && m.tag === ref.tag && m.digest === ref.digest);
      const only = moved.length === 1 && place.references.size === 1 ? moved[0] : undefined;
      const hit = same ?? only;
      if (hit) honoured.set(pairKey(place, image), hit.repository);
    }
  } catch (e) {
    warnings.push(`rendering with global.imageRegistry set failed, so it is not used (${String((e as Error).message).split('\n')[0]})`);
  }
  return honoured;
}

/** Per image (sorted): whether global.imageRegistry moves all, some of its places, and keeps its repository. */
function planImages(pairs: readonly Pair[], honoured: ReadonlyMap<string, string>): Map<string, ImagePlan> {
  const plans = new Map<string, ImagePlan>();
  for (const image of [...new Set(pairs.map((p) => p.image))].sort()) {
    const ref = parseReference(image);
    const repos = pairs.filter((p) => p.image === image).map((p) => honoured.get(pairKey(p.place, image)));
    plans.set(image, {
      honouredAll: repos.every((r) => r !== undefined),
      honouredAny: repos.some((r) => r !== undefined),
      repositoryOk: repos.every((r) => r === undefined || r === ref.repository),
    });
  }
  return plans;
}

/** global.imageRegistry is tried first when it moves some image and every image it moves lands right, or can be made to. */
function globalImageRegistryFirst(plans: ReadonlyMap<string, ImagePlan>, values: ValuesContext): boolean {
  // One global registry cannot put each image under its own source host: each image's values do.
  if (values.target.keepHost === true) return false;
  const anyHonoured = [...plans.values()].some((p) => p.honouredAny);
  const feasible = [...plans.entries()].every(([image, p]) => !p.honouredAny || p.repositoryOk || knobWrites(values, image, 'repository') !== undefined);
  return anyHonoured && feasible;
}

/** Writes through the image-shaped values discovery ties the image to; undefined when none can. */
function knobWrites(values: ValuesContext, image: string, mode: WriteMode): OverlayWrite[] | undefined {
  const all: OverlayWrite[] = [];
  let any = false;
  for (const k of knobsFor(image, values.knobs)) {
    const w = writesFor(k, values.top, image, values.target, mode);
    if (w === undefined) continue;
    any = true;
    all.push(...w);
  }
  return any ? all : undefined;
}

function digestMapped(image: string, target: Target): boolean {
  const digest = parseReference(image).digest;
  return digest !== undefined && target.digests?.has(digest) === true;
}

/**
 * The ways to redirect an image, best first: its image-shaped values, then a hub or registry
 * value the templates put in front of its name. A way that sends it elsewhere is dropped for the next.
 */
function waysToRedirect(values: ValuesContext, p: ImagePlan, image: string, useGlobal: boolean): OverlayWrite[][] {
  if (useGlobal && p.honouredAll) {
    // A pinned digest the target holds another index for is the values' to change, whatever the registry.
    if (p.repositoryOk && !digestMapped(image, values.target)) return [[]];
    const w = knobWrites(values, image, 'repository');
    return w ? [w] : [];
  }
  const out: OverlayWrite[][] = [];
  const own = knobWrites(values, image, 'full');
  if (own && own.length > 0) out.push(own);
  const prefixed = prefixWrites(values.top, image, values.target, values.knobs);
  if (prefixed.length > 0) out.push(prefixed);
  return out;
}

/** The overlay for a choice: with global.imageRegistry or not, and for each image the how-manieth way. */
function planOverlay(values: ValuesContext, plans: ReadonlyMap<string, ImagePlan>, useGlobal: boolean, level: ReadonlyMap<string, number>, allowInsecure: boolean): OverlayPlan {
  const overlay: Obj = {};
  const writes: OverlayWrite[] = [];
  const via = new Map<string, Set<Via>>();
  const how = (image: string, v: Via): void => {
    via.set(image, (via.get(image) ?? new Set()).add(v));
  };
  if (useGlobal) setOverlayValue(overlay, values.top, ['global', 'imageRegistry'], values.targetText);
  for (const [image, p] of plans) {
    if (useGlobal && p.honouredAny) how(image, 'global.imageRegistry');
    const w = waysToRedirect(values, p, image, useGlobal)[level.get(image) ?? 0];
    if (w && w.length > 0) {
      how(image, 'values');
      writes.push(...w);
    }
  }
  const kept = firstWriteOfEachPath(writes);
  for (const w of kept) setOverlayValue(overlay, values.top, w.segments, w.value);
  if (allowInsecure) setOverlayValue(overlay, values.top, ['global', 'security', 'allowInsecureImages'], true);
  return { useGlobal, overlay, writes: kept, via };
}

/** First write of a path wins: two images through one value cannot both be right anyway. */
function firstWriteOfEachPath(writes: readonly OverlayWrite[]): OverlayWrite[] {
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
  return [...seen.values()];
}

/** Where a render with the overlay points one (place, image). */
function statusOf(after: Render, place: Place, image: string, target: Target): { status: ImageStatus; now: Set<string>; expected: string } {
  const now = after.get(keyOf(place))?.references ?? new Set<string>();
  const expected = pushedAs(image, target);
  if (now.has(expected)) return { status: 'redirected', now, expected };
  // Changed, but not to where push put it: worse than unchanged, since the post-renderer would
  // map the wrong name (or skip it as already in R).
  return { status: now.has(image) || now.size === 0 ? 'not-redirected' : 'misdirected', now, expected };
}

/**
 * The overlay to keep: global.imageRegistry first when it can work, and when it leaves places
 * behind, values alone if they do better.
 */
async function chooseOverlay(s: OverlaySearch, original: Render, globalFirst: boolean): Promise<Attempt> {
  if (s.pairs.length === 0) return { plan: planOverlay(s.values, s.plans, false, new Map(), s.renderer.allowInsecure), after: original, misdirected: 0, notRedirected: 0 };
  const chosen = await attemptOverlay(s, globalFirst);
  if (!chosen.plan.useGlobal || chosen.misdirected + chosen.notRedirected === 0) return chosen;
  const alone = await attemptOverlay(s, false);
  const worse = (a: Attempt, b: Attempt): boolean => a.misdirected > b.misdirected || (a.misdirected === b.misdirected && a.notRedirected > b.notRedirected);
  return worse(chosen, alone) ? alone : chosen;
}

/**
 * Render with a plan's overlay. An image a value sends somewhere other than where push put it
 * gets its next way (or none), or global.imageRegistry goes, and it renders again.
 */
async function attemptOverlay(s: OverlaySearch, startGlobal: boolean): Promise<Attempt> {
  let useGlobal = startGlobal;
  const level = new Map<string, number>();
  const plan = (): OverlayPlan => planOverlay(s.values, s.plans, useGlobal, level, s.renderer.allowInsecure);
  let current = plan();
  for (let pass = 0; ; pass++) {
    throwIfAborted(s.signal);
    const file = await s.writeOverlay(current.overlay);
    const insecureBefore = s.renderer.allowInsecure;
    const after = await s.renderer.render([file], []);
    // The render was repeated with allowInsecureImages set: the overlay gains that key.
    if (s.renderer.allowInsecure !== insecureBefore) current = plan();
    const { misdirected, redirectedSomewhere, notRedirected } = tallyStatuses(after, s.pairs, s.values.target);
    const done = { plan: current, after, misdirected: misdirected.size, notRedirected };
    // A way that sent an image elsewhere, or changed nothing at all, is replaced by the next one
    // (a value that does nothing for its image is not left in the overlay to change something else).
    const culprits = [...s.plans.keys()].filter((i) => current.writes.some((w) => w.images.includes(i)) && (misdirected.has(i) || !redirectedSomewhere.has(i)));
    if ((misdirected.size === 0 && culprits.length === 0) || pass >= 4) return done;
    if (culprits.length > 0) for (const c of culprits) level.set(c, (level.get(c) ?? 0) + 1);
    else if (useGlobal) useGlobal = false;
    else return done;
    current = plan();
  }
}

/** The helm command with the post-renderer, and the post-renderer run over the overlay's render: what is left. */
function postRenderFallback(o: RewriteOptions, after: Render, target: Target, needed: boolean): PostRenderFallback {
  const command = helmInstallCommand({
    chart: o.chart,
    valuesFiles: o.valuesFiles ?? [],
    overlayFile: o.overlayFile ?? 'overlay.yaml',
    set: o.set ?? [],
    setString: o.setString ?? [],
    namespace: o.namespace,
    target: formatTarget(target),
    postRenderer: needed,
    keepHost: target.keepHost,
  });
  // the user's render, and with includeOptional each render with switches on
  let mapped = 0;
  const remaining = new Map<string, PostRenderFallback['remaining'][number]>();
  for (const manifests of [after.manifests ?? [], ...(after.switched ?? []).map((r) => r.manifests)]) {
    const text = manifests.map((m) => stringify(m.object, { lineWidth: 0 })).join('---\n');
    const result = postRender(text, target, { namespace: o.namespace ?? 'default' });
    mapped += result.changed.length;
    for (const r of result.remaining) remaining.set(`${r.resource}\u0000${r.path}\u0000${r.image}`, { resource: r.resource, path: r.path, image: r.image });
  }
  return { command, commandLine: shellLine(command), mapped, remaining: [...remaining.values()] };
}

/** The attempt that leaves fewer places misdirected, then fewer not redirected; the first on a tie. */
function better(a: Attempt | undefined, b: Attempt): Attempt {
  if (!a) return b;
  if (a.misdirected !== b.misdirected) return a.misdirected < b.misdirected ? a : b;
  return b.notRedirected < a.notRedirected ? b : a;
}

/**
 * The overlay from one probe render (value-probe.ts) and the values solved from it
 * (value-solve.ts), rendered to check; a value that still sends an image elsewhere, and serves no
 * image it does redirect, is dropped and the render repeated. Undefined when the probe render fails.
 */
async function probedOverlay(s: Omit<OverlaySearch, 'plans'>, prefixes: readonly Segment[][]): Promise<Attempt | undefined> {
  const { top, target } = s.values;
  const images = [...new Set(s.pairs.map((p) => p.image))];
  if (images.length === 0) return undefined;
  const leaves = probeLeaves(top, images, prefixes);
  const probes = await probeRenders(s, leaves);
  if (probes.length === 0) return undefined;
  const traced: TracedPair[] = [];
  const hardCoded = new Set<string>();
  const known = new Set(s.pairs.map((p) => keyOf(p.place)));
  for (const { place, image } of s.pairs) {
    let trace: Trace | undefined;
    for (const probe of probes) {
      const at = probe.get(keyOf(place)) ?? renamedPlace(probe, place, known);
      const t = at ? traceOf(image, at.references, leaves) : undefined;
      // With the values probed in parts, the part where a value starts the name is the better model.
      if (t && (!trace || (t.leaves.length > 0 && (trace.leaves.length === 0 || (t.marked.startsWith(t.leaves[0]!.marker) && !trace.marked.startsWith(trace.leaves[0]!.marker)))))) trace = t;
    }
    if (trace) traced.push({ key: pairKey(place, image), image, trace });
    // Unchanged by the probe, though every candidate value was marked: written in a template.
    if (trace && trace.leaves.length === 0 && probes.length === 1) hardCoded.add(pairKey(place, image));
  }
  const digests = digestWrites(top, target);
  const solution = solvePairs(traced, target, new Map(digests.map((d) => [d.from, d.to])));
  const imageOf = new Map(s.pairs.map((p) => [pairKey(p.place, p.image), p.image]));
  const dropped = new Set<number>();
  for (let pass = 0; ; pass++) {
    throwIfAborted(s.signal);
    const plan = probePlan(s.values, leaves, solution.values, solution.uses, imageOf, dropped, digests, s.renderer.allowInsecure);
    const after = await s.renderer.render([await s.writeOverlay(plan.overlay)], []);
    const wrong = new Set<string>();
    let misdirected = 0;
    let notRedirected = 0;
    const used = new Map<number, boolean>();
    for (const { place, image } of s.pairs) {
      const status = statusOf(after, place, image, target).status;
      const ids = solution.uses.get(pairKey(place, image)) ?? [];
      if (status === 'misdirected') misdirected++;
      if (status === 'not-redirected') notRedirected++;
      if (status !== 'redirected') wrong.add(pairKey(place, image));
      for (const id of ids) used.set(id, (used.get(id) ?? false) || status === 'redirected');
    }
    const drop = [...used].filter(([id, good]) => !good && !dropped.has(id)).map(([id]) => id);
    if (misdirected === 0 || drop.length === 0 || pass >= 2) {
      const settled = misdirected === 0 && [...wrong].every((k) => hardCoded.has(k));
      return { plan, after, misdirected, notRedirected, settled };
    }
    for (const id of drop) dropped.add(id);
  }
}

/**
 * The probe render's place for `place` when a marked value renamed its resource (a component name
 * that is also an image's last path component): the one new place of the same kind, namespace, path
 * and template, if there is exactly one.
 */
function renamedPlace(probe: Render, place: Place, known: ReadonlySet<string>): Place | undefined {
  const [kind, namespace] = place.resource.split('/');
  const same = [...probe.values()].filter((p) => {
    const [k, ns] = p.resource.split('/');
    return !known.has(keyOf(p)) && p.scenario === place.scenario && k === kind && ns === namespace && p.path === place.path && p.origin === place.origin;
  });
  return same.length === 1 ? same[0] : undefined;
}

/**
 * The probe render, all candidate values marked at once; when a chart refuses that (a template that
 * checks a value, or reads a knob as a map), the registry-like values and the names are probed apart,
 * and a part that still fails is halved, within ten renders.
 * None when every probe render fails: the shape-based search is left to do what it can.
 */
async function probeRenders(s: Omit<OverlaySearch, 'plans'>, leaves: readonly ProbeLeaf[]): Promise<Render[]> {
  const { top } = s.values;
  const renderWith = async (subset: readonly ProbeLeaf[]): Promise<Render> =>
    s.renderer.render([await s.writeOverlay(probeOverlay(subset, (o, seg, v) => setOverlayValue(o, top, seg, v)))], []);
  const reason = (e: unknown): string => String((e as Error).message).split('\n').find((l) => /error/i.test(l))?.trim() ?? String((e as Error).message).split('\n')[0]!;
  try {
    return [await renderWith(leaves)];
  } catch (e) {
    const out: Render[] = [];
    const failed: string[] = [reason(e)];
    // Registries and names apart first; a part that still fails is halved, within a few renders.
    let budget = 10;
    const tryPart = async (part: readonly ProbeLeaf[]): Promise<void> => {
      if (part.length === 0 || budget <= 0) return;
      budget--;
      try {
        out.push(await renderWith(part));
      } catch (e2) {
        failed.push(reason(e2));
        if (part.length === 1) return;
        const half = Math.ceil(part.length / 2);
        await tryPart(part.slice(0, half));
        await tryPart(part.slice(half));
      }
    };
    await tryPart(leaves.filter((l) => l.registryLike));
    await tryPart(leaves.filter((l) => !l.registryLike));
    s.renderer.warnings.push(`the chart does not render with every image value marked at once${out.length > 0 ? ', so they were probed in parts' : ', so values were matched by their shape alone'} (${failed[0]})`);
    return out;
  }
}

/** The overlay plan for solved values: global.imageRegistry (when set to R/P) said apart, as the shape-based plans do. */
function probePlan(
  values: ValuesContext,
  leaves: readonly ProbeLeaf[],
  solved: ReadonlyMap<number, string>,
  uses: ReadonlyMap<string, number[]>,
  imageOf: ReadonlyMap<string, string>,
  dropped: ReadonlySet<number>,
  digests: readonly { segments: Segment[]; from: string; to: string }[],
  allowInsecure: boolean,
): OverlayPlan {
  const overlay: Obj = {};
  const writes: OverlayWrite[] = [];
  const via = new Map<string, Set<Via>>();
  const imagesOf = new Map<number, Set<string>>();
  for (const [key, ids] of uses) {
    const image = imageOf.get(key)!;
    for (const id of ids) imagesOf.set(id, (imagesOf.get(id) ?? new Set()).add(image));
  }
  let useGlobal = false;
  for (const [id, value] of [...solved].sort((a, b) => a[0] - b[0])) {
    if (dropped.has(id)) continue;
    const leaf = leaves[id]!;
    const images = [...(imagesOf.get(id) ?? [])].sort();
    const isGlobal = JSON.stringify(leaf.segments) === '["global","imageRegistry"]' && value === values.targetText;
    for (const image of images) via.set(image, (via.get(image) ?? new Set()).add(isGlobal ? 'global.imageRegistry' : 'values'));
    setOverlayValue(overlay, values.top, leaf.segments, value);
    if (isGlobal) useGlobal = true;
    else writes.push({ segments: leaf.segments, value, images });
  }
  for (const d of digests) {
    setOverlayValue(overlay, values.top, d.segments, d.to);
    writes.push({ segments: d.segments, value: d.to, images: [] });
  }
  if (allowInsecure) setOverlayValue(overlay, values.top, ['global', 'security', 'allowInsecureImages'], true);
  return { useGlobal, overlay, writes, via };
}

/** Each overlay render in a file of its own, for helm's --values. */
function overlayFileWriter(dir: string): (overlay: Obj) => Promise<string> {
  let renders = 0;
  return async (overlay) => {
    const file = join(dir, `overlay-${renders++}.yaml`);
    await writeFileAtomic(file, overlayYaml(overlay, []));
    return file;
  };
}

/** Images misdirected at some place, images redirected at some place, and places not redirected. */
function tallyStatuses(after: Render, pairs: readonly Pair[], target: Target): { misdirected: Set<string>; redirectedSomewhere: Set<string>; notRedirected: number } {
  const misdirected = new Set<string>();
  const redirectedSomewhere = new Set<string>();
  let notRedirected = 0;
  for (const { place, image } of pairs) {
    const s = statusOf(after, place, image, target);
    if (s.status === 'misdirected') misdirected.add(image);
    if (s.status === 'not-redirected') notRedirected++;
    if (s.status === 'redirected') redirectedSomewhere.add(image);
  }
  return { misdirected, redirectedSomewhere, notRedirected };
}

/** The proof: every place of the chosen render compared with the one mapping. */
function proveRedirects(pairs: readonly Pair[], chosen: Attempt, target: Target, attribution: ReadonlyMap<string, OptionalInfo> = new Map()): { images: RewrittenImage[]; notRedirected: NotRedirected[] } {
  const images = new Map<string, RewrittenImage>();
  const notRedirected: NotRedirected[] = [];
  const rank: Record<ImageStatus, number> = { redirected: 0, 'not-redirected': 1, misdirected: 2 };
  for (const { place, image } of pairs) {
    const { status, now, expected } = statusOf(chosen.after, place, image, target);
    const entry = images.get(image) ?? { reference: image, target: expected, status: 'redirected' as ImageStatus, via: [...(chosen.plan.via.get(image) ?? [])].sort(), places: [] };
    images.set(image, entry);
    const switches = place.on ? { switches: place.on } : {};
    const pl: ImagePlace = { resource: place.resource, path: place.path, source: place.source, status, ...switches };
    if (status !== 'redirected') {
      const others = [...now].filter((r) => r !== expected).sort();
      if (status === 'misdirected') pl.now = others;
      notRedirected.push({ resource: place.resource, path: place.path, source: place.source, image, expected, status, ...(status === 'misdirected' ? { now: others } : {}), ...(place.origin ? { template: place.origin } : {}), ...switches });
    }
    entry.places.push(pl);
    if (rank[status] > rank[entry.status]) entry.status = status;
  }
  // An image only switched renders use is optional: the switch that brings it in, as discover says it.
  for (const entry of images.values()) {
    const on = entry.places.find((p) => p.switches)?.switches;
    if (on && entry.places.every((p) => p.switches)) entry.optional = optionalInfo(attribution, entry.reference, on);
  }
  for (const n of notRedirected) {
    const o = images.get(n.image)?.optional;
    if (o) n.optional = o;
  }
  notRedirected.push(...newPlaces(pairs, chosen.after, target, attribution));
  return { images: [...images.values()].sort((a, b) => (a.reference < b.reference ? -1 : 1)), notRedirected };
}

function optionalInfo(attribution: ReadonlyMap<string, OptionalInfo>, reference: string, on: readonly string[]): OptionalInfo {
  return attribution.get(reference) ?? { valuesPath: '', hint: `rendered only with switches on (${on.slice(0, 3).join(', ')}${on.length > 3 ? ', ...' : ''}); which one brings it in is not known` };
}

/** Anything the overlay render pulls from elsewhere that the first render did not have. */
function newPlaces(pairs: readonly Pair[], after: Render, target: Target, attribution: ReadonlyMap<string, OptionalInfo>): NotRedirected[] {
  const out: NotRedirected[] = [];
  const known = new Set(pairs.map((p) => keyOf(p.place)));
  for (const place of after.values()) {
    // a switched render's place that names what the user's render names there is told by the user's
    if (known.has(keyOf(place)) || place.same) continue;
    for (const image of place.references) {
      if (isAtTarget(parseReference(image), target)) continue;
      const expected = pushedAs(image, target);
      const switched = place.on ? { switches: place.on, optional: optionalInfo(attribution, image, place.on) } : {};
      out.push({ resource: place.resource, path: place.path, source: place.source, image, expected, status: 'not-redirected', ...(place.origin ? { template: place.origin } : {}), ...switched });
    }
  }
  return out;
}

/** The values the overlay sets, global.imageRegistry first, each with the images it redirects. */
function overlayValues(plan: OverlayPlan, allowInsecure: boolean, targetText: string): OverlayValue[] {
  const values: OverlayValue[] = plan.writes.map((w) => ({ path: describePath(w.segments), value: w.value, images: w.images }));
  if (plan.useGlobal) values.unshift({ path: 'global.imageRegistry', value: targetText, images: [...plan.via].filter(([, v]) => v.has('global.imageRegistry')).map(([i]) => i) });
  if (allowInsecure) values.push({ path: 'global.security.allowInsecureImages', value: true, images: [] });
  return values;
}

/** The result, with the overlay as YAML: a header saying what it does and cannot, each value annotated. */
function rewriteResult(
  chartLabel: string,
  values: ValuesContext,
  plan: OverlayPlan,
  proof: { images: RewrittenImage[]; notRedirected: NotRedirected[] },
  allowInsecure: boolean,
  warnings: readonly string[],
  fallback?: PostRenderFallback,
  optional?: OptionalCoverage,
): RewriteResult {
  const set = overlayValues(plan, allowInsecure, values.targetText);
  const result: Omit<RewriteResult, 'overlayText'> = {
    chart: chartLabel,
    target: values.targetText,
    overlay: plan.overlay,
    globalImageRegistry: plan.useGlobal,
    values: set,
    images: proof.images,
    notRedirected: proof.notRedirected,
    ...(fallback ? { postRender: fallback } : {}),
    ...(optional ? { optional } : {}),
    warnings: [...new Set(warnings)],
  };
  const annotated = [...(plan.useGlobal ? [{ segments: ['global', 'imageRegistry'], images: set[0]!.images }] : []), ...plan.writes];
  return { ...result, overlayText: overlayYaml(plan.overlay, overlayHeader(result, chartLabel), annotated, values.target) };
}
