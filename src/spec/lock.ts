// airlock.lock: every image of the spec pinned to a digest. Deterministic, sorted YAML that reads
// well in a diff; `pack` trusts only the lock, never a tag.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml, stringify } from 'yaml';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { parseDigest, type Digest } from '../core/digest.ts';
import { formatReference, isValidTag, parseReference } from '../core/reference.ts';
import { formatPlatform } from '../core/platform.ts';
import { REFERRER_FOUND, REFERRER_KINDS, type ReferrerFound, type ReferrerKind } from '../core/referrers.ts';
import { API_VERSION, compareStrings, type Spec } from './spec.ts';
import { diffFiles, formatLockedFile, parseLockedFiles, type LockedFile } from './locked-files.ts';

export type { LockedFile };

export interface LockedPlatform {
  platform: string;
  digest: Digest;
  /** Size of the platform's image manifest. */
  size: number;
}

export interface LockedImage {
  /** The normalised reference from the spec. */
  reference: string;
  /** What the tag points at upstream (an index or a manifest). */
  digest: Digest;
  mediaType: string;
  size: number;
  /** Unique bytes of everything carried for this image (manifests, configs, layers). */
  totalSize: number;
  /** For an index: the children chosen by the spec's platforms (all of them by default). */
  platforms?: LockedPlatform[];
  /**
   * Present when the spec's platforms leave out some of an index's children: the reduced index
   * airlock carries instead (same document with only the chosen manifests). Its digest differs.
   */
  bundled?: { digest: Digest; size: number };
  /**
   * What refers to the image (its root or a platform manifest it keeps) upstream: signatures,
   * attestations, SBOMs, found at lock (see LockedReferrer). Absent when none was found or looked for.
   */
  referrers?: LockedReferrer[];
}

/** A manifest that refers to an image: pack carries it (and its blobs), push puts it where clients look. */
export interface LockedReferrer {
  /** What it refers to: the image's root, one of its platform manifests, or another referrer. */
  subject: Digest;
  /** signature, attestation, sbom, artifact; `referrers-index` for the referrers tag schema's index itself. */
  kind: ReferrerKind;
  /** Its OCI artifactType (the config's media type for an image manifest without one), when known. */
  artifactType?: string;
  digest: Digest;
  mediaType: string;
  size: number;
  /**
   * `tag`: under `tag` (cosign's `sha256-<hex>.sig|.att|.sbom`, or the tag schema's `sha256-<hex>`);
   * `referrers`: listed by the registry's referrers API; `tag-schema`: listed by the tag schema's index.
   */
  found: ReferrerFound;
  tag?: string;
}

/** A chart dependency pinned: what it is, where its archive comes from, and its digest. */
export interface LockedChartDependency {
  /** The dependency's chart name. */
  name: string;
  alias?: string;
  /** The version used (exact). */
  version: string;
  /** As written in the parent's Chart.yaml: https://…, oci://…, file://…, or '' when vendored. */
  repository: string;
  /**
   * Where the archive is fetched from: an http(s) URL of the .tgz, `oci://REGISTRY/REPO:TAG@MANIFEST`,
   * or `file://PATH` (relative to airlock.yaml). Absent when the dependency is vendored.
   */
  source?: string;
  /** sha256 of the dependency's .tgz (absent for a vendored folder). */
  digest?: Digest;
  size?: number;
  condition?: string;
  tags?: string[];
  /** Already inside the parent chart's charts/ folder: carried as it is. */
  vendored: boolean;
  dependencies: LockedChartDependency[];
}

export interface LockedChart {
  name: string;
  /** The spec's repo or path, as written. */
  repo?: string;
  path?: string;
  /** The spec's version range, as written ('' = newest stable). */
  range: string;
  /** The version the range selected. */
  version: string;
  /** Where the chart archive is fetched from (see LockedChartDependency.source). */
  source: string;
  /** sha256 and size of the chart's .tgz as published (for a folder: as airlock packages it). */
  digest: Digest;
  size: number;
  /** Values files from the spec, as written. */
  values: string[];
  /** The chart's name in the bundle: `<source host>/charts/<name>:<version with + as _>`. */
  reference: string;
  /** The .tgz carried when airlock vendored missing dependencies into charts/ (else the upstream one). */
  archive?: { digest: Digest; size: number };
  /** The Helm OCI manifest carried in the bundle. */
  artifact: { mediaType: string; digest: Digest; size: number };
  dependencies: LockedChartDependency[];
}

