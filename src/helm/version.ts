// Chart versions and ranges. Helm reads them with Masterminds/semver, which is looser than npm's
// semver: "v1.2.3" and "1.2" are versions, ranges may separate their parts with commas. This maps
// helm's spelling onto the `semver` package once, so every caller agrees on what a range selects.
import { createRequire } from 'node:module';
import type { SemVer } from 'semver';

// Required on first use: loading semver (~50 files) is start-up time every image-only command
// would otherwise pay for reading airlock.yaml.
const require = createRequire(import.meta.url);
let loaded: typeof import('semver') | undefined;
function sv(): typeof import('semver') {
  return (loaded ??= require('semver') as typeof import('semver'));
}

/** A range as `semver` reads it: empty means "any stable version", commas become spaces (AND). */
export function normalizeRange(range: string | undefined): string {
  const r = (range ?? '').trim();
  if (r === '') return '*';
  return r.replace(/\s*,\s*/g, ' ');
}

export function isValidRange(range: string | undefined): boolean {
  return sv().validRange(normalizeRange(range), { loose: true }) !== null;
}

/** The semver value of a chart version, or undefined when helm would not read it as one either. */
export function parseChartVersion(version: string): SemVer | undefined {
  const v = version.trim();
  const exact = sv().parse(v, { loose: true });
  if (exact) return exact;
  // Masterminds accepts "1" and "1.2" (and a leading v) and fills in zeros.
  const m = /^v?(\d+)(?:\.(\d+))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.exec(v);
  if (!m) return undefined;
  return sv().parse(`${m[1]}.${m[2] ?? '0'}.0${m[3] ?? ''}${m[4] ?? ''}`) ?? undefined;
}

export function isValidChartVersion(version: string): boolean {
  return parseChartVersion(version) !== undefined;
}

/**
 * The version of `candidates` that `range` selects: a candidate spelled exactly like the range
 * wins (an exact pin), else the highest one satisfying it. Prereleases only match when the range
 * itself names a prerelease (npm semantics, close to helm's).
 */
export function selectVersion(candidates: readonly string[], range: string | undefined): string | undefined {
  const wanted = (range ?? '').trim();
  if (wanted !== '' && candidates.includes(wanted)) return wanted;
  const { Range } = sv();
  const r = new Range(normalizeRange(range), { loose: true });
  let best: { raw: string; v: SemVer } | undefined;
  for (const raw of candidates) {
    const v = parseChartVersion(raw);
    if (!v || !r.test(v)) continue;
    if (!best || sv().compare(v, best.v) > 0 || (sv().compare(v, best.v) === 0 && raw < best.raw)) best = { raw, v };
  }
  return best?.raw;
}

/** Does `version` satisfy `range`? (A range that does not parse satisfies nothing.) */
export function satisfiesRange(version: string, range: string | undefined): boolean {
  return selectVersion([version], range) !== undefined;
}

/** Highest first, for error messages that list what is available. */
export function sortVersionsDescending(versions: readonly string[]): string[] {
  const parsed = versions.map((raw) => ({ raw, v: parseChartVersion(raw) }));
  return parsed
    .sort((a, b) => {
      if (a.v && b.v) return sv().rcompare(a.v, b.v) || (a.raw < b.raw ? -1 : a.raw > b.raw ? 1 : 0);
      if (a.v) return -1;
      if (b.v) return 1;
      return a.raw < b.raw ? -1 : a.raw > b.raw ? 1 : 0;
    })
    .map((p) => p.raw);
}

/** "1.4.2, 1.4.1, … (12 more)": the versions a user could have meant. */
export function describeVersions(versions: readonly string[], max = 10): string {
  if (versions.length === 0) return 'none';
  const sorted = sortVersionsDescending(versions);
  const shown = sorted.slice(0, max).join(', ');
  return sorted.length > max ? `${shown} (${sorted.length - max} more)` : shown;
}

/** OCI tags cannot hold "+": helm pushes version 1.2.3+build as tag 1.2.3_build and reads it back. */
export function ociTagForVersion(version: string): string {
  return version.replaceAll('+', '_');
}

export function versionFromOciTag(tag: string): string {
  return tag.replaceAll('_', '+');
}
