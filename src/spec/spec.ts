// airlock.yaml: what the user wants carried. Parsed once into a validated value.
import { readFile } from 'node:fs/promises';
import { parseDocument, isScalar, type Document } from 'yaml';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { formatReference, parseReference, type Reference } from '../core/reference.ts';
import { formatPlatform, parsePlatform, type Platform } from '../core/platform.ts';
import { isValidRange } from '../helm/version.ts';
import { yamlValue } from '../util/yaml.ts';
import { parseToolPlatforms } from '../tools/platforms.ts';
import { parseFiles, type FileSpec } from './files.ts';

export type { FileSpec };

export const API_VERSION = 'airlock.dev/v1alpha1';

export interface Spec {
  name: string;
  version: string;
  /** Wanted platforms; undefined = every platform an index carries. */
  platforms: Platform[] | undefined;
  /** Normalised references, sorted by their string form, no duplicates. */
  images: Reference[];
  /** Helm charts, sorted by name, names unique. */
  charts: ChartSpec[];
  /** `tools:` — the bundle carries airlock (and the pinned helm) for these platforms; absent: it carries none. */
  tools?: ToolsSpec;
  /**
   * `referrers: false`: lock and pack leave out what refers to the images (signatures, attestations,
   * SBOMs). Absent (or true): they are found at lock and carried.
   */
  referrers?: boolean | undefined;
  /** `files:` — files carried as OCI artifacts (files.ts), sorted by name; absent when none. */
  files?: FileSpec[];
}

/** `tools: true` (the platform pack runs on) or `tools: {platforms: [linux/amd64, linux/arm64]}`. */
export interface ToolsSpec {
  /** Sorted, checked; undefined: the platform pack runs on. */
  platforms: string[] | undefined;
}

/** One entry of `charts:` — a chart from a repository (https:// or oci://) or from disk. */
export interface ChartSpec {
  /** The chart's name (as in its Chart.yaml); it is also its name in the bundle. */
  name: string;
  /** `https://…` (a Helm repository with index.yaml), `http://…` (this machine or --insecure), or `oci://REGISTRY/PATH`. */
  repo?: string;
  /** A chart folder or .tgz, relative to airlock.yaml, exactly as written. */
  path?: string;
  /** A semver range as written ('' = the newest stable version). */
  version: string;
  /** Values files for discovery, relative to airlock.yaml, as written. */
  values: string[];
}

const SPEC_KEYS = ['apiVersion', 'kind', 'metadata', 'platforms', 'images', 'charts', 'tools', 'referrers', 'files'];
const TOOLS_KEYS = ['platforms'];
const METADATA_KEYS = ['name', 'version'];
const CHART_KEYS = ['name', 'repo', 'path', 'version', 'values'];
/** Chart names become an OCI path component in the bundle: lowercase, digits, separators. */
const CHART_NAME = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;

