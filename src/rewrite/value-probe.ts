// Which values make which image (pure): every value that could be a piece of an image's name
// (a registry, a hub, a repository, a whole `repo[:tag]`, or a registry knob the chart may read
// but does not set, like `global.image.registry`) is given a marker in ONE probe render, and
// each rendered reference then says which values it is made of and in what order:
//   quay.io/app/admin:1.2   rendered as  p3.airlock-probe.invalid/app/admin:1.2
// means value 3 starts the name (its text with the host replaced by the marker). Nothing is
// guessed from key names alone: a value that does not move an image in the probe is not written.
import { formatName, formatReference, parseReference, splitReference, type Reference } from '../core/reference.ts';
import type { PathSegment } from '../discover/values-path.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// `.invalid` is reserved (RFC 2606): nothing can ever be pulled from a marker host by accident.
const MARKER_DOMAIN = 'airlock-probe.invalid';
const MAX_DEPTH = 48;
const REGISTRY_KEY = /registry|hub/i;
/** An empty value is a registry knob only under a key that ends so (`imageRegistry`, not `registryCredentialsSecret`). */
const EMPTY_REGISTRY_KEY = /(registry|hub)$/i;
const NAME_KEY = /image|repo|name/i;
/** Keys whose value names resources, not images: marking them would move every place. */
const NAMING_KEY = /^(fullname|name)Override$/i;

/** One value probed. */
export interface ProbeLeaf {
  id: number;
  segments: PathSegment[];
  /** The value as the computed values have it ('' for a knob the values do not set). */
  original: string;
  /** The value set in the probe render. */
  marker: string;
  /** Absent from the values: a registry knob some charts read. */
  absent: boolean;
  /** A registry or hub value (set, empty or absent), not a name: probed apart when all at once fails. */
  registryLike: boolean;
}

function markerHost(id: number): string {
  return `p${id}.${MARKER_DOMAIN}`;
}

