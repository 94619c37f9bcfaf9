// Optional images: which switches are off, which one guards a template line, which one brings an
// image in, helm's reason when a render fails, and the values-only fallback (registry knobs, tags
// from other keys, the Kubernetes version). The renders themselves run the real helm.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { attributeOptional, guardsAt, valuesBehindMessage } from '../../src/discover/attribute.ts';
import { discoverImages } from '../../src/discover/discover.ts';
import { resolveChartValues, type ChartNode } from '../../src/discover/chart-values.ts';
import { loadChartTree } from '../../src/discover/chart-tree.ts';
import { imageFromMap, imageFromUntaggedText, normaliseKubeVersion } from '../../src/discover/image-rules.ts';
import { helmFailureReason } from '../../src/discover/sources.ts';
import { failureLocation, renderOptional, renderWithSwitches } from '../../src/discover/switched-render.ts';
import { findModeKeys, findOffSwitches, modeScenarios, setFlag, switchOverlay } from '../../src/discover/switches.ts';
import { templateLines } from '../../src/discover/template-guards.ts';
import { globalRegistryOf, scanChartValues } from '../../src/discover/values-scan.ts';
import type { Finding } from '../../src/discover/types.ts';
import { helmPath } from '../helpers/helm.ts';

const FIX = fileURLToPath(new URL('../fixtures/discover/', import.meta.url));

function chart(name: string, defaults: Record<string, unknown>, extra: Partial<ChartNode> = {}): ChartNode {
  return { name, annotations: {}, dependencies: [], defaults, subcharts: [], source: name, ...extra };
}

const guardsOfLine = (text: string, needle: string) => templateLines(text).find((l) => l.text.includes(needle))?.guards;

describe('template guards', () => {
  it('if, with and a relative .enabled, else of a not, and/or conditions', () => {
    const t = [
      '{{- if .Values.persistence.enabled }}',
      'initContainers:',
      '  - image: {{ .Values.initImage }}',
      '{{- end }}',
      '{{- with .Values.metrics }}',
      '{{- if .enabled }}',
      '  - image: metrics',
      '{{- end }}',
      '{{- end }}',
      '{{- if not .Values.external.enabled }}',
      '  - image: internal',
      '{{- else }}',
      '  - image: external',
      '{{- end }}',
      '{{- if and $.Values.a.enabled (eq .Values.mode "x") }}',
      '  - image: both',
      '{{- end }}',
      '  - image: always',
    ].join('\n');
    assert.deepEqual(guardsOfLine(t, '.Values.initImage'), ['persistence.enabled']);
    assert.deepEqual(guardsOfLine(t, 'image: metrics'), ['metrics', 'metrics.enabled']);
    assert.deepEqual(guardsOfLine(t, 'image: internal'), []);
    assert.deepEqual(guardsOfLine(t, 'image: external'), ['external.enabled']);
    assert.deepEqual(guardsOfLine(t, 'image: both'), ['a.enabled', 'mode']);
    assert.deepEqual(guardsOfLine(t, 'image: always'), []);
  });

  it('what stands under a `not` inside `or`/`and` is needed off; the values of an `or` are alternatives', () => {
    const t = [
      '{{- if or (not (eq .Values.topology "clustered")) (not .Values.cluster.enabled) }}',
      '  - image: single',
      '  {{- if or .Values.initContainers .Values.sysctl.enabled }}',
      '  - image: init',
      '  {{- end }}',
      '{{- end }}',
      '{{- if and .Values.a.enabled (not .Values.b.enabled) }}',
      '  - image: a-not-b',
      '{{- end }}',
    ].join('\n');
    assert.deepEqual(guardsOfLine(t, 'image: single'), []);
    const init = templateLines(t).find((l) => l.text.includes('image: init'))!;
    assert.deepEqual(init.guards, ['initContainers', 'sysctl.enabled']);
    assert.deepEqual(init.anyOf, ['initContainers', 'sysctl.enabled']);
    assert.deepEqual(guardsOfLine(t, 'image: a-not-b'), ['a.enabled']);
  });

  it('named templates are marked, and a guard opened and closed on one line still counts', () => {
    const lines = templateLines('{{- define "x.check" -}}\n{{- if .Values.h.enabled }}{{ fail "no" }}{{ end -}}\n{{- end -}}\nimage: y');
    assert.equal(lines[1]!.inDefine, true);
    assert.deepEqual(lines[1]!.guards, ['h.enabled']);
    assert.equal(lines[3]!.inDefine, false);
  });
});