export interface Lock {
  name: string;
  version: string;
  platforms: string[] | undefined;
  images: LockedImage[];
  /** Absent (or empty) when the spec has no charts. */
  charts?: LockedChart[];
  /** Absent (or empty) when the spec has no files (locked-files.ts). */
  files?: LockedFile[];
}

const HEADER = '# airlock.lock: every image and chart of airlock.yaml pinned to a digest.\n# Written by `airlock lock`; commit it beside airlock.yaml and do not edit it by hand.\n';

/** The lock as text: fixed key order, images sorted by reference. Same lock → same bytes. */
export function formatLock(lock: Lock): string {
  const images = [...lock.images].sort((a, b) => compareStrings(a.reference, b.reference));
  const doc = {
    apiVersion: API_VERSION,
    kind: 'Lock',
    metadata: { name: lock.name, version: lock.version },
    ...(lock.platforms ? { platforms: lock.platforms } : {}),
    images: images.map((i) => ({
      reference: i.reference,
      digest: i.digest,
      mediaType: i.mediaType,
      size: i.size,
      totalSize: i.totalSize,
      ...(i.platforms ? { platforms: i.platforms.map((p) => ({ platform: p.platform, digest: p.digest, size: p.size })) } : {}),
      ...(i.bundled ? { bundled: { digest: i.bundled.digest, size: i.bundled.size } } : {}),
      ...(i.referrers && i.referrers.length > 0 ? { referrers: sortReferrers(i.referrers).map(formatReferrer) } : {}),
    })),
    ...(lock.charts && lock.charts.length > 0 ? { charts: [...lock.charts].sort((a, b) => compareStrings(a.name, b.name)).map(formatChart) } : {}),
    ...(lock.files && lock.files.length > 0 ? { files: [...lock.files].sort((a, b) => compareStrings(a.name, b.name)).map(formatLockedFile) } : {}),
  };
  return HEADER + stringify(doc, { lineWidth: 0, indent: 2 });
}

/** Referrers in a fixed order: by subject, kind, tag, digest. */
export function sortReferrers(list: readonly LockedReferrer[]): LockedReferrer[] {
  return [...list].sort((a, b) => compareStrings(a.subject, b.subject) || compareStrings(a.kind, b.kind) || compareStrings(a.tag ?? '', b.tag ?? '') || compareStrings(a.digest, b.digest));
}

function formatReferrer(r: LockedReferrer): Record<string, unknown> {
  return {
    subject: r.subject,
    kind: r.kind,
    ...(r.artifactType !== undefined ? { artifactType: r.artifactType } : {}),
    digest: r.digest,
    mediaType: r.mediaType,
    size: r.size,
    found: r.found,
    ...(r.tag !== undefined ? { tag: r.tag } : {}),
  };
}

function formatChart(c: LockedChart): Record<string, unknown> {
  return {
    name: c.name,
    ...(c.repo !== undefined ? { repo: c.repo } : {}),
    ...(c.path !== undefined ? { path: c.path } : {}),
    range: c.range,
    version: c.version,
    source: c.source,
    digest: c.digest,
    size: c.size,
    values: [...c.values],
    reference: c.reference,
    ...(c.archive ? { archive: { digest: c.archive.digest, size: c.archive.size } } : {}),
    artifact: { mediaType: c.artifact.mediaType, digest: c.artifact.digest, size: c.artifact.size },
    dependencies: c.dependencies.map(formatDependency),
  };
}