function namesRegistry(name: string): boolean {
  const slash = name.indexOf('/');
  if (slash < 0) return false;
  const first = name.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/** The value with its registry host (if it names one) replaced by the marker host. */
function markerFor(id: number, value: string): string {
  const v = value.trim().replace(/\/+$/, '');
  if (v === '') return markerHost(id);
  // A host alone (`quay.io`, `localhost:5000`); a bare name keeps its text (`nginx:1.27` has a dot in its tag).
  const { name, tag, digest } = splitReference(v);
  if (!v.includes('/') && (/^[^:]+:[0-9]+$/.test(v) || ((name.includes('.') || name === 'localhost') && tag === undefined && digest === undefined))) return markerHost(id);
  const rest = namesRegistry(v) ? v.slice(v.indexOf('/') + 1) : v;
  return `${markerHost(id)}/${rest}`;
}

function tryParse(text: string): Reference | undefined {
  try {
    return parseReference(text);
  } catch {
    return undefined;
  }
}

/** `docker.io/istio` → the name prefix it stands for, normalised (`docker.io/istio`, `docker.io` for `docker.io`). */
export function namePrefix(value: string): string | undefined {
  const v = value.trim().replace(/\/+$/, '');
  if (v === '' || /[\s@]/.test(v) || v.includes('://')) return undefined;
  const probe = tryParse(`${v}/airlock/probe`);
  if (!probe || probe.tag !== 'latest' || probe.digest !== undefined) return undefined;
  return formatName(probe).slice(0, -'/airlock/probe'.length);
}

/**
 * Could this string stand for (part of) one of the images' names? A single word (`controller`,
 * `nginx`) only in an image context (`imageContext`): such words are as often the names of
 * components, classes and resources, and marking those would rename what holds the images.
 */
function namesAnImage(value: string, key: string, names: readonly string[], imageContext: boolean): boolean {
  const v = value.trim();
  if (v === '' || v.length > 512 || /\s/.test(v) || v.includes('://')) return false;
  const bare = !splitReference(v).name.includes('/');
  if (bare && !imageContext) return false;
  const ref = tryParse(v);
  if (ref && names.includes(formatName(ref))) return true;
  // A repository the chart puts behind a registry value: `app/admin` of quay.io/app/admin.
  if (bare && !NAME_KEY.test(key)) return false;
  const name = splitReference(v).name;
  if (name === '' || name.startsWith('/')) return false;
  return names.some((n) => n.endsWith(`/${name}`) || n.endsWith(`/library/${name}`));
}

/** A key, its path or its siblings say image: `image: nginx`, `repository: x`, `{name: x, tag: 1}`, `images.x.name`. */
function inImageContext(key: string, segments: readonly PathSegment[], parent: Obj | undefined): boolean {
  if (/image|repo/i.test(key)) return true;
  if (segments.slice(0, -1).some((s) => typeof s === 'string' && /image/i.test(s))) return true;
  return parent !== undefined && ['registry', 'tag', 'digest'].some((k) => k in parent);
}

/** Could this string be a registry (or hub) value in front of one of the images' names? */
function prefixesAnImage(value: string, names: readonly string[]): boolean {
  if (value.trim() === '') return true;
  const prefix = namePrefix(value);
  return prefix !== undefined && names.some((n) => n.startsWith(`${prefix}/`));
}

function lastKey(segments: readonly PathSegment[]): string {
  return String([...segments].reverse().find((s) => typeof s === 'string') ?? '');
}

/** Can `segments` be set in `top` without replacing a scalar or a list on the way? */
function settable(top: Obj, segments: readonly PathSegment[]): boolean {
  let node: unknown = top;
  for (let i = 0; i < segments.length - 1; i++) {
    if (!isObj(node)) return false;
    node = node[segments[i] as string];
    if (node === undefined || node === null) return true;
  }
  return isObj(node) && (node[segments[segments.length - 1] as string] === undefined || node[segments[segments.length - 1] as string] === null);
}

/** Registry knobs charts read without setting them in their values, for the top chart and each subchart. */
function absentKnobs(top: Obj, prefixes: readonly PathSegment[][]): PathSegment[][] {
  const out: PathSegment[][] = [
    ['global', 'imageRegistry'],
    ['global', 'image', 'registry'],
    ['global', 'registry'],
    ['global', 'hub'],
  ];
  for (const p of prefixes) out.push([...p, 'imageRegistry'], [...p, 'image', 'registry']);
  return out.filter((s) => settable(top, s));
}

/**
 * Every value worth a marker: strings that name an image or a part of its name, registry-like
 * values (set, empty or absent) that could be put in front of one, and beside every map that holds a
 * repository but no registry, that map's `registry`.
 */
export function probeLeaves(top: Obj, images: readonly string[], chartPrefixes: readonly PathSegment[][] = [[]]): ProbeLeaf[] {
  const names = [...new Set(images.map((i) => formatName(parseReference(i))))];
  const out: ProbeLeaf[] = [];
  const seen = new Set<string>();
  const add = (segments: PathSegment[], original: string, absent: boolean, registryLike = true): void => {
    const key = JSON.stringify(segments);
    if (seen.has(key)) return;
    seen.add(key);
    const id = out.length;
    out.push({ id, segments, original, marker: markerFor(id, original), absent, registryLike });
  };
  const walk = (node: unknown, segments: PathSegment[], depth: number, parent?: Obj): void => {
    if (depth > MAX_DEPTH) return;
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, [...segments, i], depth + 1));
      return;
    }
    if (isObj(node)) {
      for (const [k, v] of Object.entries(node)) {
        // A subchart's `global` (its own defaults, the parent's copied over them) is set through the
        // top-level one: helm lets the parent's globals win.
        if (k === 'global' && depth > 0) walk(v, ['global'], 1);
        else walk(v, [...segments, k], depth + 1, node);
      }
      const holdsName = ['repository', 'image', 'name'].some(
        (k) => typeof node[k] === 'string' && namesAnImage(node[k] as string, k === 'name' ? 'image' : k, names, inImageContext(k, [...segments, k], node)),
      );
      if (holdsName && !('registry' in node)) add([...segments, 'registry'], '', true);
      return;
    }
    const key = lastKey(segments);
    if (NAMING_KEY.test(key)) return;
    if (node === null || node === '') {
      if (EMPTY_REGISTRY_KEY.test(key)) add(segments, '', false);
      return;
    }
    if (typeof node !== 'string') return;
    const registryLike = REGISTRY_KEY.test(key) && prefixesAnImage(node, names);
    if (registryLike || namesAnImage(node, key, names, inImageContext(key, segments, parent))) add(segments, node, false, registryLike);
  };
  walk(top, [], 0);
  for (const s of absentKnobs(top, chartPrefixes)) add(s, '', true);
  return out;
}

