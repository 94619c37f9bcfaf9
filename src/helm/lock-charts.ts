// lock, for charts: resolve each chart of the spec to one version and archive digest, then its
// dependencies (Chart.yaml, pinned by Chart.lock when there is one), recursively. The result says
// exactly which archives pack fetches and which bytes the bundle will carry.
import { resolve } from 'node:path';
import { IntegrityError, NotFoundError, UsageError, throwIfAborted } from '../core/errors.ts';
import { digestOf } from '../core/digest.ts';
import { parseReference } from '../core/reference.ts';
import type { LockedChart, LockedChartDependency } from '../spec/lock.ts';
import type { ChartSpec } from '../spec/spec.ts';
import { buildChartArtifact } from './artifact.ts';
import { findVendored, loadChartArchive, type LoadedChart } from './chart-load.ts';
import type { ChartDependency } from './chart-metadata.ts';
import { fileSource, readLocalChart, type ChartFetchContext } from './chart-source.ts';
import { MAX_CHART_BYTES } from './chart-tgz.ts';
import { redactUrl } from '../core/redact.ts';
import { fetchOciLayer, ociChartLocation, resolveOciChart } from './oci-chart.ts';
import { RepoIndexes } from './repo-index.ts';
import { materialize, type ArchiveDep, type ArchiveNode } from './vendor.ts';
import { ociTagForVersion, parseChartVersion, satisfiesRange } from './version.ts';

/** Deeper than this, a dependency graph is a cycle, not a design. */
const MAX_DEPTH = 16;
/** The bundle name of a chart from disk: it has no source host. */
export const LOCAL_CHART_HOST = 'localhost';

export interface ChartLockContext extends ChartFetchContext {
  /** Shared index cache (made when absent). */
  indexes?: RepoIndexes;
}

interface Fetched {
  bytes: Buffer;
  chart: LoadedChart;
  source: string;
  /** For oci:// sources: the upstream manifest. */
  manifest?: { mediaType: string; digest: LockedChart['digest']; size: number };
  /** For folders: file:// dependencies resolve against it. */
  folder?: string;
}

class Resolver {
  readonly ctx: ChartLockContext;
  readonly indexes: RepoIndexes;
  readonly #memo = new Map<string, Promise<Fetched>>();

  constructor(ctx: ChartLockContext) {
    this.ctx = ctx;
    this.indexes = ctx.indexes ?? new RepoIndexes(ctx.http);
  }

  /** A chart from a repository (https:// index or oci://), fetched once per run. */
  fromRepo(repo: string, name: string, range: string, what: string): Promise<Fetched> {
    const key = `${repo}\n${name}\n${range}`;
    let p = this.#memo.get(key);
    if (p === undefined) {
      p = this.#fetchFromRepo(repo, name, range, what);
      this.#memo.set(key, p);
    }
    return p;
  }