describe('switches', () => {
  const root = chart(
    'app',
    { global: { debug: { enabled: false } }, metrics: { enabled: false, serviceMonitor: { enabled: false } }, web: { enabled: true }, list: [{ enabled: false }], cache: { enabled: false } },
    { subcharts: [chart('cache', { auth: { enabled: false } })], dependencies: [{ name: 'cache', condition: 'cache.enabled' }] },
  );
  it('every enabled: false outside lists, subcharts included; an overlay turns them on', () => {
    const { top, charts } = resolveChartValues(root, {});
    const sw = findOffSwitches(top, charts);
    assert.deepEqual(sw.map((s) => s.path), ['global.debug.enabled', 'metrics.enabled', 'metrics.serviceMonitor.enabled', 'cache.enabled', 'cache.auth.enabled']);
    assert.deepEqual(switchOverlay(sw), {
      global: { debug: { enabled: true } },
      metrics: { enabled: true, serviceMonitor: { enabled: true } },
      cache: { enabled: true, auth: { enabled: true } },
    });
  });
  it('`enable: false` is a switch too; `enabled: true` and other booleans are not', () => {
    const { top, charts } = resolveChartValues(chart('t', { tests: { enable: false }, web: { enabled: true }, rbac: { create: false } }), {});
    assert.deepEqual(findOffSwitches(top, charts).map((s) => s.path), ['tests.enable']);
  });
  it('a user --set that turns one on leaves it out', () => {
    const { top, charts } = resolveChartValues(root, { metrics: { enabled: true } });
    assert.deepEqual(findOffSwitches(top, charts).map((s) => s.path), ['metrics.serviceMonitor.enabled', 'global.debug.enabled', 'cache.enabled', 'cache.auth.enabled']);
  });
});

describe('string modes', () => {
  const templates = {
    'templates/proxy.yaml': '{{- if ne .Values.expose.type "ingress" }}\nimage: proxy\n{{- end }}',
    'templates/svc.yaml': '{{- if eq .Values.expose.type "clusterIP" }}x{{ else if eq "nodePort" $.Values.expose.type }}y{{ end }}{{ if eq .Values.expose.type "ingress" }}z{{ end }}',
    'templates/db.yaml': '{{ if eq .Values.architecture "replication" "cluster" }}r{{ end }}{{ if ne .Values.image.tag "" }}t{{ end }}{{ if eq .Values.replicas "3" }}n{{ end }}',
  };
  const cache = chart('cache', { mode: 'local', enabled: false }, { templates: { 'templates/x.yaml': '{{ if eq .Values.mode "remote" }}r{{ end }}{{ if eq .Values.global.tier "edge" }}e{{ end }}' } });
  const top = chart('app', { expose: { type: 'ingress' }, architecture: 'standalone', image: { tag: '1' }, replicas: 3, global: { tier: 'core' } }, {
    templates,
    dependencies: [{ name: 'cache', condition: 'cache.enabled' }],
    subcharts: [cache],
  });

  it('every key compared with string literals, its value a string: the other literals in order; a subchart key under its name, global at the top', () => {
    const { charts } = resolveChartValues(top, {});
    const keys = findModeKeys(charts).map((k) => [k.segments.join('.'), k.current, k.literals]);
    assert.deepEqual(keys.sort(), [
      ['architecture', 'standalone', ['replication', 'cluster']],
      ['cache.mode', 'local', ['remote']],
      ['expose.type', 'ingress', ['clusterIP', 'nodePort']],
      ['global.tier', 'core', ['edge']],
    ]);
  });

  it('render k sets the k-th literal of each key, a key with fewer keeps its value; at most the given renders', () => {
    const { charts } = resolveChartValues(top, { expose: { type: 'nodePort' } });
    const keys = findModeKeys(charts);
    const scenarios = modeScenarios(keys, 4).map((sc) => sc.map((s) => s.path).sort());
    assert.deepEqual(scenarios, [
      // templates in file order: proxy.yaml compares with ingress before svc.yaml with clusterIP
      ['architecture=replication', 'cache.mode=remote', 'expose.type=ingress', 'global.tier=edge'],
      ['architecture=cluster', 'expose.type=clusterIP'],
    ]);
    assert.equal(modeScenarios(keys, 1).length, 1);
    assert.deepEqual(switchOverlay(modeScenarios(keys, 1)[0]!), { expose: { type: 'ingress' }, architecture: 'replication', cache: { mode: 'remote' }, global: { tier: 'edge' } });
    assert.equal(setFlag('expose.type=clusterIP'), '--set expose.type=clusterIP');
    assert.equal(setFlag('metrics.enabled'), '--set metrics.enabled=true');
  });

  it('an image a mode render brings in is hinted with the setting, beside a boolean it needs too', () => {
    const { charts } = resolveChartValues(top, {});
    const f: Finding = { reference: 'docker.io/x/proxy:1', reasons: [{ source: 'pod-spec', resource: 'Deployment/default/p', path: 'image', origin: 'app/templates/proxy.yaml' }] };
    const info = attributeOptional(f, new Set(['expose.type=clusterIP', 'architecture=replication', 'cache.enabled']), { charts, statics: [] });
    assert.deepEqual(info.switches, ['expose.type=clusterIP']);
    assert.equal(info.valuesPath, 'expose.type');
    assert.match(info.hint, /only with expose\.type=clusterIP; switch it on with --set expose\.type=clusterIP$/);
  });
});

