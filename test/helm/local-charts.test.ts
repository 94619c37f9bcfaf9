// Charts from disk (a folder or a .tgz beside airlock.yaml) through lock and pack's staging, and
// the dependency mistakes a user makes, each refused with the chart and dependency named.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotFoundError, UsageError } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import { FileStore } from '../../src/content/file-store.ts';
import { readAllLimited } from '../../src/content/verify-stream.ts';
import { ChartHttpClient } from '../../src/helm/http-client.ts';
import { lockCharts } from '../../src/helm/lock-charts.ts';
import { stageChart } from '../../src/helm/stage-charts.ts';
import { ARTIFACT_ANNOTATION } from '../../src/helm/artifact.ts';
import { writeChartTgz } from '../../src/helm/chart-tgz.ts';
import { loadChartArchive } from '../../src/helm/chart-load.ts';
import type { ChartSpec } from '../../src/spec/spec.ts';
import { removeDir } from './support.ts';

const tgz = (name: string, version: string, extra = '', files: Record<string, string> = {}) =>
  writeChartTgz(name, [
    { path: 'Chart.yaml', data: Buffer.from(`apiVersion: v2\nname: ${name}\nversion: ${version}\n${extra}`) },
    ...Object.entries(files).map(([path, text]) => ({ path, data: Buffer.from(text) })),
  ]);