/** Read and validate airlock.yaml; errors name the file and the offending entry. */
export async function loadSpec(path: string): Promise<Spec> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`spec file ${path} does not exist`, { code: 'SPEC_NOT_FOUND', hint: 'create airlock.yaml (see README) or name another spec file' });
    }
    throw new UsageError(`cannot read spec file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseSpec(text, path);
}

export function parseSpec(text: string, path = 'airlock.yaml'): Spec {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new UsageError(`${path}: not valid YAML: ${doc.errors[0]!.message}`, { code: 'SPEC_INVALID' });
  }
  const raw: unknown = yamlValue(doc, path, 'SPEC_INVALID');
  const fail = (msg: string): never => {
    throw new UsageError(`${path}: ${msg}`, { code: 'SPEC_INVALID' });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('expected a mapping with apiVersion, kind, metadata, images and/or charts');
  const o = raw as Record<string, unknown>;
  // A typo (`platfroms:`, `imagez:`) must not pass silently: it would pin every platform, or nothing.
  checkKeys(o, SPEC_KEYS, fail);
  if (o.apiVersion !== API_VERSION) fail(`apiVersion must be ${API_VERSION}, got ${JSON.stringify(o.apiVersion)}`);
  if (o.kind !== 'Bundle') fail(`kind must be Bundle, got ${JSON.stringify(o.kind)}`);
  const meta = (o.metadata ?? {}) as Record<string, unknown>;
  if (typeof meta !== 'object' || Array.isArray(meta)) fail('metadata must be a mapping {name, version}');
  checkKeys(meta, METADATA_KEYS, fail, { path: 'metadata.' });
  const name = meta.name;
  if (typeof name !== 'string' || !/^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/.test(name)) {
    fail(`metadata.name must be a lowercase name (letters, digits, . _ -), got ${JSON.stringify(name)}`);
  }
  const version = meta.version === undefined ? '0.0.0' : String(meta.version);

  let platforms: Platform[] | undefined;
  if (o.platforms !== undefined) {
    if (!Array.isArray(o.platforms) || o.platforms.length === 0) fail('platforms must be a non-empty list like [linux/amd64]');
    platforms = (o.platforms as unknown[]).map((p, i) => {
      if (typeof p !== 'string') return fail(`platforms[${i}] must be a string like linux/amd64`);
      try {
        return parsePlatform(p);
      } catch (e) {
        return fail(`platforms[${i}]: ${(e as Error).message}`);
      }
    });
    platforms.sort((a, b) => compareStrings(formatPlatform(a), formatPlatform(b)));
  }

  const charts = parseCharts(o.charts, fail, doc);
  const files = parseFiles(o.files, fail, doc, checkKeys);
  if (o.images !== undefined && o.images !== null && !Array.isArray(o.images)) fail('images must be a list of image references');
  const rawImages = (o.images ?? []) as unknown[];
  if (rawImages.length === 0 && charts.length === 0 && files.length === 0) fail('images must be a non-empty list of image references (or list charts)');
  const seen = new Map<string, string>();
  const images: Reference[] = [];
  rawImages.forEach((entry, i) => {
    if (typeof entry !== 'string') return fail(`images[${i}] must be a string image reference, got ${JSON.stringify(entry)}`);
    let ref: Reference;
    try {
      ref = parseReference(entry);
    } catch (e) {
      return fail(`images[${i}]: ${(e as Error).message}`);
    }
    const key = formatReference(ref);
    const before = seen.get(key);
    if (before !== undefined) return fail(`images[${i}] "${entry}" is the same image as "${before}"`);
    seen.set(key, entry);
    images.push(ref);
  });
  images.sort((a, b) => compareStrings(formatReference(a), formatReference(b)));
  const tools = parseTools(o.tools, fail);
  if (o.referrers !== undefined && o.referrers !== null && typeof o.referrers !== 'boolean') fail(`referrers must be true or false (false: leave out the signatures, attestations and SBOMs that refer to the images), got ${JSON.stringify(o.referrers)}`);
  const referrers = typeof o.referrers === 'boolean' ? { referrers: o.referrers } : {};
  return { name: name as string, version, platforms, images, charts, ...(tools ? { tools } : {}), ...referrers, ...(files.length > 0 ? { files } : {}) };
}

function parseTools(raw: unknown, fail: (msg: string) => never): ToolsSpec | undefined {
  if (raw === undefined || raw === null || raw === false) return undefined;
  if (raw === true) return { platforms: undefined };
  if (typeof raw !== 'object' || Array.isArray(raw)) return fail('tools must be true, or a mapping like {platforms: [linux/amd64, linux/arm64]}');
  const t = raw as Record<string, unknown>;
  checkKeys(t, TOOLS_KEYS, fail, { path: 'tools.' });
  if (t.platforms === undefined || t.platforms === null) return { platforms: undefined };
  if (!Array.isArray(t.platforms) || !t.platforms.every((p) => typeof p === 'string')) return fail('tools.platforms must be a list like [linux/amd64, linux/arm64]');
  try {
    return { platforms: parseToolPlatforms(t.platforms as string[], 'tools.platforms') };
  } catch (e) {
    return fail((e as Error).message);
  }
}

function parseCharts(raw: unknown, fail: (msg: string) => never, doc: Document): ChartSpec[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) return fail('charts must be a list of {name, repo or path, version, values}');
  const charts: ChartSpec[] = [];
  const byName = new Map<string, number>();
  raw.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail(`charts[${i}] must be a mapping like {name: shop, repo: https://charts.example.com, version: "^1.4.0"}`);
    const c = entry as Record<string, unknown>;
    const label = typeof c.name === 'string' ? `charts[${i}] (${c.name})` : `charts[${i}]`;
    checkKeys(c, CHART_KEYS, fail, { label: `${label}: ` });
    if (typeof c.name !== 'string' || c.name === '') return fail(`${label} needs a name: the chart's name as in its Chart.yaml`);
    if (!CHART_NAME.test(c.name)) fail(`${label}: chart name "${c.name}" must be lowercase letters and digits, separated by . _ or - (it becomes charts/${c.name} in the registry)`);
    const before = byName.get(c.name);
    if (before !== undefined) fail(`${label}: the chart ${c.name} is listed twice (also charts[${before}])`);
    byName.set(c.name, i);
    const hasRepo = c.repo !== undefined && c.repo !== null;
    const hasPath = c.path !== undefined && c.path !== null;
    if (hasRepo === hasPath) fail(`${label} needs exactly one of repo (https://… or oci://…) and path (a chart folder or .tgz)`);
    const spec: ChartSpec = { name: c.name, version: '', values: [] };
    if (hasRepo) {
      if (typeof c.repo !== 'string' || !/^(https?|oci):\/\/[^/\s]+/.test(c.repo)) {
        fail(`${label}: repo must be an https:// chart repository URL or an oci://REGISTRY/PATH, got ${JSON.stringify(c.repo)}`);
      }
      try {
        // oci:// is not a URL scheme Node knows, but host/path still parse the same way.
        new URL(String(c.repo).replace(/^oci:/, 'https:'));
      } catch {
        fail(`${label}: repo ${JSON.stringify(c.repo)} is not a valid URL`);
      }
      spec.repo = (c.repo as string).replace(/\/+$/, '');
    } else {
      if (typeof c.path !== 'string' || c.path === '') fail(`${label}: path must be a chart folder or .tgz, relative to airlock.yaml`);
      spec.path = c.path as string;
    }
    if (c.version !== undefined && c.version !== null) {
      if (typeof c.version !== 'string' && typeof c.version !== 'number') fail(`${label}: version must be a semver range like ">=1.4.0 <2.0.0" or "1.4.2"`);
      // An unquoted 1.10 is the number 1.1 to YAML; the range the user wrote is its source text.
      const node = doc.getIn(['charts', i, 'version'], true);
      spec.version = (isScalar(node) && typeof node.source === 'string' ? node.source : String(c.version)).trim();
      if (!isValidRange(spec.version)) fail(`${label}: version "${spec.version}" is not a semver range (e.g. 1.4.2, ^1.4.0, ">=1.4.0 <2.0.0")`);
    }
    if (c.values !== undefined && c.values !== null) {
      const values = typeof c.values === 'string' ? [c.values] : c.values;
      if (!Array.isArray(values) || !values.every((v) => typeof v === 'string' && v !== '')) fail(`${label}: values must be a list of values files, relative to airlock.yaml`);
      spec.values = [...(values as string[])];
    }
    charts.push(spec);
  });
  return charts.sort((a, b) => compareStrings(a.name, b.name));
}

