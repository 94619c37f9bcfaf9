// Charts end to end, as a user runs them: charts from a Helm repository (index.yaml over loopback
// HTTP), from an OCI registry, and from disk (with a file://, a repository and an oci://
// dependency, an alias, a condition, tags and a Chart.lock) go through lock → pack → verify →
// inspect → push, and the real helm pulls and renders them from the target registry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { parseLock, type LockedChart } from '../../src/spec/lock.ts';
import { copyFixtures, helmWithState, removeDir, setChartVersion, startChartRepo, type ChartRepoServer, type Helm } from '../helm/support.ts';

const execFileAsync = promisify(execFile);
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

async function manifestDigest(reg: RunningRegistry, repo: string, tag: string): Promise<string | null> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT } });
  return res.status === 200 ? res.headers.get('docker-content-digest') : null;
}

/** Names of the files in a .tgz (ustar names, good enough for helm's archives). */
function tarNames(tgz: Buffer): string[] {
  const tar = gunzipSync(tgz);
  const names: string[] = [];
  for (let pos = 0; pos + 512 <= tar.length; ) {
    const h = tar.subarray(pos, pos + 512);
    if (h.every((x) => x === 0)) break;
    const size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/, '');
    const prefix = h.toString('latin1', 257, 263) === 'ustar\0' ? h.toString('utf8', 345, 500).replace(/\0.*$/, '') : '';
    if (h[156] !== 0x78 && h[156] !== 0x67) names.push(prefix ? `${prefix}/${name}` : name);
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

describe('charts: lock, pack, verify, inspect, push, helm pull', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let repo: ChartRepoServer;
  let dir: string;
  let work: string;
  let helm: Helm;
  const upstream: Record<string, Buffer> = {};
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '', XDG_RUNTIME_DIR: '' });
  const spec = (): string => join(work, 'airlock.yaml');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-charts-'));
    work = join(dir, 'work');
    [src, dst, repo] = await Promise.all([startRegistry(), startRegistry(), startChartRepo(join(dir, 'repo'))]);
    helm = helmWithState(join(dir, 'helm'));
    await copyFixtures(work, ['shop', 'common', 'redis', 'postgres', 'frontend', 'backend'], { HTTP_REPO: repo.url, OCI_REPO: `oci://${src.host}/charts` });

    // A Helm repository with several versions of redis (relative URLs in index.yaml, as helm writes them).
    for (const v of ['1.2.0', '1.2.3', '1.3.0', '2.0.0-rc.1']) {
      await setChartVersion(join(work, 'redis'), v);
      await helm.run(['package', join(work, 'redis'), '-d', repo.dir]);
    }
    await helm.run(['repo', 'index', repo.dir]);
    // postgres in an OCI registry, one version with build metadata (tag 3.1.1_build.7).
    const pgOut = join(dir, 'pg');
    for (const v of ['3.0.0', '3.1.0', '3.1.1+build.7', '3.2.0-beta.1']) {
      await setChartVersion(join(work, 'postgres'), v);
      await helm.run(['package', join(work, 'postgres'), '-d', pgOut]);
      await helm.run(['push', join(pgOut, `postgres-${v}.tgz`), `oci://${src.host}/charts`, '--plain-http']);
    }
    upstream.postgres = await readFile(join(pgOut, 'postgres-3.1.1+build.7.tgz'));
    // frontend vendors its dependency (helm dependency build), then is published.
    await helm.run(['repo', 'add', 'local', repo.url]);
    await helm.run(['dependency', 'build', join(work, 'frontend')]);
    for (const v of ['0.2.0', '1.0.0', '0.3.0']) {
      await setChartVersion(join(work, 'frontend'), v);
      await helm.run(['package', join(work, 'frontend'), '-d', repo.dir]);
    }
    // backend is published without its dependencies (helm package refuses that, tar does not):
    // airlock has to vendor them.
    await execFileAsync('tar', ['-czf', join(repo.dir, 'backend-2.0.0.tgz'), '-C', work, 'backend']);
    await helm.run(['repo', 'index', repo.dir]);
    upstream.frontend = await readFile(join(repo.dir, 'frontend-0.3.0.tgz'));
    upstream.redis = await readFile(join(repo.dir, 'redis-1.2.3.tgz'));

    await writeFile(
      spec(),
      [
        'apiVersion: airlock.dev/v1alpha1',
        'kind: Bundle',
        'metadata: {name: shop-charts, version: 1.0.0}',
        'charts:',
        '  - name: shop',
        '    path: ./shop',
        '    values: [values-airgap.yaml]',
        '  - name: frontend',
        `    repo: ${repo.url}`,
        '    version: ">=0.1.0 <1.0.0"',
        '  - name: postgres',
        `    repo: oci://${src.host}/charts`,
        '    version: ^3.0.0',
        '  - name: redis',
        `    repo: ${repo.url}/`,
        '    version: ~1.2.0',
        '  - name: backend',
        `    repo: ${repo.url}`,
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), repo?.close()]);
    if (!process.env.KEEP) await removeDir(dir);
  });

  const lockedCharts = async (): Promise<Map<string, LockedChart>> => {
    const lock = parseLock(await readFile(join(work, 'airlock.lock'), 'utf8'));
    return new Map((lock.charts ?? []).map((c) => [c.name, c]));
  };

  test('lock pins each chart and every dependency, and is deterministic', async () => {
    const r = await airlock(['lock', '-f', spec()], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /frontend\s+0\.3\.0/);
    assert.match(r.stdout, /5 charts/);
    const charts = await lockedCharts();
    assert.deepEqual([...charts.keys()], ['backend', 'frontend', 'postgres', 'redis', 'shop']);

    const redis = charts.get('redis')!;
    assert.equal(redis.version, '1.2.3', '~1.2.0 selects the newest 1.2.x, not 1.3.0 or a prerelease');
    assert.equal(redis.digest, sha256(upstream.redis!));
    assert.equal(redis.source, `${repo.url}/redis-1.2.3.tgz`);
    assert.equal(redis.reference, `${repo.host}/charts/redis:1.2.3`);

    const frontend = charts.get('frontend')!;
    assert.equal(frontend.version, '0.3.0');
    assert.equal(frontend.digest, sha256(upstream.frontend!));
    assert.equal(frontend.archive, undefined, 'dependencies vendored upstream: the archive is carried as it is');
    // helm package stores vendored subcharts as folders (charts/redis/…): no archive digest of their own.
    assert.deepEqual(frontend.dependencies.map((d) => [d.name, d.version, d.vendored, d.source]), [['redis', '1.3.0', true, undefined]]);

    const postgres = charts.get('postgres')!;
    assert.equal(postgres.version, '3.1.1+build.7', '^3.0.0 takes build metadata versions but not 3.2.0-beta.1');
    assert.equal(postgres.reference, `${src.host}/charts/postgres:3.1.1_build.7`);
    const pgManifest = await manifestDigest(src, 'charts/postgres', '3.1.1_build.7');
    assert.equal(postgres.source, `oci://${src.host}/charts/postgres:3.1.1_build.7@${pgManifest}`);
    assert.equal(postgres.artifact.digest, pgManifest, 'an OCI chart keeps its registry manifest');
    assert.equal(postgres.digest, sha256(upstream.postgres!));

    const backend = charts.get('backend')!;
    assert.equal(backend.digest, sha256(await readFile(join(repo.dir, 'backend-2.0.0.tgz'))), 'the upstream archive is what is pinned');
    assert.ok(backend.archive && backend.archive.digest !== backend.digest, 'its dependencies are missing upstream: airlock vendors them');
    assert.deepEqual(backend.dependencies.map((d) => `${d.name} ${d.version} ${d.vendored}`), ['redis 1.2.0 false', 'postgres 3.1.1+build.7 false']);

    const shop = charts.get('shop')!;
    assert.equal(shop.version, '1.4.2');
    assert.equal(shop.path, './shop');
    assert.equal(shop.source, 'file://shop');
    assert.equal(shop.reference, 'localhost/charts/shop:1.4.2');
    assert.deepEqual(shop.values, ['values-airgap.yaml']);
    assert.ok(shop.archive, 'airlock vendors the dependencies of a chart folder');
    const deps = new Map(shop.dependencies.map((d) => [d.alias ?? d.name, d]));
    assert.deepEqual([...deps.keys()], ['common', 'cache', 'postgres']);
    assert.equal(deps.get('common')!.source, 'file://common');
    assert.equal(deps.get('common')!.vendored, false);
    assert.equal(deps.get('cache')!.name, 'redis');
    assert.equal(deps.get('cache')!.version, '1.2.0', 'Chart.lock pins 1.2.0 although ~1.2.0 would select 1.2.3');
    assert.equal(deps.get('cache')!.condition, 'cache.enabled');
    assert.equal(deps.get('cache')!.digest, sha256(await readFile(join(repo.dir, 'redis-1.2.0.tgz'))));
    assert.equal(deps.get('postgres')!.version, '3.0.0');
    assert.deepEqual(deps.get('postgres')!.tags, ['database']);
    assert.match(deps.get('postgres')!.source!, new RegExp(`^oci://${src.host}/charts/postgres:3\\.0\\.0@sha256:`));

    const text = await readFile(join(work, 'airlock.lock'), 'utf8');
    const again = await airlock(['lock', '-f', spec()], { env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await readFile(join(work, 'airlock.lock'), 'utf8'), text, 'same lock twice');
  });

  test('pack twice gives the same bytes; verify passes; inspect lists the charts', async () => {
    const a = await airlock(['pack', '-f', spec(), '-o', join(dir, 'a.tar'), '--json'], { env: env() });
    assert.equal(a.code, 0, a.stderr);
    assert.equal(resultOf(a.stdout).charts, 5);
    const b = await airlock(['pack', '-f', spec(), '-o', join(dir, 'b.tar')], { env: { ...env(), AIRLOCK_CACHE: join(dir, 'cache2') } });
    assert.equal(b.code, 0, b.stderr);
    assert.equal(sha256(await readFile(join(dir, 'a.tar'))), sha256(await readFile(join(dir, 'b.tar'))), 'same lock, same bundle bytes');

    const v = await airlock(['verify', join(dir, 'a.tar')]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const i = await airlock(['inspect', join(dir, 'a.tar'), '--json']);
    assert.equal(i.code, 0, i.stderr);
    const info = resultOf(i.stdout);
    assert.deepEqual(info.images, []);
    assert.deepEqual((info.charts as { name: string; version: string }[]).map((c) => `${c.name} ${c.version}`).sort(), ['backend 2.0.0', 'frontend 0.3.0', 'postgres 3.1.1+build.7', 'redis 1.2.3', 'shop 1.4.2']);
    const human = await airlock(['inspect', join(dir, 'a.tar')]);
    assert.match(human.stdout, /CHART\s+VERSION/);
    assert.match(human.stdout, /0 images, 5 charts/);
  });

  test('push: helm pulls the upstream bytes back and renders the charts from the target', async () => {
    const r = await airlock(['push', join(dir, 'a.tar'), `${dst.host}/mirror`], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`helm pull oci://${dst.host}/mirror/charts/frontend --version 0\\.3\\.0`));
    assert.match(r.stdout, /helm pull .*postgres --version 3\.1\.1\+build\.7/);

    const out = join(dir, 'pulled');
    await mkdir(out, { recursive: true });
    for (const [name, version] of [['frontend', '0.3.0'], ['postgres', '3.1.1+build.7'], ['redis', '1.2.3'], ['shop', '1.4.2']] as const) {
      await helm.run(['pull', `oci://${dst.host}/mirror/charts/${name}`, '--version', version, '--plain-http', '-d', out]);
    }
    assert.ok((await readFile(join(out, 'frontend-0.3.0.tgz'))).equals(upstream.frontend!), 'frontend: the upstream .tgz, byte for byte');
    assert.ok((await readFile(join(out, 'postgres-3.1.1+build.7.tgz'))).equals(upstream.postgres!), 'postgres: the upstream .tgz');
    assert.ok((await readFile(join(out, 'redis-1.2.3.tgz'))).equals(upstream.redis!), 'redis: the upstream .tgz');
    assert.equal(await manifestDigest(dst, 'mirror/charts/postgres', '3.1.1_build.7'), await manifestDigest(src, 'charts/postgres', '3.1.1_build.7'), 'OCI chart manifest digest unchanged');

    const shop = tarNames(await readFile(join(out, 'shop-1.4.2.tgz')));
    assert.ok(shop.includes('shop/charts/redis-1.2.0.tgz') && shop.includes('shop/charts/postgres-3.0.0.tgz') && shop.includes('shop/charts/common-0.1.0.tgz'), shop.join(' '));
    assert.ok(!shop.some((n) => n.endsWith('README.md') || n.includes('/ci/') || n.includes('.scratch')), `.helmignore honoured: ${shop.join(' ')}`);

    const rendered = (await helm.run(['template', 'web', `oci://${dst.host}/mirror/charts/shop`, '--version', '1.4.2', '--plain-http'])).stdout;
    assert.match(rendered, /name: web-shop/);
    assert.match(rendered, /app.kubernetes.io\/name: shop/, 'the library subchart (file://) is there');
    assert.match(rendered, /name: web-cache[\s\S]*chart-version: "1\.2\.0"/, 'redis under its alias, 1.2.0 as Chart.lock pins it');
    assert.match(rendered, /name: web-postgres[\s\S]*chart-version: "3\.0\.0"/);
    assert.doesNotMatch(rendered, /must-not-render/);
    const noCache = (await helm.run(['template', 'web', `oci://${dst.host}/mirror/charts/shop`, '--version', '1.4.2', '--plain-http', '--set', 'cache.enabled=false'])).stdout;
    assert.doesNotMatch(noCache, /web-cache/, 'the condition still switches the subchart off');
    const front = (await helm.run(['template', 'f', join(out, 'frontend-0.3.0.tgz')])).stdout;
    assert.match(front, /name: f-redis[\s\S]*chart-version: "1\.3\.0"/);
    const back = (await helm.run(['template', 'b', `oci://${dst.host}/mirror/charts/backend`, '--version', '2.0.0', '--plain-http'])).stdout;
    assert.match(back, /name: b-backend/);
    assert.match(back, /name: b-redis[\s\S]*chart-version: "1\.2\.0"/, 'a repository chart gets its missing dependencies vendored');
    assert.match(back, /name: b-postgres[\s\S]*chart-version: "3\.1\.1\+build\.7"/);
  });

  test('pack notices a chart folder that changed since the lock', async () => {
    await writeFile(join(work, 'shop', 'values.yaml'), 'replicas: 3\n', { flag: 'a' });
    const r = await airlock(['pack', '-f', spec(), '-o', join(dir, 'c.tar')], { env: env() });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /chart shop 1\.4\.2: shop changed since airlock\.lock was written/);
    assert.match(r.stderr, /hint: run `airlock lock`/);
    await assert.rejects(access(join(dir, 'c.tar')), { code: 'ENOENT' }, 'no bundle written');
  });

  describe('bad input: a clear error, a non-zero exit, nothing written', { concurrency: true }, () => {
    const attempt = async (name: string, charts: string[], files: Record<string, string> = {}) => {
      const d = join(dir, 'bad', name);
      await mkdir(d, { recursive: true });
      for (const [f, text] of Object.entries(files)) {
        await mkdir(join(d, f, '..'), { recursive: true });
        await writeFile(join(d, f), text);
      }
      await writeFile(join(d, 'airlock.yaml'), ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: bad}', 'charts:', ...charts, ''].join('\n'));
      const r = await airlock(['lock', '-f', join(d, 'airlock.yaml')], { env: env() });
      await assert.rejects(access(join(d, 'airlock.lock')), { code: 'ENOENT' }, 'no lock written');
      assert.deepEqual((await readdir(d)).filter((f) => f.includes('.tmp')), []);
      return r;
    };

    test('a chart the repository does not have names the chart, the repository and what it has', async () => {
      const r = await attempt('no-chart', ['  - name: nope', `    repo: ${repo.url}`, '    version: ^1.0.0']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`chart "nope" is not in the repository ${repo.url.replace(/[.]/g, '\\.')} \\(it has: backend, frontend, redis\\)`));
    });

    test('a range no version satisfies lists the versions available', async () => {
      const r = await attempt('no-version', ['  - name: redis', `    repo: ${repo.url}`, '    version: ">=5.0.0"']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /no version of chart "redis" in .* satisfies ">=5\.0\.0" \(available: 2\.0\.0-rc\.1, 1\.3\.0, 1\.2\.3, 1\.2\.0\)/);
      const oci = await attempt('no-oci-version', ['  - name: postgres', `    repo: oci://${src.host}/charts`, '    version: 9.9.9']);
      assert.equal(oci.code, 3, oci.stderr);
      assert.match(oci.stderr, /chart "postgres" version 9\.9\.9 is not in oci:\/\/.*charts\/postgres \(available: 3\.2\.0-beta\.1, 3\.1\.1\+build\.7, 3\.1\.0, 3\.0\.0\)/);
    });

    test('a dependency that cannot be found names the chart and the dependency', async () => {
      const r = await attempt('no-dep', ['  - name: app', '    path: app'], {
        'app/Chart.yaml': `apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: ghost\n    version: ^1.0.0\n    repository: ${repo.url}\n`,
      });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /chart app → dependency ghost: chart "ghost" is not in the repository/);
      const named = await attempt('dep-repo-name', ['  - name: app', '    path: app'], {
        'app/Chart.yaml': 'apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: redis\n    version: ^1.0.0\n    repository: "@local"\n',
      });
      assert.equal(named.code, 2, named.stderr);
      assert.match(named.stderr, /repository "@local" names a repository from helm's local list/);
      assert.match(named.stderr, /hint: write the repository's URL/);
    });

    test('an unreadable Chart.yaml is named', async () => {
      const r = await attempt('bad-yaml', ['  - name: app', '    path: app'], { 'app/Chart.yaml': 'apiVersion: v2\nname: app\nversion: [1.0\n' });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /app.*Chart\.yaml: not valid YAML/);
      const missing = await attempt('no-chart-yaml', ['  - name: app', '    path: app'], { 'app/values.yaml': 'a: 1\n' });
      assert.equal(missing.code, 3, missing.stderr);
      assert.match(missing.stderr, /has no Chart\.yaml: it is not a helm chart folder/);
    });
  });
});