describe('which switch brings an image in', () => {
  const templates = {
    'templates/statefulset.yaml': [
      'spec:',
      '  {{- if .Values.volumePermissions.enabled }}',
      '  initContainers:',
      '    - image: {{ include "img" .Values.volumePermissions.image }}',
      '  {{- end }}',
      '  containers:',
      '    - image: {{ include "img" .Values.image }}',
      '    {{- if .Values.metrics.enabled }}',
      '    - image: {{ include "img" .Values.metrics.image }}',
      '    {{- end }}',
    ].join('\n'),
    'templates/default-backend-deployment.yaml': '{{- if (include "app.defaultBackend.on" .) }}\nimage: {{ .Values.defaultBackend.image.repository }}\n{{- end }}',
  };
  const root = chart(
    'app',
    {
      image: { repository: 'acme/app', tag: '1' },
      volumePermissions: { enabled: false, image: { repository: 'acme/os-shell', tag: '12' } },
      metrics: { enabled: false, image: { repository: 'acme/exporter', tag: '0.1' } },
      defaultBackend: { enabled: false, image: { repository: 'acme/backend', tag: '1.5' } },
      db: { enabled: false },
    },
    {
      templates,
      subcharts: [
        chart(
          'db',
          { image: { repository: 'acme/db', tag: '16' }, tls: { enabled: false, image: { repository: 'acme/tls', tag: '1' } } },
          { templates: { 'templates/sts.yaml': '{{- if .Values.tls.enabled }}\nimage: {{ .Values.tls.image.repository }}\n{{- end }}\nimage: {{ .Values.image.repository }}' } },
        ),
      ],
      dependencies: [{ name: 'db', condition: 'db.enabled' }],
    },
  );
  const { charts } = resolveChartValues(root, {});
  const statics = charts.flatMap((c) => scanChartValues(c).map((v) => ({ chart: c, segments: v.segments, references: [v.reference, ...v.variants] })));
  const on = new Set(['volumePermissions.enabled', 'metrics.enabled', 'defaultBackend.enabled', 'db.enabled', 'db.tls.enabled']);
  const finding = (reference: string, origin: string): Finding => ({ reference, reasons: [{ source: 'pod-spec', resource: 'X/default/x', path: 'spec.containers[0].image', origin }] });
  const attribute = (reference: string, origin: string) => attributeOptional(finding(reference, origin), on, { charts, statics });

  it('two guarded images in one template: the values each image comes from pick its switch', () => {
    assert.equal(attribute('docker.io/acme/os-shell:12', 'app/templates/statefulset.yaml').valuesPath, 'volumePermissions.enabled');
    assert.equal(attribute('docker.io/acme/exporter:0.1', 'app/templates/statefulset.yaml').valuesPath, 'metrics.enabled');
  });
  it('a template switched by a helper: the template file named after the component', () => {
    const info = attribute('docker.io/acme/backend:1.5', 'app/templates/default-backend-deployment.yaml');
    assert.equal(info.valuesPath, 'defaultBackend.enabled');
    assert.match(info.hint, /switch it on with --set defaultBackend\.enabled=true/);
  });
  it("a subchart switched off: its condition first, then the switch inside it", () => {
    const db = attribute('docker.io/acme/db:16', 'app/charts/db/templates/sts.yaml');
    assert.equal(db.valuesPath, 'db.enabled');
    assert.doesNotMatch(db.hint, / and --set/);
    const tls = attribute('docker.io/acme/tls:1', 'app/charts/db/templates/sts.yaml');
    assert.equal(tls.valuesPath, 'db.enabled');
    assert.match(tls.hint, /--set db\.enabled=true and --set db\.tls\.enabled=true/);
  });
  it('a pod spec in a named template (`_pod.tpl`): the guard over the image line that names its values', () => {
    const g = chart(
      'g',
      { image: { repository: 'acme/g', tag: '11' }, sidecar: { image: { repository: 'quay.io/acme/sidecar', tag: '1.28' }, dashboards: { enabled: false } } },
      {
        templates: {
          'templates/_pod.tpl': [
            '{{- define "g.pod" -}}',
            'containers:',
            '  - image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"',
            '{{- if .Values.sidecar.dashboards.enabled }}',
            '  - image: "{{ .Values.sidecar.image.repository }}:{{ .Values.sidecar.image.tag }}"',
            '{{- end }}',
            '{{- end }}',
          ].join('\n'),
          'templates/deployment.yaml': 'spec:\n  {{- include "g.pod" . | nindent 2 }}',
        },
      },
    );
    const resolved = resolveChartValues(g, {}).charts;
    const st = resolved.flatMap((c) => scanChartValues(c).map((v) => ({ chart: c, segments: v.segments, references: [v.reference, ...v.variants] })));
    const info = attributeOptional(finding('quay.io/acme/sidecar:1.28', 'g/templates/deployment.yaml'), new Set(['sidecar.dashboards.enabled']), { charts: resolved, statics: st });
    assert.deepEqual(info.switches, ['sidecar.dashboards.enabled']);
  });
  it('guardsAt maps a failing template line to the switches around it', () => {
    assert.deepEqual(guardsAt('app/charts/db/templates/sts.yaml', 2, charts), ['db.tls.enabled']);
    assert.deepEqual(guardsAt('app/templates/statefulset.yaml', 7, charts), []);
  });
});

