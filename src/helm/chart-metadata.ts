// Chart.yaml as helm reads it (chart/v2 Metadata): YAML 1.1 scalars turned into Go strings, the
// same sanitising, the same validation. From it come the Helm OCI config document and manifest
// annotations, byte for byte as `helm push` (v4.1) writes them.
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../core/errors.ts';
import { goJson, sortedDeep, sortedMap } from './go-json.ts';
import { isValidChartVersion } from './version.ts';

export interface ChartMaintainer {
  name: string;
  email: string;
  url: string;
}

export interface ChartDependency {
  name: string;
  /** A version or range; '' means any. */
  version: string;
  /** https://…, oci://…, file://…, @alias or a repository name, or '' (vendored in charts/). */
  repository: string;
  condition: string;
  tags: string[];
  enabled: boolean;
  importValues: unknown[] | undefined;
  alias: string;
}

export interface ChartMetadata {
  name: string;
  home: string;
  sources: string[];
  version: string;
  description: string;
  keywords: string[];
  maintainers: ChartMaintainer[];
  icon: string;
  apiVersion: string;
  condition: string;
  tags: string;
  appVersion: string;
  deprecated: boolean;
  annotations: Record<string, string>;
  kubeVersion: string;
  dependencies: ChartDependency[];
  type: string;
}

/** One pinned entry of Chart.lock (requirements.lock for apiVersion v1 charts). */
export interface ChartLockEntry {
  name: string;
  version: string;
  repository: string;
}

type Fail = (msg: string) => never;

function failer(what: string): Fail {
  return (msg: string): never => {
    throw new UsageError(`${what}: ${msg}`, { code: 'CHART_INVALID', hint: 'fix the chart (helm lint shows the same problem)' });
  };
}

