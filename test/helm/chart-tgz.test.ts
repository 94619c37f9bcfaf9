// Chart archives in memory: what airlock writes is a valid, deterministic .tgz that gzip and helm's
// loader rules accept; what it reads is refused when it is not a chart archive or is unsafe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { IntegrityError, UsageError } from '../../src/core/errors.ts';
import { encodeHeader, END_OF_ARCHIVE, paddingFor } from '../../src/bundle/tar.ts';
import { MAX_CHART_FILE_BYTES, readChartTgz, storedGzip, writeChartTgz } from '../../src/helm/chart-tgz.ts';
import { loadChartArchive } from '../../src/helm/chart-load.ts';
import { materialize } from '../../src/helm/vendor.ts';

const run = promisify(execFile);

function tarOf(entries: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) parts.push(encodeHeader({ name: e.name, type: 'file', size: e.data.length }), e.data, Buffer.alloc(paddingFor(e.data.length)));
  return Buffer.concat([...parts, END_OF_ARCHIVE]);
}

test('written archives are sorted, deterministic, and valid gzip for every reader', async () => {
  const files = [
    { path: 'values.yaml', data: Buffer.from('a: 1\n') },
    { path: 'Chart.yaml', data: Buffer.from('apiVersion: v2\nname: demo\nversion: 1.0.0\n') },
    { path: `templates/${'long-name-'.repeat(12)}.yaml`, data: Buffer.from('kind: ConfigMap\n') },
    { path: 'files/big.bin', data: Buffer.alloc(200_000, 7) },
  ];
  const a = writeChartTgz('demo', files);
  assert.ok(a.equals(writeChartTgz('demo', [...files].reverse())), 'input order does not matter');
  const back = readChartTgz(a, 'demo.tgz');
  assert.equal(back.root, 'demo');
  assert.deepEqual(back.files.map((f) => f.path), [...files.map((f) => f.path)].sort());
  assert.ok(back.files.find((f) => f.path === 'files/big.bin')!.data.equals(files[3]!.data));
  const dir = await mkdtemp(join(tmpdir(), 'airlock-chart-tgz-'));
  try {
    await writeFile(join(dir, 'demo.tgz'), a);
    await run('gzip', ['-t', join(dir, 'demo.tgz')]);
    const { stdout } = await run('tar', ['-tzf', join(dir, 'demo.tgz')]);
    assert.deepEqual(stdout.trim().split('\n'), back.files.map((f) => `demo/${f.path}`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal(storedGzip(Buffer.alloc(0)).length, 10 + 5 + 8, 'an empty body is one empty final block');
});

test('archives that are not charts, or unsafe, are refused with the archive named', () => {
  const bad = (bytes: Buffer, re: RegExp) =>
    assert.throws(() => loadChartArchive(bytes, 'shop-1.0.0.tgz'), (e: unknown) => (e instanceof IntegrityError || e instanceof UsageError) && e.message.startsWith('shop-1.0.0.tgz') && re.test(e.message));
  bad(Buffer.from('not gzip'), /not a gzip-compressed tar archive/);
  bad(gzipSync(tarOf([{ name: 'shop/../../etc/passwd', data: Buffer.from('x') }])), /points outside the chart/);
  bad(gzipSync(tarOf([{ name: 'shop/values.yaml', data: Buffer.from('a: 1') }])), /Chart\.yaml file is missing/);
  bad(gzipSync(tarOf([{ name: 'shop/Chart.yaml', data: Buffer.from('name: shop\n') }])), /has no version/);
  bad(gzipSync(tarOf([{ name: 'shop/Chart.yaml', data: Buffer.from('apiVersion: v2\nname: shop\nversion: one\n') }])), /not a semantic version/);
  bad(gzipSync(tarOf([{ name: 'shop/Chart.yaml', data: Buffer.alloc(MAX_CHART_FILE_BYTES + 1, 0x20) }])), /more than helm's .*-byte limit for one chart file/);
  bad(gzipSync(tarOf([])), /holds no files/);
});

test('vendoring adds each missing dependency as charts/NAME-VERSION.tgz, recursively', () => {
  const chart = (name: string, extra = '') => writeChartTgz(name, [{ path: 'Chart.yaml', data: Buffer.from(`apiVersion: v2\nname: ${name}\nversion: 1.0.0\n${extra}`) }]);
  const leafBytes = chart('leaf');
  const midBytes = chart('mid', 'dependencies:\n  - {name: leaf, version: 1.0.0, repository: "https://c.test"}\n');
  const topBytes = chart('top', 'dependencies:\n  - {name: mid, version: 1.0.0, repository: "https://c.test"}\n');
  const leaf = { bytes: leafBytes, chart: loadChartArchive(leafBytes, 'leaf'), deps: [] };
  const mid = { bytes: midBytes, chart: loadChartArchive(midBytes, 'mid'), deps: [{ name: 'leaf', version: '1.0.0', node: leaf }] };
  const top = { bytes: topBytes, chart: loadChartArchive(topBytes, 'top'), deps: [{ name: 'mid', version: '1.0.0', node: mid }] };
  const out = loadChartArchive(materialize(top), 'top');
  assert.deepEqual(out.subcharts.map((s) => s.location), ['charts/mid-1.0.0.tgz']);
  assert.deepEqual(out.subcharts[0]!.chart.subcharts.map((s) => s.location), ['charts/leaf-1.0.0.tgz'], 'the dependency got its own dependency vendored first');
  assert.ok(materialize(top).equals(materialize(top)), 'deterministic');
  assert.equal(materialize(leaf), leafBytes, 'nothing missing: the archive is untouched');
});