describe("helm's reason for a failed render", () => {
  const wrapped = [
    'helm template for chart x failed (exited with status 1):',
    '    walk.go:75: found symbolic link in path',
    '    Error: execution error at (x/templates/secret.yaml:8:15): ',
    '    PASSWORDS ERROR: You must provide your current passwords when upgrading the release.',
    "        'auth.password' must not be empty",
    '',
    '    Use --debug flag to render out invalid YAML',
  ].join('\n');
  it('the Error: line and the lines that continue it', () => {
    const reason = helmFailureReason(new Error(wrapped));
    assert.equal(reason, "execution error at (x/templates/secret.yaml:8:15): PASSWORDS ERROR: You must provide your current passwords when upgrading the release. 'auth.password' must not be empty");
    assert.deepEqual(failureLocation(reason), { origin: 'x/templates/secret.yaml', line: 8 });
    assert.equal(helmFailureReason(new Error('x failed:\n    Error: execution error at (x/templates/a.yaml:3:4): \n\n    the real reason\n\n    more')), 'execution error at (x/templates/a.yaml:3:4): the real reason');
    assert.deepEqual(failureLocation('template: x/templates/a.yaml:12:3: executing "x" at <.Values.a.b>: nil pointer'), { origin: 'x/templates/a.yaml', line: 12 });
  });
});

