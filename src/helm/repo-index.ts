// Helm chart repositories: `<repo>/index.yaml` lists every chart's versions with their download
// URLs and (usually) sha256 digests. Each repository's index is fetched once per run.
import { parse as parseYaml } from 'yaml';
import { IntegrityError, NotFoundError } from '../core/errors.ts';
import type { ChartHttpClient } from './http-client.ts';
import { redactUrl } from '../core/redact.ts';
import { describeVersions, normalizeRange, selectVersion } from './version.ts';

/** Big public indexes are tens of MiB; more than this is not a chart repository. */
export const MAX_INDEX_BYTES = 128 * 1024 * 1024;

export interface IndexEntry {
  version: string;
  urls: string[];
  /** Hex sha256 of the .tgz when the index records it. */
  digest?: string;
}

export type RepoIndex = Map<string, IndexEntry[]>;

/** The repository URL as helm uses it: no trailing slash, `index.yaml` beside it. */
export function indexUrl(repoUrl: string): URL {
  const base = new URL(repoUrl);
  base.pathname = `${base.pathname.replace(/\/+$/, '')}/index.yaml`;
  return base;
}

/** helm's ResolveReferenceURL: a relative chart URL is resolved against the repository URL + "/". */
export function resolveChartUrl(repoUrl: string, ref: string): string {
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(ref)) return ref;
  const base = new URL(repoUrl);
  const query = base.search;
  base.pathname = `${base.pathname.replace(/\/+$/, '')}/`;
  base.search = '';
  const out = new URL(ref, base);
  out.search = query;
  return out.toString();
}

export function parseRepoIndex(text: string, what: string): RepoIndex {
  let doc: unknown;
  try {
    // Failsafe: every scalar stays the string it is written as (an unquoted digest of digits is not a number).
    doc = parseYaml(text, { schema: 'failsafe', maxAliasCount: -1 });
  } catch (e) {
    throw new IntegrityError(`${what} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, { code: 'INDEX_INVALID' });
  }
  const entries = (doc as { entries?: unknown } | null)?.entries;
  if (typeof doc !== 'object' || doc === null || (entries !== undefined && entries !== null && (typeof entries !== 'object' || Array.isArray(entries)))) {
    throw new IntegrityError(`${what} is not a helm repository index (no entries mapping)`, { code: 'INDEX_INVALID', hint: 'check the repository URL: it should be the folder that holds index.yaml' });
  }
  const out: RepoIndex = new Map();
  for (const [name, list] of Object.entries((entries ?? {}) as Record<string, unknown>)) {
    if (!Array.isArray(list)) continue;
    const versions: IndexEntry[] = [];
    for (const e of list) {
      if (typeof e !== 'object' || e === null) continue;
      const o = e as Record<string, unknown>;
      if (o.version === undefined || o.version === null) continue;
      const urls = Array.isArray(o.urls) ? o.urls.filter((u): u is string => typeof u === 'string') : [];
      versions.push({ version: String(o.version), urls, ...(typeof o.digest === 'string' && o.digest !== '' ? { digest: o.digest } : {}) });
    }
    out.set(name, versions);
  }
  return out;
}

export interface ResolvedRepoChart {
  version: string;
  url: string;
  /** `sha256:<hex>` from the index, when it has one. */
  indexDigest?: string;
}

export class RepoIndexes {
  readonly #http: ChartHttpClient;
  readonly #cache = new Map<string, Promise<RepoIndex>>();

  constructor(http: ChartHttpClient) {
    this.#http = http;
  }

  async get(repoUrl: string, signal?: AbortSignal): Promise<RepoIndex> {
    const key = repoUrl.replace(/\/+$/, '');
    let p = this.#cache.get(key);
    if (p === undefined) {
      const what = `index.yaml of ${redactUrl(key)}`;
      p = this.#http.get(indexUrl(key), { what, limit: MAX_INDEX_BYTES, signal }).then(
        (bytes) => parseRepoIndex(bytes.toString('utf8'), what),
        (e: unknown) => {
          if (e instanceof NotFoundError) {
            throw new NotFoundError(`${redactUrl(key)} is not a helm chart repository: it has no index.yaml (404)`, {
              code: 'CHART_REPO_NOT_FOUND',
              cause: e,
              hint: 'check the repo URL in airlock.yaml: it is the URL `helm repo add` takes',
            });
          }
          throw e;
        },
      );
      this.#cache.set(key, p);
      p.catch(() => this.#cache.delete(key));
    }
    return await p;
  }

  /** The version of `name` that `range` selects, with its download URL. `what` names who asks. */
  async resolve(repoUrl: string, name: string, range: string, what: string, signal?: AbortSignal): Promise<ResolvedRepoChart> {
    const index = await this.get(repoUrl, signal);
    const repo = redactUrl(repoUrl);
    const entries = index.get(name);
    if (!entries || entries.length === 0) {
      const names = [...index.keys()].sort();
      throw new NotFoundError(`${what}: chart "${name}" is not in the repository ${repo} (it has: ${names.slice(0, 20).join(', ') || 'no charts'}${names.length > 20 ? `, … ${names.length - 20} more` : ''})`, {
        code: 'CHART_NOT_FOUND',
        hint: 'check the chart name and the repository URL',
      });
    }
    const version = selectVersion(entries.map((e) => e.version), range);
    if (version === undefined) {
      throw new NotFoundError(`${what}: no version of chart "${name}" in ${repo} satisfies "${range || '*'}" (available: ${describeVersions(entries.map((e) => e.version))})`, {
        code: 'CHART_VERSION_NOT_FOUND',
        hint: normalizeRange(range) === '*' ? 'the repository only has prereleases: ask for one explicitly' : 'change the version range',
      });
    }
    const entry = entries.find((e) => e.version === version)!;
    const first = entry.urls[0];
    if (first === undefined) {
      throw new IntegrityError(`${what}: the index of ${repo} lists ${name} ${version} without a download URL`, { code: 'INDEX_INVALID' });
    }
    const hex = entry.digest?.replace(/^sha256:/, '').toLowerCase();
    return { version, url: resolveChartUrl(repoUrl, first), ...(hex && /^[a-f0-9]{64}$/.test(hex) ? { indexDigest: `sha256:${hex}` } : {}) };
  }
}