function load(text: string, fail: Fail): unknown {
  try {
    // helm reads YAML 1.1 (go-yaml v2): yes/no are booleans, 010 is octal, and so on.
    return parseYaml(text, { version: '1.1', uniqueKeys: true });
  } catch (e) {
    return fail(`not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** A YAML scalar as the Go string it becomes (sigs.k8s.io/yaml converts numbers and booleans). */
function goString(v: unknown, field: string, fail: Fail): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return v.toISOString().replace('.000Z', 'Z');
  return fail(`${field} must be a string, got ${Array.isArray(v) ? 'a list' : 'a mapping'}`);
}

function goStrings(v: unknown, field: string, fail: Fail): string[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) return fail(`${field} must be a list of strings`);
  return v.map((x, i) => goString(x, `${field}[${i}]`, fail));
}

function goBool(v: unknown, field: string, fail: Fail): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === 'boolean') return v;
  return fail(`${field} must be true or false`);
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

const GO_SPACE = /^(?:[\t\n\v\f\r \u0085\u00a0]|\p{Z})$/u;
const GO_PRINT = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** helm's sanitizeString: every space becomes ' ', non-printable characters are dropped. */
export function sanitizeString(s: string): string {
  let out = '';
  for (const ch of s) {
    if (GO_SPACE.test(ch)) out += ' ';
    else if (GO_PRINT.test(ch)) out += ch;
  }
  return out;
}

function parseDependencies(v: unknown, field: string, fail: Fail): ChartDependency[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) return fail(`${field} must be a list`);
  return v.map((d, i) => {
    const w = `${field}[${i}]`;
    if (!isMapping(d)) return fail(`${w} must be a mapping with name, version and repository`);
    const alias = goString(d.alias, `${w}.alias`, fail);
    if (alias !== '' && !/^[a-zA-Z0-9-_]+$/.test(alias)) fail(`dependency "${goString(d.name, `${w}.name`, fail)}" has disallowed characters in the alias`);
    let importValues: unknown[] | undefined;
    if (d['import-values'] !== undefined && d['import-values'] !== null) {
      if (!Array.isArray(d['import-values'])) fail(`${w}.import-values must be a list`);
      importValues = (d['import-values'] as unknown[]).map(sortedDeep);
    }
    const dep: ChartDependency = {
      name: sanitizeString(goString(d.name, `${w}.name`, fail)),
      version: sanitizeString(goString(d.version, `${w}.version`, fail)),
      repository: sanitizeString(goString(d.repository, `${w}.repository`, fail)),
      condition: sanitizeString(goString(d.condition, `${w}.condition`, fail)),
      tags: goStrings(d.tags, `${w}.tags`, fail).map(sanitizeString),
      enabled: goBool(d.enabled, `${w}.enabled`, fail),
      importValues,
      alias,
    };
    if (dep.name === '') fail(`${w} has no name`);
    return dep;
  });
}

/**
 * Parse and validate Chart.yaml the way helm's loader does. `requirements` is requirements.yaml
 * of an apiVersion v1 chart (its dependencies). Errors are UsageErrors naming `what`.
 */
export function parseChartMetadata(text: string, what: string, requirements?: string): ChartMetadata {
  const fail = failer(what);
  const raw = load(text, fail);
  if (!isMapping(raw)) return fail('Chart.yaml must be a mapping with apiVersion, name and version');
  const s = (k: string): string => goString(raw[k], k, fail);
  const maintainers = raw.maintainers === undefined || raw.maintainers === null ? [] : raw.maintainers;
  if (!Array.isArray(maintainers)) fail('maintainers must be a list');
  const annotations: Record<string, string> = {};
  if (raw.annotations !== undefined && raw.annotations !== null) {
    if (!isMapping(raw.annotations)) fail('annotations must be a mapping of strings');
    for (const [k, v] of Object.entries(raw.annotations as Record<string, unknown>)) annotations[k] = goString(v, `annotations.${k}`, fail);
  }
  const meta: ChartMetadata = {
    name: sanitizeString(s('name')),
    home: sanitizeString(s('home')),
    sources: goStrings(raw.sources, 'sources', fail).map(sanitizeString),
    version: s('version'),
    description: sanitizeString(s('description')),
    keywords: goStrings(raw.keywords, 'keywords', fail).map(sanitizeString),
    maintainers: (maintainers as unknown[]).map((m, i) => {
      if (!isMapping(m)) return fail('maintainers must not contain empty or null nodes');
      return {
        name: sanitizeString(goString(m.name, `maintainers[${i}].name`, fail)),
        email: sanitizeString(goString(m.email, `maintainers[${i}].email`, fail)),
        url: sanitizeString(goString(m.url, `maintainers[${i}].url`, fail)),
      };
    }),
    icon: sanitizeString(s('icon')),
    // An empty apiVersion is how v1 charts were written; helm's loader fills it in.
    apiVersion: s('apiVersion') || 'v1',
    condition: sanitizeString(s('condition')),
    tags: sanitizeString(s('tags')),
    appVersion: sanitizeString(s('appVersion')),
    deprecated: goBool(raw.deprecated, 'deprecated', fail),
    annotations,
    kubeVersion: sanitizeString(s('kubeVersion')),
    dependencies: parseDependencies(raw.dependencies, 'dependencies', fail),
    type: s('type'),
  };
  if (meta.apiVersion === 'v1' && requirements !== undefined) {
    const req = load(requirements, failer(`${what} (requirements.yaml)`));
    if (req !== null && req !== undefined) {
      if (!isMapping(req)) fail('requirements.yaml must be a mapping with dependencies');
      meta.dependencies = parseDependencies((req as Record<string, unknown>).dependencies, 'requirements.yaml dependencies', fail);
    }
  }
  if (meta.name === '') fail('Chart.yaml has no name');
  if (meta.name.includes('/') || meta.name.includes('\\') || meta.name === '.' || meta.name === '..') fail(`chart name "${meta.name}" is invalid`);
  if (meta.version === '') fail(`chart ${meta.name} has no version`);
  if (!isValidChartVersion(meta.version)) fail(`chart ${meta.name} has version "${meta.version}", which is not a semantic version`);
  if (meta.type !== '' && meta.type !== 'application' && meta.type !== 'library') fail('type must be application or library');
  const seen = new Set<string>();
  for (const d of meta.dependencies) {
    const key = d.alias || d.name;
    if (seen.has(key)) fail(`more than one dependency with name or alias "${key}"`);
    seen.add(key);
  }
  return meta;
}

/** Chart.lock / requirements.lock: the pinned dependency list. */
export function parseChartLock(text: string, what: string): ChartLockEntry[] {
  const fail = failer(what);
  const raw = load(text, fail);
  if (!isMapping(raw)) return fail('not a mapping with dependencies');
  const deps = raw.dependencies;
  if (deps === undefined || deps === null) return [];
  if (!Array.isArray(deps)) return fail('dependencies must be a list');
  return deps.map((d, i) => {
    if (!isMapping(d)) return fail(`dependencies[${i}] must be a mapping`);
    return {
      name: goString(d.name, `dependencies[${i}].name`, fail),
      version: goString(d.version, `dependencies[${i}].version`, fail),
      repository: goString(d.repository, `dependencies[${i}].repository`, fail),
    };
  });
}

/** The config blob of a Helm OCI artifact: json.Marshal(chart.Metadata), Go field order, omitempty. */
export function helmConfigJson(meta: ChartMetadata): string {
  const o: Record<string, unknown> = {};
  const put = (k: string, v: unknown, present: boolean): void => {
    if (present) o[k] = v;
  };
  put('name', meta.name, meta.name !== '');
  put('home', meta.home, meta.home !== '');
  put('sources', meta.sources, meta.sources.length > 0);
  put('version', meta.version, meta.version !== '');
  put('description', meta.description, meta.description !== '');
  put('keywords', meta.keywords, meta.keywords.length > 0);
  put(
    'maintainers',
    meta.maintainers.map((m) => ({ ...(m.name ? { name: m.name } : {}), ...(m.email ? { email: m.email } : {}), ...(m.url ? { url: m.url } : {}) })),
    meta.maintainers.length > 0,
  );
  put('icon', meta.icon, meta.icon !== '');
  put('apiVersion', meta.apiVersion, meta.apiVersion !== '');
  put('condition', meta.condition, meta.condition !== '');
  put('tags', meta.tags, meta.tags !== '');
  put('appVersion', meta.appVersion, meta.appVersion !== '');
  put('deprecated', true, meta.deprecated);
  put('annotations', sortedMap(meta.annotations), Object.keys(meta.annotations).length > 0);
  put('kubeVersion', meta.kubeVersion, meta.kubeVersion !== '');
  put(
    'dependencies',
    meta.dependencies.map((d) => {
      const dep: Record<string, unknown> = { name: d.name };
      if (d.version) dep.version = d.version;
      dep.repository = d.repository;
      if (d.condition) dep.condition = d.condition;
      if (d.tags.length > 0) dep.tags = d.tags;
      if (d.enabled) dep.enabled = true;
      if (d.importValues && d.importValues.length > 0) dep['import-values'] = d.importValues;
      if (d.alias) dep.alias = d.alias;
      return dep;
    }),
    meta.dependencies.length > 0,
  );
  put('type', meta.type, meta.type !== '');
  return goJson(o);
}

const OCI = {
  description: 'org.opencontainers.image.description',
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  url: 'org.opencontainers.image.url',
  created: 'org.opencontainers.image.created',
  source: 'org.opencontainers.image.source',
  authors: 'org.opencontainers.image.authors',
} as const;

/** The manifest annotations helm sets (pkg/registry generateOCIAnnotations), chart annotations included. */
export function helmManifestAnnotations(meta: ChartMetadata, created: string): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (k: string, v: string): void => {
    if (v.trim() !== '') out[k] = v;
  };
  add(OCI.description, meta.description);
  add(OCI.title, meta.name);
  add(OCI.version, meta.version);
  add(OCI.url, meta.home);
  add(OCI.created, created);
  if (meta.sources.length > 0) add(OCI.source, meta.sources[0]!);
  if (meta.maintainers.length > 0) {
    add(OCI.authors, meta.maintainers.map((m) => `${m.name}${m.email ? ` (${m.email})` : ''}`).join(', '));
  }
  for (const [k, v] of Object.entries(meta.annotations)) {
    if (k === OCI.version || k === OCI.title) continue;
    out[k] = v;
  }
  return sortedMap(out);
}