/** Refuse keys the format does not have, naming each and the known key it most likely meant. */
function checkKeys(o: Record<string, unknown>, known: readonly string[], fail: (msg: string) => never, at: { label?: string; path?: string } = {}): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue;
    const near = closest(key, known);
    fail(`${at.label ?? ''}unknown key "${at.path ?? ''}${key}"${near ? `: did you mean "${at.path ?? ''}${near}"?` : ''} (known: ${known.join(', ')})`);
  }
}

/** The known word nearest to `word` (edit distance, case ignored), when it is near enough to be a typo. */
export function closest(word: string, known: readonly string[]): string | undefined {
  let best: { word: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (!best || d < best.d) best = { word: k, d };
  }
  return best && best.d <= Math.max(2, Math.floor(best.word.length / 3)) ? best.word : undefined;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** Byte-wise string order: the same on every machine and locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The spec with the platforms given on the command line (`--platform linux/amd64`, repeated or
 * comma-separated) in place of its own `platforms:`; none given: the spec as it is.
 */
export function withPlatforms(spec: Spec, given: readonly string[] | undefined): Spec {
  if (given === undefined || given.length === 0) return spec;
  const byName = new Map<string, Platform>();
  for (const raw of given.flatMap((g) => g.split(','))) {
    const text = raw.trim();
    if (text === '') continue;
    let p: Platform;
    try {
      p = parsePlatform(text);
    } catch (e) {
      throw new UsageError(`--platform "${text}": ${(e as Error).message}`, { code: 'PLATFORM_INVALID', hint: 'e.g. --platform linux/amd64 (repeat it, or separate them with commas)' });
    }
    byName.set(formatPlatform(p), p);
  }
  if (byName.size === 0) throw new UsageError('--platform: no platform given; expected e.g. linux/amd64', { code: 'PLATFORM_INVALID' });
  return { ...spec, platforms: [...byName.keys()].sort(compareStrings).map((k) => byName.get(k)!) };
}