function formatDependency(d: LockedChartDependency): Record<string, unknown> {
  return {
    name: d.name,
    ...(d.alias ? { alias: d.alias } : {}),
    version: d.version,
    repository: d.repository,
    ...(d.source !== undefined ? { source: d.source } : {}),
    ...(d.digest !== undefined ? { digest: d.digest } : {}),
    ...(d.size !== undefined ? { size: d.size } : {}),
    ...(d.condition ? { condition: d.condition } : {}),
    ...(d.tags && d.tags.length > 0 ? { tags: [...d.tags] } : {}),
    vendored: d.vendored,
    ...(d.dependencies.length > 0 ? { dependencies: d.dependencies.map(formatDependency) } : {}),
  };
}

export async function readLock(path: string): Promise<{ lock: Lock; text: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`lock file ${path} does not exist`, {
        code: 'LOCK_MISSING',
        hint: 'run `airlock lock` first, or pack with relock to lock and pack in one step',
      });
    }
    throw new UsageError(`cannot read lock file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return { lock: parseLock(text, path), text };
}

export function parseLock(text: string, path = 'airlock.lock'): Lock {
  const f = lockFields(path);
  const o = parseLockDocument(text, f);
  const meta = (o.metadata ?? {}) as Record<string, unknown>;
  const images = o.images;
  if (!Array.isArray(images)) return f.fail('images must be a list');
  const charts = parseLockedCharts(o.charts, f);
  const files = parseLockedFiles(o.files, f);
  return {
    name: String(meta.name ?? ''),
    version: String(meta.version ?? ''),
    platforms: Array.isArray(o.platforms) ? (o.platforms as unknown[]).map(String) : undefined,
    ...(charts ? { charts } : {}),
    ...(files ? { files } : {}),
    images: images.map((i: Record<string, unknown>, n) => parseLockedImage(i, `images[${n}]`, f)),
  };
}

/** Readers of a lock's fields that fail naming the lock file and the field. */
export interface LockFields {
  fail(msg: string): never;
  num(v: unknown, what: string): number;
  dig(v: unknown, what: string): Digest;
  str(v: unknown, what: string): string;
  optStr(v: unknown, what: string): string | undefined;
}

function lockFields(path: string): LockFields {
  const fail = (msg: string): never => {
    throw new UsageError(`${path}: ${msg}`, { code: 'LOCK_INVALID', hint: 'regenerate it with `airlock lock`' });
  };
  const str = (v: unknown, what: string): string => (typeof v === 'string' ? v : fail(`${what} must be a string`));
  return {
    fail,
    num: (v, what) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(`${what} must be a non-negative integer`)),
    dig: (v, what) => {
      if (typeof v !== 'string') return fail(`${what} must be a digest`);
      try {
        return parseDigest(v, what);
      } catch (e) {
        return fail((e as Error).message);
      }
    },
    str,
    optStr: (v, what) => (v === undefined || v === null ? undefined : str(v, what)),
  };
}

/** The YAML, and that it is an airlock lock. */
function parseLockDocument(text: string, f: LockFields): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    return f.fail(`not valid YAML: ${(e as Error).message}`);
  }
  const o = raw as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || o.apiVersion !== API_VERSION || o.kind !== 'Lock') return f.fail(`not an airlock lock (expected apiVersion ${API_VERSION}, kind Lock)`);
  return o;
}

/** A reference that must parse; the error names where it is. */
function checkReference(reference: string, where: string, f: LockFields): void {
  try {
    parseReference(reference);
  } catch (e) {
    f.fail(`${where}: ${(e as Error).message}`);
  }
}

function parseLockedImage(i: Record<string, unknown>, where: string, f: LockFields): LockedImage {
  const { fail, num, dig } = f;
  if (typeof i?.reference !== 'string') return fail(`${where}.reference must be a string`);
  checkReference(i.reference, where, f);
  const img: LockedImage = {
    reference: i.reference,
    digest: dig(i.digest, `${where}.digest`),
    mediaType: typeof i.mediaType === 'string' ? i.mediaType : fail(`${where}.mediaType must be a string`),
    size: num(i.size, `${where}.size`),
    totalSize: num(i.totalSize, `${where}.totalSize`),
  };
  if (Array.isArray(i.platforms)) {
    img.platforms = (i.platforms as Record<string, unknown>[]).map((p, k) => ({
      platform: String(p.platform),
      digest: dig(p.digest, `${where}.platforms[${k}].digest`),
      size: num(p.size, `${where}.platforms[${k}].size`),
    }));
  }
  if (i.bundled && typeof i.bundled === 'object') {
    const b = i.bundled as Record<string, unknown>;
    img.bundled = { digest: dig(b.digest, `${where}.bundled.digest`), size: num(b.size, `${where}.bundled.size`) };
  }
  if (i.referrers !== undefined && i.referrers !== null) img.referrers = parseLockedReferrers(i.referrers, `${where}.referrers`, f);
  return img;
}

function parseLockedReferrers(raw: unknown, where: string, f: LockFields): LockedReferrer[] {
  const { fail, num, dig, str, optStr } = f;
  if (!Array.isArray(raw)) return fail(`${where} must be a list`);
  return raw.map((r: unknown, k) => {
    const w = `${where}[${k}]`;
    if (typeof r !== 'object' || r === null) return fail(`${w} must be a mapping`);
    const o = r as Record<string, unknown>;
    const kind = str(o.kind, `${w}.kind`);
    if (!REFERRER_KINDS.includes(kind as ReferrerKind)) fail(`${w}.kind must be one of ${REFERRER_KINDS.join(', ')}, got "${kind}"`);
    const found = str(o.found, `${w}.found`);
    if (!REFERRER_FOUND.includes(found as ReferrerFound)) fail(`${w}.found must be one of ${REFERRER_FOUND.join(', ')}, got "${found}"`);
    const ref: LockedReferrer = { subject: dig(o.subject, `${w}.subject`), kind: kind as ReferrerKind, digest: dig(o.digest, `${w}.digest`), mediaType: str(o.mediaType, `${w}.mediaType`), size: num(o.size, `${w}.size`), found: found as ReferrerFound };
    const artifactType = optStr(o.artifactType, `${w}.artifactType`);
    if (artifactType !== undefined) ref.artifactType = artifactType;
    const tag = optStr(o.tag, `${w}.tag`);
    if (tag !== undefined) ref.tag = tag;
    if (found === 'tag' && tag === undefined) fail(`${w} was found by tag but names none`);
    if (tag !== undefined && !isValidTag(tag)) fail(`${w}.tag "${tag.slice(0, 140)}" is not a tag`);
    return ref;
  });
}

function parseLockedCharts(charts: unknown, f: LockFields): LockedChart[] | undefined {
  if (charts === undefined || charts === null) return undefined;
  if (!Array.isArray(charts)) f.fail('charts must be a list');
  return (charts as Record<string, unknown>[]).map((c, n) => parseLockedChart(c, `charts[${n}]`, f));
}

function parseLockedChart(c: Record<string, unknown>, where: string, f: LockFields): LockedChart {
  const { fail, num, dig, str, optStr } = f;
  if (typeof c !== 'object' || c === null) return fail(`${where} must be a mapping`);
  const a = (c.artifact ?? {}) as Record<string, unknown>;
  const chart: LockedChart = {
    name: str(c.name, `${where}.name`),
    range: str(c.range ?? '', `${where}.range`),
    version: str(c.version, `${where}.version`),
    source: str(c.source, `${where}.source`),
    digest: dig(c.digest, `${where}.digest`),
    size: num(c.size, `${where}.size`),
    values: Array.isArray(c.values) ? c.values.map((v, k) => str(v, `${where}.values[${k}]`)) : [],
    reference: str(c.reference, `${where}.reference`),
    artifact: { mediaType: str(a.mediaType, `${where}.artifact.mediaType`), digest: dig(a.digest, `${where}.artifact.digest`), size: num(a.size, `${where}.artifact.size`) },
    dependencies: Array.isArray(c.dependencies) ? (c.dependencies as Record<string, unknown>[]).map((d, k) => parseLockedDependency(d, `${where}.dependencies[${k}]`, f)) : [],
  };
  const repo = optStr(c.repo, `${where}.repo`);
  if (repo !== undefined) chart.repo = repo;
  const path = optStr(c.path, `${where}.path`);
  if (path !== undefined) chart.path = path;
  if ((chart.repo === undefined) === (chart.path === undefined)) fail(`${where} (${chart.name}) needs exactly one of repo and path`);
  checkReference(chart.reference, where, f);
  if (c.archive && typeof c.archive === 'object') {
    const b = c.archive as Record<string, unknown>;
    chart.archive = { digest: dig(b.digest, `${where}.archive.digest`), size: num(b.size, `${where}.archive.size`) };
  }
  return chart;
}

function parseLockedDependency(d: Record<string, unknown>, where: string, f: LockFields): LockedChartDependency {
  const { fail, num, dig, str, optStr } = f;
  if (typeof d !== 'object' || d === null) return fail(`${where} must be a mapping`);
  const dep: LockedChartDependency = {
    name: str(d.name, `${where}.name`),
    version: str(d.version, `${where}.version`),
    repository: str(d.repository ?? '', `${where}.repository`),
    vendored: d.vendored === true,
    dependencies: [],
  };
  const alias = optStr(d.alias, `${where}.alias`);
  if (alias) dep.alias = alias;
  const source = optStr(d.source, `${where}.source`);
  if (source !== undefined) dep.source = source;
  if (d.digest !== undefined) dep.digest = dig(d.digest, `${where}.digest`);
  if (d.size !== undefined) dep.size = num(d.size, `${where}.size`);
  const condition = optStr(d.condition, `${where}.condition`);
  if (condition) dep.condition = condition;
  if (Array.isArray(d.tags)) dep.tags = d.tags.map((t, k) => str(t, `${where}.tags[${k}]`));
  if (!dep.vendored && (dep.source === undefined || dep.digest === undefined || dep.size === undefined)) fail(`${where} (${dep.name}) needs source, digest and size`);
  if (Array.isArray(d.dependencies)) dep.dependencies = (d.dependencies as Record<string, unknown>[]).map((x, k) => parseLockedDependency(x, `${where}.dependencies[${k}]`, f));
  return dep;
}

/** Differences between a spec and its lock, one readable line each; empty when they match. */
export function diffLock(spec: Spec, lock: Lock): string[] {
  const out: string[] = [];
  if (spec.name !== lock.name || spec.version !== lock.version) {
    out.push(`metadata is ${spec.name} ${spec.version} in the spec but ${lock.name} ${lock.version} in the lock`);
  }
  const want = spec.platforms?.map(formatPlatform).join(',') ?? '(all)';
  const have = lock.platforms?.join(',') ?? '(all)';
  if (want !== have) out.push(`platforms are ${want} in the spec but ${have} in the lock`);
  const specRefs = new Set(spec.images.map(formatReference));
  const lockRefs = new Set(lock.images.map((i) => i.reference));
  for (const r of specRefs) if (!lockRefs.has(r)) out.push(`${r} is in the spec but not in the lock`);
  for (const r of lockRefs) if (!specRefs.has(r)) out.push(`${r} is in the lock but no longer in the spec`);
  const locked = new Map((lock.charts ?? []).map((c) => [c.name, c]));
  for (const c of spec.charts) {
    const l = locked.get(c.name);
    if (!l) {
      out.push(`chart ${c.name} is in the spec but not in the lock`);
      continue;
    }
    locked.delete(c.name);
    const was = (x: { repo?: string | undefined; path?: string | undefined }): string => (x.repo !== undefined ? `repo ${x.repo}` : `path ${x.path}`);
    if (c.repo !== l.repo || c.path !== l.path) out.push(`chart ${c.name} comes from ${was(c)} in the spec but ${was(l)} in the lock`);
    if (c.version !== l.range) out.push(`chart ${c.name} asks for version "${c.version}" in the spec but "${l.range}" in the lock`);
    if (c.values.join('\n') !== l.values.join('\n')) out.push(`chart ${c.name} has values [${c.values.join(', ')}] in the spec but [${l.values.join(', ')}] in the lock`);
  }
  for (const name of locked.keys()) out.push(`chart ${name} is in the lock but no longer in the spec`);
  out.push(...diffFiles(spec.files ?? [], lock.files ?? []));
  return out;
}