describe('the values-only fallback', () => {
  it('global registry keys, in the order library charts read them', () => {
    assert.equal(globalRegistryOf({ global: { imageRegistry: 'a.example', image: { registry: 'b.example' } } }), 'a.example');
    assert.equal(globalRegistryOf({ global: { image: { registry: 'b.example' }, registry: 'c.example' } }), 'b.example');
    assert.equal(globalRegistryOf({ global: { registry: { enabled: true } }, imageRegistry: 'd.example' }), 'd.example');
    assert.equal(globalRegistryOf({ global: { imageRegistry: '' } }), undefined);
  });
  it('an empty kubectl tag is the cluster version, never latest or the appVersion; without a version it is left out', () => {
    const kubectl = { repository: 'registry.k8s.io/kubectl', tag: '' };
    assert.equal(imageFromMap(kubectl, { kubeVersion: normaliseKubeVersion('1.29'), defaultTag: '9.9' })?.reference, 'registry.k8s.io/kubectl:v1.29.0');
    assert.equal(imageFromMap(kubectl, { defaultTag: '9.9' }), undefined);
    assert.equal(normaliseKubeVersion('v1.30.2'), 'v1.30.2');
    assert.equal(normaliseKubeVersion('latest'), undefined);
  });
  it('a repository alone under an image key takes the tag from another key and the global registry', () => {
    assert.equal(imageFromUntaggedText('vendor.example/app/admin', { defaultTag: '3.2.0' })?.reference, 'vendor.example/app/admin:3.2.0');
    assert.equal(imageFromUntaggedText('vendor/app', { defaultTag: '1', globalRegistry: 'mirror.example' })?.reference, 'mirror.example/vendor/app:1');
    assert.equal(imageFromUntaggedText('admin', { defaultTag: '1' }), undefined);
    assert.equal(imageFromMap({ registry: 'ghcr.io', name: 'vendor/sync' }, { allowNameTag: true, allowUntagged: true, defaultTag: '3.1.0' })?.reference, 'ghcr.io/vendor/sync:3.1.0');
    assert.equal(imageFromMap({ image: 'quay.io/vendor/op', version: 'v2' })?.reference, 'quay.io/vendor/op:v2');
  });
  it('a top-level appVersion or version value is the default tag before Chart.yaml appVersion', () => {
    const { charts } = resolveChartValues(chart('v', { appVersion: '3.2.0', admin: { image: 'vendor.example/app/admin' } }, { appVersion: '3.1.0' }), {});
    assert.deepEqual(scanChartValues(charts[0]!).map((v) => v.reference), ['vendor.example/app/admin:3.2.0']);
  });
});