/** One image at one place as the probe render made it: the marked reference and the values in it. */
export interface Trace {
  /** The probe render's reference, formatted (markers in it). */
  marked: string;
  /** Values whose marker appears in it, in order of appearance. */
  leaves: ProbeLeaf[];
  /**
   * The first value is empty and the template put a default in its place (`registry | default
   * "docker.io"`): the trace says what happens once it is set, not what the default is, so any
   * solution must set it.
   */
  headDefaulted: boolean;
}

const MARKER_RE = /p([0-9]+)\.airlock-probe\.invalid/g;

/** The values (by marker) in a marked reference, in order; undefined when a marker was changed by the template. */
export function leavesIn(marked: string, leaves: readonly ProbeLeaf[]): ProbeLeaf[] | undefined {
  const found: ProbeLeaf[] = [];
  for (const m of marked.matchAll(MARKER_RE)) {
    const leaf = leaves[Number(m[1])];
    if (!leaf || !marked.startsWith(leaf.marker, m.index)) return undefined;
    found.push(leaf);
  }
  return found;
}

/** The marked reference with the values in it set to `values` (the originals where not given). */
export function substitute(marked: string, leaves: readonly ProbeLeaf[], values: ReadonlyMap<number, string>): string {
  let out = marked;
  for (const l of leaves) out = out.split(l.marker).join(values.get(l.id) ?? l.original.trim().replace(/\/+$/, ''));
  return out;
}

/** The normalised reference a text stands for, or undefined. */
export function normalised(text: string): string | undefined {
  const ref = tryParse(text);
  return ref ? formatReference(ref) : undefined;
}

/**
 * Among the references a probe render has at one place, the one that is `image` once every marker
 * is set back to its value.
 */
export function traceOf(image: string, probed: Iterable<string>, leaves: readonly ProbeLeaf[]): Trace | undefined {
  const all = [...probed];
  for (const marked of all) {
    const inIt = leavesIn(marked, leaves);
    if (inIt === undefined) continue;
    if (normalised(substitute(marked, inIt, new Map())) === image) return { marked, leaves: inIt, headDefaulted: false };
  }
  for (const marked of all) {
    const inIt = leavesIn(marked, leaves);
    const head = inIt?.[0];
    if (!inIt || !head || head.original.trim() !== '' || !marked.startsWith(`${head.marker}/`)) continue;
    const rest = substitute(marked.slice(head.marker.length + 1), inIt.slice(1), new Map());
    if (image.endsWith(`/${rest}`) || normalised(rest) === image) return { marked, leaves: inIt, headDefaulted: true };
  }
  return undefined;
}

/** The probe overlay: every leaf set to its marker. */
export function probeOverlay(leaves: readonly ProbeLeaf[], set: (overlay: Obj, segments: PathSegment[], value: unknown) => void): Obj {
  const overlay: Obj = {};
  for (const l of leaves) set(overlay, l.segments, l.marker);
  return overlay;
}

/** A pinned digest written alone (`digest: sha256:…`) that the target holds another index for (Target.digests). */
export interface DigestWrite {
  segments: PathSegment[];
  from: string;
  to: string;
}

/** Every `digest`-like value the target maps: the overlay points it at the index push stored instead. */
export function digestWrites(top: Obj, target: { digests?: ReadonlyMap<string, string> | undefined }): DigestWrite[] {
  const out: DigestWrite[] = [];
  if (!target.digests || target.digests.size === 0) return out;
  const walk = (node: unknown, segments: PathSegment[], depth: number): void => {
    if (depth > MAX_DEPTH) return;
    if (Array.isArray(node)) node.forEach((v, i) => walk(v, [...segments, i], depth + 1));
    else if (isObj(node)) {
      for (const [k, v] of Object.entries(node)) if (!(k === 'global' && depth > 0)) walk(v, [...segments, k], depth + 1);
    } else if (typeof node === 'string') {
      const to = target.digests!.get(node.trim());
      if (to !== undefined) out.push({ segments, from: node.trim(), to });
    }
  };
  walk(top, [], 0);
  return out;
}
