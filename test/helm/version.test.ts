// Which chart version a range selects: the rule every chart of a spec and every dependency is
// pinned by, so a user's ">=1.4.0 <2.0.0" means what it means in helm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import semver from 'semver';
import { describeVersions, isValidRange, normalizeRange, ociTagForVersion, parseChartVersion, satisfiesRange, selectVersion, versionFromOciTag } from '../../src/helm/version.ts';

const AVAILABLE = ['1.3.9', '1.4.0', '1.4.2', '1.5.0-rc.1', '1.9.1', '2.0.0', 'v2.1.0', '2.2', '3.0.0-beta.2', '0.9.0+build.4'];

test('ranges select the highest matching version, as helm does', () => {
  const cases: [string, string | undefined][] = [
    ['>=1.4.0 <2.0.0', '1.9.1'],
    ['>=1.4.0, <2.0.0', '1.9.1'], // helm separates AND-ed constraints with commas
    ['~1.4.0', '1.4.2'],
    ['^1.4.0', '1.9.1'],
    ['1.4.x', '1.4.2'],
    ['1.4.0', '1.4.0'], // an exact pin
    ['', '2.2'], // any stable version: "2.2" is 2.2.0 to helm, above v2.1.0
    ['*', '2.2'],
    ['>=1.5.0-rc.0 <1.6.0', '1.5.0-rc.1'], // a prerelease only when the range asks for one
    ['^1.5.0', '1.9.1'],
    ['^3.0.0-0', '3.0.0-beta.2'],
    ['^0.9.0', '0.9.0+build.4'],
    ['>=4.0.0', undefined],
    ['2.1.0', 'v2.1.0'],
  ];
  for (const [range, want] of cases) assert.equal(selectVersion(AVAILABLE, range), want, `range "${range}"`);
});

test('range syntax is checked before anything is fetched', () => {
  for (const ok of ['', '1.2.3', '^1', '~1.2', '>= 1.2, < 2', '1.2.x || 2.x']) assert.ok(isValidRange(ok), ok);
  for (const bad of ['latest', '>=>1', 'one']) assert.ok(!isValidRange(bad), bad);
  assert.equal(normalizeRange(' >=1.0.0,<2.0.0 '), '>=1.0.0 <2.0.0');
});

test('versions helm accepts: a leading v, and major or major.minor only', () => {
  assert.equal(parseChartVersion('v1.2.3')?.version, '1.2.3');
  assert.equal(parseChartVersion('1.2')?.version, '1.2.0');
  assert.equal(parseChartVersion('7')?.version, '7.0.0');
  assert.equal(parseChartVersion('1.2.3+build.5')?.build.join('.'), 'build.5');
  assert.equal(parseChartVersion('latest'), undefined);
});

test('OCI tags write "+" as "_" and read it back', () => {
  assert.equal(ociTagForVersion('1.2.3+build.5'), '1.2.3_build.5');
  assert.equal(versionFromOciTag('1.2.3_build.5'), '1.2.3+build.5');
  assert.equal(describeVersions(['1.0.0', '3.0.0', '2.0.0-rc.1']), '3.0.0, 2.0.0-rc.1, 1.0.0');
  assert.equal(describeVersions(Array.from({ length: 12 }, (_, i) => `1.${i}.0`), 3), '1.11.0, 1.10.0, 1.9.0 (9 more)');
});

test('property: the selected version satisfies the range and nothing higher does', () => {
  const version = fc.tuple(fc.nat(4), fc.nat(4), fc.nat(4)).map(([a, b, c]) => `${a}.${b}.${c}`);
  const range = fc.oneof(version.map((v) => `^${v}`), version.map((v) => `~${v}`), fc.tuple(version, version).map(([a, b]) => `>=${a} <${b}`));
  fc.assert(
    fc.property(fc.uniqueArray(version, { maxLength: 12 }), range, (list, r) => {
      const picked = selectVersion(list, r);
      const matching = list.filter((v) => semver.satisfies(v, r));
      if (picked === undefined) return matching.length === 0;
      return satisfiesRange(picked, r) && matching.every((v) => semver.lte(v, picked));
    }),
  );
});
