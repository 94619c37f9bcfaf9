// Values as helm computes them, the values scan, annotations, and how optional images are told apart.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imagesFromAnnotations } from '../../src/discover/annotations.ts';
import { findSwitch, resolveChartValues, type ChartNode } from '../../src/discover/chart-values.ts';
import { chartFindings } from '../../src/discover/combine.ts';
import { extractImages } from '../../src/discover/extract.ts';
import { applySet, mergeValues, parseSetExpression } from '../../src/discover/set-values.ts';
import { scanChartValues } from '../../src/discover/values-scan.ts';
import { formatValuesPath } from '../../src/discover/values-path.ts';

function chart(name: string, defaults: Record<string, unknown>, extra: Partial<ChartNode> = {}): ChartNode {
  return { name, annotations: {}, dependencies: [], defaults, subcharts: [], source: name, ...extra };
}

describe('--set as helm reads it', () => {
  const table: [string, boolean, Record<string, unknown>][] = [
    ['a.b=c,d=1', false, { a: { b: 'c' }, d: 1 }],
    ['flag=true,off=False,n=null,zero=0,lead=012,f=1.5', false, { flag: true, off: false, n: null, zero: 0, lead: '012', f: '1.5' }],
    ['flag=true,num=42', true, { flag: 'true', num: '42' }],
    ['list={a,b,c}', false, { list: ['a', 'b', 'c'] }],
    ['servers[1].port=80', false, { servers: [null, { port: 80 }] }],
    ['nodeSelector.kubernetes\\.io/os=linux', false, { nodeSelector: { 'kubernetes.io/os': 'linux' } }],
    ['msg=a\\,b', false, { msg: 'a,b' }],
    ['empty=', false, { empty: '' }],
  ];
  for (const [expr, asString, want] of table) {
    it(`${asString ? '--set-string' : '--set'} ${expr}`, () => {
      const v: Record<string, unknown> = {};
      applySet(v, expr, asString);
      assert.deepEqual(v, want);
    });
  }
  it('bad expressions are usage errors naming the expression', () => {
    assert.throws(() => parseSetExpression('novalue'), /set value "novalue": key "novalue" has no "=value"/);
    assert.throws(() => parseSetExpression('a[x]=1'), /list index "x"/);
  });
  it('-f files merge map by map, later files win', () => {
    const v = mergeValues({ image: { repository: 'a', tag: '1' }, list: [1, 2] }, { image: { tag: '2' }, list: [3] });
    assert.deepEqual(v, { image: { repository: 'a', tag: '2' }, list: [3] });
  });
});

describe('resolveChartValues: helm coalescing, globals, conditions and tags', () => {
  const db = chart('db', { image: { registry: 'docker.io', repository: 'x/postgres', tag: '15.0' }, global: { imageRegistry: '', own: 'db' } });
  const cache = chart('cache', { image: { repository: 'x/redis', tag: '7' } });
  const root = chart(
    'shop',
    { global: { imageRegistry: '' }, db: { enabled: true, image: { tag: '15.6' } }, cache: { enabled: false }, tags: { extras: false }, drop: { me: 1 } },
    {
      subcharts: [db, cache, chart('extras', { image: { repository: 'x/extra', tag: '1' } })],
      dependencies: [
        { name: 'db', condition: 'db.enabled' },
        { name: 'cache', alias: 'kv', condition: 'kv.enabled,cache.enabled' },
        { name: 'extras', tags: ['extras'] },
      ],
    },
  );

  it('parent overrides win over subchart defaults; globals flow down; nulls delete', () => {
    const { top, charts } = resolveChartValues(root, { global: { imageRegistry: 'reg.internal' }, drop: null });
    const dbc = charts.find((c) => c.chartPath === 'shop/db')!;
    assert.deepEqual(dbc.values.image, { registry: 'docker.io', repository: 'x/postgres', tag: '15.6' });
    assert.deepEqual(dbc.values.global, { imageRegistry: 'reg.internal', own: 'db' });
    assert.equal('drop' in top, false);
    assert.deepEqual(dbc.prefix, ['db']);
  });

  it('conditions (first boolean wins, aliases name the values key) and tags switch subcharts off', () => {
    const { charts } = resolveChartValues(root, {});
    const state = Object.fromEntries(charts.map((c) => [c.chartPath, [c.enabled, c.switchPath]]));
    assert.deepEqual(state, {
      shop: [true, undefined],
      'shop/db': [true, undefined],
      'shop/kv': [false, 'cache.enabled'],
      'shop/extras': [false, 'tags.extras'],
    });
    const on = resolveChartValues(root, { kv: { enabled: true }, tags: { extras: true } }).charts;
    assert.deepEqual(on.map((c) => c.enabled), [true, true, true, true]);
  });

  it('findSwitch: the nearest enabled: false above a path', () => {
    const values = { metrics: { enabled: false, exporter: { enabled: true, image: { repository: 'x' } } }, sidecar: { image: 'y' } };
    assert.deepEqual(findSwitch(values, ['metrics', 'exporter', 'image']), ['metrics', 'enabled']);
    assert.equal(findSwitch(values, ['sidecar', 'image']), undefined);
    assert.equal(formatValuesPath(['a.b', 'c', 0, 'image']), 'a\\.b.c[0].image');
  });
});