  async #fetchFromRepo(repo: string, name: string, range: string, what: string): Promise<Fetched> {
    const { signal } = this.ctx;
    throwIfAborted(signal);
    let fetched: Fetched;
    let version: string;
    if (repo.startsWith('oci://')) {
      const loc = ociChartLocation(repo, name, what);
      const r = this.ctx.open(loc);
      const res = await resolveOciChart(r, loc, name, range, what, signal);
      const bytes = await fetchOciLayer(r, res.layer, `${what}: chart layer of oci://${loc.registry}/${loc.repository}:${res.tag}`, signal);
      version = res.version;
      fetched = {
        bytes,
        chart: loadChartArchive(bytes, `${what} (oci://${loc.registry}/${loc.repository}:${res.tag})`),
        source: `oci://${loc.registry}/${loc.repository}:${res.tag}@${res.manifest.digest}`,
        manifest: { mediaType: res.manifest.mediaType, digest: res.manifest.digest, size: res.manifest.size },
      };
    } else {
      const res = await this.indexes.resolve(repo, name, range, what, signal);
      const bytes = await this.ctx.http.get(res.url, { what: `${what}: ${name} ${res.version} (${redactUrl(res.url)})`, limit: MAX_CHART_BYTES, signal });
      if (res.indexDigest !== undefined && digestOf(bytes) !== res.indexDigest) {
        throw new IntegrityError(`${what}: ${redactUrl(res.url)} has digest ${digestOf(bytes)}, but the index of ${redactUrl(repo)} says ${res.indexDigest}`, {
          code: 'DIGEST_MISMATCH',
          hint: 'the repository changed while it was read, or serves corrupt files; try again later',
        });
      }
      version = res.version;
      fetched = { bytes, chart: loadChartArchive(bytes, `${what} (${redactUrl(res.url)})`), source: res.url };
    }
    const meta = fetched.chart.meta;
    if (meta.name !== name) {
      throw new IntegrityError(`${what}: the archive of "${name}" ${version} from ${redactUrl(repo)} holds the chart "${meta.name}"`, { code: 'CHART_ARCHIVE_MISMATCH' });
    }
    const a = parseChartVersion(meta.version);
    const b = parseChartVersion(version);
    if (!a || !b || a.compare(b) !== 0 || a.build.join('.') !== b.build.join('.')) {
      throw new IntegrityError(`${what}: ${redactUrl(repo)} lists "${name}" ${version}, but its archive's Chart.yaml says version ${meta.version}`, { code: 'CHART_ARCHIVE_MISMATCH' });
    }
    return fetched;
  }

  /** The dependencies of `parent`, pinned, and the tree that says what to vendor. */
  async dependencies(parent: LoadedChart, parentWhat: string, folder: string | undefined, depth: number): Promise<{ locked: LockedChartDependency[]; deps: ArchiveDep[] }> {
    if (depth > MAX_DEPTH) throw new UsageError(`${parentWhat}: dependencies nest more than ${MAX_DEPTH} levels deep (a cycle?)`, { code: 'CHART_DEPENDENCY_CYCLE' });
    const locked: LockedChartDependency[] = [];
    const deps: ArchiveDep[] = [];
    for (const d of parent.meta.dependencies) {
      const what = `${parentWhat} → dependency ${d.alias ? `${d.name} (alias ${d.alias})` : d.name}`;
      const vendored = findVendored(parent, d.name);
      if (vendored) {
        locked.push({
          ...common(d),
          version: vendored.chart.meta.version,
          ...(vendored.digest !== undefined ? { digest: vendored.digest, size: vendored.size! } : {}),
          vendored: true,
          dependencies: vendoredDependencies(vendored.chart),
        });
        deps.push({ name: d.name, version: vendored.chart.meta.version });
        continue;
      }
      const got = await this.#fetchDependency(d, parent, what, folder);
      const sub = await this.dependencies(got.chart, what, got.folder, depth + 1);
      const version = got.chart.meta.version;
      locked.push({ ...common(d), version, source: got.source, digest: digestOf(got.bytes), size: got.bytes.length, vendored: false, dependencies: sub.locked });
      deps.push({ name: d.name, version, node: { bytes: got.bytes, chart: got.chart, deps: sub.deps } });
    }
    return { locked, deps };
  }

  async #fetchDependency(d: ChartDependency, parent: LoadedChart, what: string, folder: string | undefined): Promise<Fetched> {
    const repo = d.repository.trim();
    if (repo === '') {
      throw new NotFoundError(`${what}: it has no repository and is not in the charts/ folder of ${parent.meta.name}`, {
        code: 'CHART_DEPENDENCY_NOT_FOUND',
        hint: `set its repository in ${parent.meta.name}'s Chart.yaml, or vendor it with \`helm dependency build\``,
      });
    }
    if (repo.startsWith('@') || repo.startsWith('alias:') || !/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(repo)) {
      throw new UsageError(`${what}: repository "${repo}" names a repository from helm's local list (helm repo add), which airlock does not read`, {
        code: 'CHART_DEPENDENCY_REPO_NAME',
        hint: `write the repository's URL (https://… or oci://…) in ${parent.meta.name}'s Chart.yaml, or vendor the dependency with \`helm dependency build\``,
      });
    }
    if (repo.startsWith('file://')) {
      if (folder === undefined) {
        throw new UsageError(`${what}: repository ${repo} is a local path, which only works for a chart folder on disk`, {
          code: 'CHART_DEPENDENCY_FILE',
          hint: `vendor the dependency into ${parent.meta.name}'s charts/ folder (helm dependency build) before publishing it`,
        });
      }
      const local = await readLocalChart(resolve(folder, repo.slice('file://'.length)), what);
      if (local.chart.meta.name !== d.name) {
        throw new UsageError(`${what}: ${repo} holds the chart "${local.chart.meta.name}", not "${d.name}"`, { code: 'CHART_MISMATCH' });
      }
      if (d.version !== '' && !satisfiesRange(local.chart.meta.version, d.version)) {
        throw new NotFoundError(`${what}: ${repo} is version ${local.chart.meta.version}, which does not satisfy "${d.version}"`, { code: 'CHART_VERSION_NOT_FOUND' });
      }
      const abs = local.folder ?? resolve(folder, repo.slice('file://'.length));
      return { bytes: local.bytes, chart: local.chart, source: fileSource(this.ctx.baseDir, abs), ...(local.folder ? { folder: local.folder } : {}) };
    }
    if (!/^(https?|oci):\/\//.test(repo)) {
      throw new UsageError(`${what}: unsupported repository scheme in "${repo}"`, { code: 'CHART_DEPENDENCY_REPO_INVALID', hint: 'use https://, oci:// or file://' });
    }
    // helm dependency build installs what Chart.lock pins, not the newest match of the range.
    const pin = parent.lock?.find((l) => l.name === d.name && l.repository === d.repository) ?? parent.lock?.find((l) => l.name === d.name);
    let range = d.version;
    if (pin) {
      if (d.version !== '' && !satisfiesRange(pin.version, d.version)) {
        throw new UsageError(`${what}: Chart.lock of ${parent.meta.name} pins version ${pin.version}, which does not satisfy "${d.version}" from its Chart.yaml`, {
          code: 'CHART_LOCK_OUT_OF_SYNC',
          hint: `run \`helm dependency update\` in ${parent.meta.name}`,
        });
      }
      range = pin.version;
    }
    return await this.fromRepo(repo, d.name, range, what);
  }
}