describe('rendering with switches on (real helm)', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'airlock-switches-test-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  /** The real helm behind a script that counts its runs. */
  const countingHelm = async (name: string): Promise<{ helm: string; runs: () => Promise<number> }> => {
    const log = join(tmp, `${name}.log`);
    const helm = join(tmp, `${name}-helm`);
    await writeFile(helm, `#!/bin/sh\necho run >> '${log}'\nexec '${helmPath()}' "$@"\n`, { mode: 0o755 });
    return { helm, runs: async () => (await readFile(log, 'utf8')).split('\n').filter((l) => l !== '').length };
  };
  const picky = async (helm: string, blame: boolean) => {
    const { chart: node } = await loadChartTree(`${FIX}picky`);
    const { top, charts } = resolveChartValues(node, {});
    return renderWithSwitches(`${FIX}picky`, { valuesFiles: [], set: [], setString: [], apiVersions: [], helm }, findOffSwitches(top, charts), {
      budget: 16, // as on a quiet machine, however long a render takes here
      ...(blame ? { guardsAt: (origin: string, line: number) => guardsAt(origin, line, charts) } : {}),
    });
  };
  const imagesOf = (r: Awaited<ReturnType<typeof picky>>) =>
    r.renders.flatMap((x) => x.manifests.map((m) => (m.object as { spec: { containers: { image: string }[] } }).spec.containers[0]!.image)).sort();
  const rendered = ['docker.io/picky/a:1', 'docker.io/picky/b:1', 'docker.io/picky/c:1', 'docker.io/picky/d:1'];

  it('switches helm refuses are set aside by the template line or the message that names them: three runs, one render', async () => {
    const { helm, runs } = await countingHelm('blame');
    const r = await picky(helm, true);
    assert.deepEqual(r.failed.map((f) => f.switch.path).sort(), ['helper.enabled', 'strict.enabled']);
    assert.match(r.failed.find((f) => f.switch.path === 'strict.enabled')!.reason, /strict mode needs strict\.key/);
    assert.deepEqual(imagesOf(r), rendered);
    assert.equal(r.renders.length, 1);
    assert.equal(await runs(), 3);
  });

  it('a switch whose output is not YAML fails alone; discover goes on', async () => {
    const { chart: node } = await loadChartTree(`${FIX}broken-switch`);
    const { top, charts } = resolveChartValues(node, {});
    const r = await renderWithSwitches(`${FIX}broken-switch`, { valuesFiles: [], set: [], setString: [], apiVersions: [], helm: helmPath() }, findOffSwitches(top, charts));
    assert.deepEqual(r.failed.map((f) => f.switch.path), ['broken.enabled']);
    assert.match(r.failed[0]!.reason, /YAML parse error on broken-switch\/templates\/pods\.yaml/);
    assert.deepEqual(imagesOf(r), ['docker.io/picky/good:1']);
  });

  it('a `required` in a helper, reached through an include no switch guards: its values name the switch; two runs, one render', async () => {
    const { helm, runs } = await countingHelm('required');
    const { chart: node } = await loadChartTree(`${FIX}modes`);
    const { top, charts } = resolveChartValues(node, {});
    const r = await renderWithSwitches(`${FIX}modes`, { valuesFiles: [], set: [], setString: [], apiVersions: [], helm }, findOffSwitches(top, charts), {
      budget: 16,
      guardsAt: (origin: string, line: number) => guardsAt(origin, line, charts),
      valuesBehind: (reason: string) => valuesBehindMessage(reason, charts),
    });
    assert.deepEqual(r.failed.map((f) => f.switch.path), ['tls.enabled']);
    assert.match(r.failed[0]!.reason, /a certificate file is needed once TLS is on/);
    // the switch that needs another one (cluster.coordinator.enabled under cluster.enabled) stays with it
    assert.deepEqual(r.renders.map((x) => x.on.map((s) => s.path)), [['cluster.enabled', 'cluster.coordinator.enabled', 'exporter.enabled']]);
    assert.equal(await runs(), 2);
  });

  it('a sidecar in both topologies is switched by its own key, whatever else the user sets', async () => {
    for (const set of [[], ['exporter.image.registry=mirror.vendor.example', 'topology=clustered']]) {
      const { images } = await discoverImages({ inputs: [`${FIX}modes`], includeOptional: true, set, helm: helmPath() });
      const byName = (n: string) => images.find((f) => f.reference.includes(`/modes/${n}:`))!;
      assert.deepEqual(byName('exporter').optional?.switches, ['exporter.enabled'], `exporter with --set ${set.join(',')}`);
      assert.equal(byName('exporter').optional?.valuesPath, 'exporter.enabled');
      assert.deepEqual(byName('coordinator').optional?.switches, ['cluster.enabled', 'cluster.coordinator.enabled']);
      assert.equal(byName('server').optional, undefined);
    }
  });

  it('string modes: one render more per literal, with the booleans on; the images they bring in hinted with the setting', async () => {
    const { helm, runs } = await countingHelm('modes');
    const { chart: node } = await loadChartTree(`${FIX}string-modes`);
    const { top, charts } = resolveChartValues(node, {});
    const r = await renderOptional(`${FIX}string-modes`, { valuesFiles: [], set: [], setString: [], apiVersions: [], helm }, top, charts);
    assert.deepEqual(r.failed, []);
    assert.deepEqual(r.renders.map((x) => x.on.map((s) => s.path)), [['sentinel.enabled'], ['expose.type=clusterIP', 'architecture=replication', 'sentinel.enabled'], ['expose.type=nodePort', 'sentinel.enabled']]);
    assert.equal(await runs(), 3);

    const { images } = await discoverImages({ inputs: [`${FIX}string-modes`], includeOptional: true, helm: helmPath() });
    assert.deepEqual(
      images.map((f) => [f.reference, f.optional?.switches]),
      [
        ['registry.vendor.example/modes/core:3.1', undefined],
        ['registry.vendor.example/modes/proxy:1.27', ['expose.type=clusterIP']],
        ['registry.vendor.example/modes/replica-agent:3.1', ['architecture=replication']],
        ['registry.vendor.example/modes/sentinel:3.1', ['architecture=replication', 'sentinel.enabled']],
      ],
    );
    const proxy = images.find((f) => f.reference.includes('/proxy:'))!;
    assert.equal(proxy.optional?.valuesPath, 'expose.type');
    assert.match(proxy.optional!.hint, /rendered by string-modes\/templates\/nginx\/deployment\.yaml only with expose\.type=clusterIP; switch it on with --set expose\.type=clusterIP/);
    assert.ok(proxy.reasons.some((x) => x.source === 'values' && x.path === 'nginx.image'), 'the values that set it are among its reasons');

    // a user who already exposes by clusterIP renders the proxy: required; nodePort is the other mode
    const set = await discoverImages({ inputs: [`${FIX}string-modes`], includeOptional: true, set: ['expose.type=clusterIP'], helm: helmPath() });
    assert.equal(set.images.find((f) => f.reference.includes('/proxy:'))!.optional, undefined);
  });

  it('with nothing to blame, halving still renders every switch helm accepts', async () => {
    const { helm, runs } = await countingHelm('halve');
    const r = await picky(helm, false);
    assert.deepEqual(r.failed.map((f) => f.switch.path).sort(), ['helper.enabled', 'strict.enabled']);
    assert.deepEqual(imagesOf(r), rendered);
    assert.ok((await runs()) > 3);
  });
});