describe('scanChartValues', () => {
  it('every image shape, global registry applied, subchart sections and global left to their charts', () => {
    const root = chart(
      'app',
      {
        global: { imageRegistry: 'mirror.internal' },
        image: { registry: 'docker.io', repository: 'acme/app', tag: '2.0', digest: '' },
        sidecar: { repository: 'quay.io/acme/sidecar', tag: 1.5 },
        worker: { image: 'acme/worker', tag: '3' },
        init: { image: { name: 'acme/init', tag: '4' } },
        helperImage: 'ghcr.io/acme/helper:5',
        extraArgs: ['--proxy-image=quay.io/acme/proxy:6'],
        pullPolicy: 'IfNotPresent',
        version: '1.2.3',
        address: 'db.acme.example:5432',
        labels: { release: 'stable:2024' },
        sub: { image: { repository: 'acme/sub', tag: '7' } },
      },
      { subcharts: [chart('sub', {})], appVersion: '9.9.9' },
    );
    const { charts } = resolveChartValues(root, {});
    const found = scanChartValues(charts[0]!).map((v) => [formatValuesPath(v.segments), v.reference]);
    assert.deepEqual(found, [
      ['image', 'mirror.internal/acme/app:2.0'],
      ['sidecar', 'quay.io/acme/sidecar:1.5'],
      // a repository naming no registry host of its own goes under the global registry too
      ['worker', 'mirror.internal/acme/worker:3'],
      ['init.image', 'mirror.internal/acme/init:4'],
      ['helperImage', 'ghcr.io/acme/helper:5'],
      ['extraArgs[0]', 'quay.io/acme/proxy:6'],
    ]);
    assert.deepEqual(scanChartValues(charts[1]!).map((v) => v.reference), ['mirror.internal/acme/sub:7']);
  });
});

describe('annotations', () => {
  it('helm.sh/images, artifacthub.io/images and images lists; broken ones are warnings', () => {
    const { images, warnings } = imagesFromAnnotations(
      {
        'helm.sh/images': '- name: app\n  image: quay.io/acme/app:1\n- name: dbg\n  image: quay.io/acme/dbg:2\n  condition: debug.enabled\n',
        'artifacthub.io/images': '- name: app\n  image: quay.io/acme/app:1\n  whitelisted: true\n',
        images: '- docker.io/acme/plain:3\n',
        'example.com/notes': 'image: not-a-list:1',
        'other/images': 'not: [a list',
      },
      'app',
    );
    assert.deepEqual(
      images.map((i) => [i.key, i.reference, i.condition]),
      [
        ['helm.sh/images', 'quay.io/acme/app:1', undefined],
        ['helm.sh/images', 'quay.io/acme/dbg:2', 'debug.enabled'],
        ['artifacthub.io/images', 'quay.io/acme/app:1', undefined],
        ['images', 'docker.io/acme/plain:3', undefined],
      ],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /chart app: annotation other\/images is not valid YAML/);
  });
});

