// charts: in airlock.yaml and airlock.lock — what a user writes, what is refused and how, and a
// lock that reads back exactly and tells a stale spec apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpec } from '../../src/spec/spec.ts';
import { diffLock, formatLock, parseLock, type Lock, type LockedChart } from '../../src/spec/lock.ts';
import { UsageError } from '../../src/core/errors.ts';

const HEAD = 'apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: shop, version: 1.0.0}\n';
const D = (c: string) => `sha256:${c.repeat(64)}` as const;

test('spec: charts alone are enough; entries are validated and sorted by name', () => {
  const spec = parseSpec(`${HEAD}charts:
  - name: web
    path: ./charts/web
  - name: db
    repo: oci://registry.example.test/charts/
    version: ">=1.4.0 <2.0.0"
  - name: cache
    repo: https://charts.example.test
    version: 1.10
    values: [values-airgap.yaml, more.yaml]
`);
  assert.deepEqual(spec.images, []);
  assert.deepEqual(spec.charts.map((c) => c.name), ['cache', 'db', 'web']);
  assert.deepEqual(spec.charts[0], { name: 'cache', repo: 'https://charts.example.test', version: '1.10', values: ['values-airgap.yaml', 'more.yaml'] });
  assert.equal(spec.charts[1]!.repo, 'oci://registry.example.test/charts', 'trailing slash dropped');
  assert.deepEqual(spec.charts[2], { name: 'web', path: './charts/web', version: '', values: [] });
});

test('spec: chart errors name the entry and say what is expected', () => {
  const cases: [string, RegExp][] = [
    ['charts: []', /images must be a non-empty list of image references \(or list charts\)/],
    ['charts:\n  - repo: https://x.test', /charts\[0\] needs a name/],
    ['charts:\n  - name: web', /charts\[0\] \(web\) needs exactly one of repo .* and path/],
    ['charts:\n  - {name: web, path: a, repo: "https://x.test"}', /needs exactly one of repo/],
    ['charts:\n  - {name: web, repo: "ftp://x.test"}', /charts\[0\] \(web\): repo must be an https:\/\/ chart repository URL or an oci:\/\/REGISTRY\/PATH/],
    ['charts:\n  - {name: web, repo: "https://x.test", version: "latest"}', /charts\[0\] \(web\): version "latest" is not a semver range/],
    ['charts:\n  - {name: Web, path: a}', /chart name "Web" must be lowercase/],
    ['charts:\n  - {name: web, path: a, versions: "1"}', /charts\[0\] \(web\): unknown key "versions"/],
    ['charts:\n  - {name: web, path: a}\n  - {name: web, path: b}', /charts\[1\] \(web\): the chart web is listed twice \(also charts\[0\]\)/],
    ['charts:\n  - {name: web, path: a, values: [1]}', /values must be a list of values files/],
    ['charts: {web: a}', /charts must be a list/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseSpec(HEAD + text, 'app/airlock.yaml'),
      (e: unknown) => e instanceof UsageError && e.code === 'SPEC_INVALID' && e.message.startsWith('app/airlock.yaml: ') && re.test(e.message),
      text,
    );
  }
});

const chart = (over: Partial<LockedChart> = {}): LockedChart => ({
  name: 'shop',
  path: './charts/shop',
  range: '^1.4.0',
  version: '1.4.2',
  source: 'file://charts/shop',
  digest: D('a'),
  size: 900,
  values: ['values-airgap.yaml'],
  reference: 'localhost/charts/shop:1.4.2',
  archive: { digest: D('b'), size: 2000 },
  artifact: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('c'), size: 700 },
  dependencies: [
    {
      name: 'redis',
      alias: 'cache',
      version: '1.2.0',
      repository: 'https://charts.example.test',
      source: 'https://charts.example.test/redis-1.2.0.tgz',
      digest: D('d'),
      size: 500,
      condition: 'cache.enabled',
      tags: ['backend'],
      vendored: false,
      dependencies: [{ name: 'common', version: '0.1.0', repository: '', vendored: true, dependencies: [] }],
    },
  ],
  ...over,
});

test('lock: charts are written sorted, deterministically, and read back exactly', () => {
  const db: LockedChart = { ...chart({ name: 'db', reference: 'registry.example.test/charts/db:3.1.1_build.7', version: '3.1.1+build.7', dependencies: [], values: [] }), path: undefined, repo: 'oci://registry.example.test/charts', source: `oci://registry.example.test/charts/db:3.1.1_build.7@${D('e')}` };
  delete db.path;
  delete db.archive;
  const lock: Lock = { name: 'shop', version: '1.0.0', platforms: undefined, images: [], charts: [chart(), db] };
  const text = formatLock(lock);
  assert.equal(formatLock({ ...lock, charts: [db, chart()] }), text, 'input order does not matter');
  assert.ok(text.indexOf('- name: db') < text.indexOf('- name: shop'));
  const back = parseLock(text);
  assert.deepEqual(back.charts, [db, chart()]);
  assert.equal(formatLock(back), text, 'round trip');
  assert.match(text, /version: 3\.1\.1\+build\.7/);
  // A lock without charts is written as before: no charts key at all.
  assert.doesNotMatch(formatLock({ ...lock, charts: [] }), /charts:/);
});

test('lock: a damaged chart entry is a clear error', () => {
  const text = formatLock({ name: 'shop', version: '1.0.0', platforms: undefined, images: [], charts: [chart()] });
  assert.throws(() => parseLock(text.replace(`digest: ${D('a')}`, 'digest: sha256:nothex')), (e: unknown) => e instanceof UsageError && e.code === 'LOCK_INVALID' && /charts\[0\]\.digest/.test(e.message));
  assert.throws(() => parseLock(text.replace(/^ +source: https:.*\n/m, '')), (e: unknown) => e instanceof UsageError && /dependencies\[0\] \(redis\) needs source, digest and size/.test(e.message));
});

test('diffLock: a chart added, removed, moved or re-ranged makes the lock stale', () => {
  const lock: Lock = { name: 'shop', version: '1.0.0', platforms: undefined, images: [], charts: [chart()] };
  const spec = (body: string) => parseSpec(`${HEAD}charts:\n${body}`);
  assert.deepEqual(diffLock(spec('  - {name: shop, path: ./charts/shop, version: ^1.4.0, values: [values-airgap.yaml]}'), lock), []);
  assert.deepEqual(diffLock(spec('  - {name: shop, path: ./charts/shop, version: ^1.5.0, values: [values-airgap.yaml]}'), lock), ['chart shop asks for version "^1.5.0" in the spec but "^1.4.0" in the lock']);
  assert.deepEqual(diffLock(spec('  - {name: shop, repo: "https://c.test", version: ^1.4.0, values: [values-airgap.yaml]}'), lock), ['chart shop comes from repo https://c.test in the spec but path ./charts/shop in the lock']);
  assert.deepEqual(diffLock(spec('  - {name: shop, path: ./charts/shop, version: ^1.4.0}'), lock), ['chart shop has values [] in the spec but [values-airgap.yaml] in the lock']);
  assert.deepEqual(diffLock(spec('  - {name: web, path: ./web}'), lock), ['chart web is in the spec but not in the lock', 'chart shop is in the lock but no longer in the spec']);
});