function common(d: ChartDependency): Pick<LockedChartDependency, 'name' | 'alias' | 'repository' | 'condition' | 'tags'> {
  return {
    name: d.name,
    ...(d.alias ? { alias: d.alias } : {}),
    repository: d.repository,
    ...(d.condition ? { condition: d.condition } : {}),
    ...(d.tags.length > 0 ? { tags: [...d.tags] } : {}),
  };
}

/** What a vendored subchart carries inside itself (for the record; it travels as it is). */
function vendoredDependencies(chart: LoadedChart): LockedChartDependency[] {
  const out: LockedChartDependency[] = [];
  for (const d of chart.meta.dependencies) {
    const v = findVendored(chart, d.name);
    if (!v) continue;
    out.push({ ...common(d), version: v.chart.meta.version, ...(v.digest !== undefined ? { digest: v.digest, size: v.size! } : {}), vendored: true, dependencies: vendoredDependencies(v.chart) });
  }
  return out;
}

/** Resolve one chart of the spec with its dependencies. */
async function lockChart(spec: ChartSpec, ctx: ChartLockContext, resolver: Resolver): Promise<LockedChart> {
  const what = `chart ${spec.name}`;
  let fetched: Fetched;
  let host: string;
  if (spec.path !== undefined) {
    const abs = resolve(ctx.baseDir, spec.path);
    const local = await readLocalChart(abs, `${what} (path ${spec.path})`);
    if (local.chart.meta.name !== spec.name) {
      throw new UsageError(`${what}: ${spec.path} holds the chart "${local.chart.meta.name}"`, { code: 'CHART_MISMATCH', hint: `name the entry ${local.chart.meta.name}, or point path at the ${spec.name} chart` });
    }
    if (spec.version !== '' && !satisfiesRange(local.chart.meta.version, spec.version)) {
      throw new NotFoundError(`${what}: ${spec.path} is version ${local.chart.meta.version}, which does not satisfy "${spec.version}"`, { code: 'CHART_VERSION_NOT_FOUND', hint: 'change the version range in airlock.yaml' });
    }
    fetched = { bytes: local.bytes, chart: local.chart, source: fileSource(ctx.baseDir, abs), ...(local.folder ? { folder: local.folder } : {}) };
    host = LOCAL_CHART_HOST;
  } else {
    const repo = spec.repo!;
    fetched = await resolver.fromRepo(repo, spec.name, spec.version, what);
    host = repo.startsWith('oci://') ? ociChartLocation(repo, spec.name, what).registry : new URL(repo).host;
  }
  const { chart, bytes } = fetched;
  const sub = await resolver.dependencies(chart, what, fetched.folder, 0);
  const node: ArchiveNode = { bytes, chart, deps: sub.deps };
  const carried = materialize(node);
  const rebuilt = carried !== bytes;
  const artifact = fetched.manifest && !rebuilt ? fetched.manifest : buildChartArtifact(carried, chart.meta, chart.packagedAt).manifest.descriptor;
  const reference = `${host}/charts/${chart.meta.name}:${ociTagForVersion(chart.meta.version)}`;
  try {
    parseReference(reference);
  } catch (e) {
    throw new UsageError(`${what}: cannot name it ${reference} in the bundle: ${(e as Error).message}`, { code: 'CHART_NAME_INVALID', cause: e });
  }
  return {
    name: spec.name,
    ...(spec.repo !== undefined ? { repo: spec.repo } : {}),
    ...(spec.path !== undefined ? { path: spec.path } : {}),
    range: spec.version,
    version: chart.meta.version,
    source: fetched.source,
    digest: digestOf(bytes),
    size: bytes.length,
    values: [...spec.values],
    reference,
    ...(rebuilt ? { archive: { digest: digestOf(carried), size: carried.length } } : {}),
    artifact: { mediaType: artifact.mediaType, digest: artifact.digest, size: artifact.size },
    dependencies: sub.locked,
  };
}

/** Every chart of the spec, in order; one index fetch per repository for the whole run. */
export async function lockCharts(specs: readonly ChartSpec[], ctx: ChartLockContext, onChart?: (c: LockedChart) => void): Promise<LockedChart[]> {
  const resolver = new Resolver(ctx);
  const out: LockedChart[] = [];
  for (const spec of specs) {
    const c = await lockChart(spec, ctx, resolver);
    onChart?.(c);
    out.push(c);
  }
  return out;
}