describe('chartFindings: rendered, values-only (optional) and annotation images', () => {
  const root = chart(
    'shop',
    {
      image: { registry: 'docker.io', repository: 'acme/shop', tag: '1.0' },
      metrics: { enabled: false, image: { registry: 'docker.io', repository: 'acme/exporter', tag: '0.1' } },
      unused: { image: 'ghcr.io/acme/unused:9' },
      cache: { enabled: false },
    },
    {
      annotations: {
        'helm.sh/images': '- image: quay.io/acme/operand:2\n- image: quay.io/acme/debug:3\n  condition: debug.enabled\n',
        images: '- image: docker.io/acme/exporter:0.1\n- image: docker.io/acme/shop:1.0\n',
      },
      subcharts: [chart('cache', { image: { repository: 'acme/redis', tag: '7' } })],
      dependencies: [{ name: 'cache', condition: 'cache.enabled' }],
    },
  );
  const rendered = extractImages([{ object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web' }, spec: { containers: [{ name: 'w', image: 'acme/shop:1.0' }] } } }], { chart: 'shop' }).findings;
  const { findings } = chartFindings({ chart: 'shop', rendered, charts: resolveChartValues(root, { debug: { enabled: false } }).charts });
  const byRef = new Map(findings.map((f) => [f.reference, f]));

  it('a rendered image gains its values and annotation reasons and is required', () => {
    const shop = byRef.get('docker.io/acme/shop:1.0')!;
    assert.equal(shop.optional, undefined);
    assert.deepEqual(shop.reasons.map((r) => r.source), ['pod-spec', 'chart-annotation', 'values']);
  });
  it('an unconditional helm.sh/images entry is required (operators start it)', () => {
    assert.equal(byRef.get('quay.io/acme/operand:2')?.optional, undefined);
  });
  it('images nothing renders are optional, each with the values path that switches it on', () => {
    const opt = Object.fromEntries(findings.filter((f) => f.optional).map((f) => [f.reference, f.optional!.valuesPath]));
    assert.deepEqual(opt, {
      'docker.io/acme/exporter:0.1': 'metrics.enabled',
      'docker.io/acme/redis:7': 'cache.enabled',
      'ghcr.io/acme/unused:9': '', // no switch known: not its own path, which is no switch
      'quay.io/acme/debug:3': 'debug.enabled',
    });
    assert.match(byRef.get('docker.io/acme/exporter:0.1')!.optional!.hint, /--set metrics\.enabled=true/);
    assert.match(byRef.get('ghcr.io/acme/unused:9')!.optional!.hint, /set at unused\.image in the values, but nothing renders it/);
  });
});

describe('chartFindings with a render whose switches were on', () => {
  const root = chart(
    'app',
    {
      global: { image: { registry: 'mirror.example' } },
      appVersion: '2.0',
      admin: { enabled: false, image: 'vendor.example/app/admin' },
      exporter: { enabled: false, image: { registry: 'docker.io', repository: 'acme/exporter', tag: '0.1' } },
      leftover: { image: { repository: 'acme/old', tag: '1' } },
    },
    { templates: { 'templates/admin.yaml': '{{- if .Values.admin.enabled }}\nimage: "{{ .Values.admin.image }}:{{ .Values.appVersion }}"\n{{- end }}' } },
  );
  const { charts } = resolveChartValues(root, {});
  const pod = (name: string, image: string, origin: string) => ({ object: { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name, image }] } }, origin });
  const switched = extractImages(
    [pod('admin', 'vendor.example/app/admin:2.0', 'app/templates/admin.yaml'), pod('exp', 'docker.io/acme/exporter:0.1', 'app/templates/exporter.yaml')],
    { chart: 'app' },
  ).findings;
  const rendered = extractImages([pod('web', 'docker.io/acme/web:1', 'app/templates/web.yaml')], { chart: 'app' }).findings;
  // `privateRegistry.enabled` on moves the web image to a placeholder host: no new image
  const moved = extractImages([pod('web', 'registry.example.com/acme/web:1', 'app/templates/web.yaml')], { chart: 'app' }).findings;
  const { findings } = chartFindings({
    chart: 'app',
    rendered,
    charts,
    switched: [{ findings: [...switched, ...moved], on: new Set(['admin.enabled', 'exporter.enabled', 'privateRegistry.enabled']) }],
  });
  const byRef = new Map(findings.map((f) => [f.reference, f]));

  it('the render decides the reference: the values guess under the global registry is dropped, its reason kept', () => {
    assert.deepEqual([...byRef.keys()], ['docker.io/acme/exporter:0.1', 'docker.io/acme/web:1', 'mirror.example/acme/old:1', 'vendor.example/app/admin:2.0']);
    const exporter = byRef.get('docker.io/acme/exporter:0.1')!;
    assert.deepEqual(exporter.reasons.map((r) => [r.source, r.path]), [['pod-spec', 'spec.containers[0].image'], ['values', 'exporter.image']]);
    assert.equal(exporter.optional?.valuesPath, 'exporter.enabled');
    assert.deepEqual(byRef.get('vendor.example/app/admin:2.0')?.optional?.switches, ['admin.enabled']);
  });
  it('what no render shows comes from the values, the global registry applied', () => {
    assert.equal(byRef.get('mirror.example/acme/old:1')?.optional?.valuesPath, '');
  });
});