describe('charts from disk', () => {
  let dir: string;
  let http: ChartHttpClient;
  const ctx = () => ({ http, open: () => assert.fail('no registry is needed'), baseDir: dir });
  const spec = (over: Partial<ChartSpec>): ChartSpec => ({ name: 'app', path: 'app', version: '', values: [], ...over });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-local-charts-'));
    http = new ChartHttpClient({ credentials: { get: async () => undefined } });
    await writeFile(join(dir, 'app-1.2.0.tgz'), tgz('app', '1.2.0', '', { 'templates/cm.yaml': 'kind: ConfigMap\n' }));
    // A folder whose vendored subchart travels as it is, and a sibling folder it names with file://.
    await mkdir(join(dir, 'web', 'charts'), { recursive: true });
    await writeFile(
      join(dir, 'web', 'Chart.yaml'),
      'apiVersion: v2\nname: web\nversion: 0.5.0\ndependencies:\n  - {name: lib, version: ^1.0.0, repository: "file://../lib"}\n  - {name: vend, version: 2.0.0, repository: "https://charts.example.test"}\n',
    );
    await writeFile(join(dir, 'web', 'charts', 'vend-2.0.0.tgz'), tgz('vend', '2.0.0'));
    await mkdir(join(dir, 'lib'), { recursive: true });
    await writeFile(join(dir, 'lib', 'Chart.yaml'), 'apiVersion: v2\nname: lib\nversion: 1.1.0\ntype: library\n');
  });
  after(async () => {
    await http?.close();
    await removeDir(dir);
  });

  test('a .tgz is pinned by its digest and carried as it is; pack stages the artifact the lock names', async () => {
    const [locked] = await lockCharts([spec({ path: './app-1.2.0.tgz', version: '^1.0.0' })], ctx());
    assert.equal(locked!.version, '1.2.0');
    assert.equal(locked!.source, 'file://app-1.2.0.tgz');
    assert.equal(locked!.reference, 'localhost/charts/app:1.2.0');
    assert.equal(locked!.digest, digestOf(tgz('app', '1.2.0', '', { 'templates/cm.yaml': 'kind: ConfigMap\n' })));
    assert.equal(locked!.archive, undefined);
    const store = new FileStore(join(dir, 'cache'));
    const root = await stageChart(locked!, { ...ctx(), store });
    assert.equal(root.digest, locked!.artifact.digest);
    assert.equal(root.annotations?.[ARTIFACT_ANNOTATION], 'chart');
    assert.ok(await store.exists({ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: locked!.digest, size: locked!.size }), 'the .tgz is the layer');
  });

  test('a folder: file:// dependencies are packaged and vendored, vendored ones are kept', async () => {
    const [locked] = await lockCharts([spec({ name: 'web', path: 'web' })], ctx());
    assert.deepEqual(
      locked!.dependencies.map((d) => [d.name, d.version, d.vendored, d.source]),
      [
        ['lib', '1.1.0', false, 'file://lib'],
        ['vend', '2.0.0', true, undefined],
      ],
    );
    const store = new FileStore(join(dir, 'cache'));
    await stageChart(locked!, { ...ctx(), store });
    const carried = await readAllLimited(await store.fetch({ mediaType: 'x', digest: locked!.archive!.digest, size: locked!.archive!.size }), 1 << 20, 'web');
    assert.deepEqual(loadChartArchive(carried, 'web').subcharts.map((s) => s.location), ['charts/lib-1.1.0.tgz', 'charts/vend-2.0.0.tgz']);
  });

  test('mistakes are refused with the chart and the dependency named', async () => {
    const rejects = async (s: ChartSpec, files: Record<string, string>, check: (e: unknown) => boolean) => {
      for (const [f, text] of Object.entries(files)) {
        await mkdir(join(dir, f, '..'), { recursive: true });
        await writeFile(join(dir, f), text);
      }
      await assert.rejects(lockCharts([s], ctx()), check);
    };
    await rejects(spec({ name: 'other', path: 'app-1.2.0.tgz' }), {}, (e) => e instanceof UsageError && e.code === 'CHART_MISMATCH' && /chart other: app-1\.2\.0\.tgz holds the chart "app"/.test(e.message));
    await rejects(spec({ path: 'app-1.2.0.tgz', version: '^2.0.0' }), {}, (e) => e instanceof NotFoundError && /is version 1\.2\.0, which does not satisfy "\^2\.0\.0"/.test(e.message));
    await rejects(spec({ path: 'missing' }), {}, (e) => e instanceof NotFoundError && e.code === 'CHART_NOT_FOUND' && /missing does not exist/.test(e.message));
    await writeFile(join(dir, 'uses-file.tgz'), tgz('uses-file', '1.0.0', 'dependencies:\n  - {name: lib, version: "*", repository: "file://../lib"}\n'));
    await rejects(spec({ name: 'uses-file', path: 'uses-file.tgz' }), {}, (e) => e instanceof UsageError && e.code === 'CHART_DEPENDENCY_FILE' && /dependency lib: repository file:\/\/\.\.\/lib is a local path/.test(e.message));
    await rejects(spec({ name: 'norepo', path: 'norepo' }), { 'norepo/Chart.yaml': 'apiVersion: v2\nname: norepo\nversion: 1.0.0\ndependencies:\n  - {name: gone, version: "1"}\n' }, (e) => e instanceof NotFoundError && e.code === 'CHART_DEPENDENCY_NOT_FOUND' && /dependency gone: it has no repository and is not in the charts\/ folder of norepo/.test(e.message));
    await rejects(
      spec({ name: 'pinned', path: 'pinned' }),
      {
        'pinned/Chart.yaml': 'apiVersion: v2\nname: pinned\nversion: 1.0.0\ndependencies:\n  - {name: redis, version: ^2.0.0, repository: "https://charts.example.test"}\n',
        'pinned/Chart.lock': 'dependencies:\n  - {name: redis, version: 1.9.0, repository: "https://charts.example.test"}\ndigest: sha256:00\n',
      },
      (e) => e instanceof UsageError && e.code === 'CHART_LOCK_OUT_OF_SYNC' && /pins version 1\.9\.0, which does not satisfy "\^2\.0\.0"/.test(e.message) && /helm dependency update/.test(e.hint ?? ''),
    );
    await rejects(spec({ name: 'aliased', path: 'aliased' }), { 'aliased/Chart.yaml': 'apiVersion: v2\nname: aliased\nversion: 1.0.0\ndependencies:\n  - {name: redis, version: "1", repository: "alias:bitnami"}\n' }, (e) => e instanceof UsageError && e.code === 'CHART_DEPENDENCY_REPO_NAME');
  });
});
