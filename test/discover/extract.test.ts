// The pure extractor over rendered objects: each workload kind, custom resources, args/env,
// ConfigMaps, List kinds, and the things that must never be taken for images.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extractImages } from '../../src/discover/extract.ts';
import type { Finding } from '../../src/discover/types.ts';

const podSpec = (image: string) => ({ containers: [{ name: 'c', image }] });
const template = (image: string) => ({ metadata: { labels: { app: 'x' } }, spec: podSpec(image) });

function refs(objects: unknown[]): string[] {
  return extractImages(objects.map((object) => ({ object }))).findings.map((f) => f.reference);
}

function only(objects: unknown[]): Finding {
  const { findings } = extractImages(objects.map((object) => ({ object, origin: 'x.yaml' })), { chart: 'shop' });
  assert.equal(findings.length, 1, JSON.stringify(findings));
  return findings[0]!;
}

describe('pod specs in every workload kind', () => {
  const table: [string, unknown, string][] = [
    ['Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: podSpec('a:1') }, 'spec.containers[0].image'],
    ['Deployment', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { template: template('a:1') } }, 'spec.template.spec.containers[0].image'],
    ['StatefulSet', { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 's' }, spec: { template: template('a:1') } }, 'spec.template.spec.containers[0].image'],
    ['DaemonSet', { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'd' }, spec: { template: template('a:1') } }, 'spec.template.spec.containers[0].image'],
    ['ReplicaSet', { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'r' }, spec: { template: template('a:1') } }, 'spec.template.spec.containers[0].image'],
    ['ReplicationController', { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'r' }, spec: { template: template('a:1') } }, 'spec.template.spec.containers[0].image'],
    ['Job', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: { template: template('a:1') } }, 'spec.template.spec.containers[0].image'],
    [
      'CronJob',
      { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { jobTemplate: { spec: { template: template('a:1') } } } },
      'spec.jobTemplate.spec.template.spec.containers[0].image',
    ],
    [
      'a custom resource embedding a pod template',
      { apiVersion: 'x.example.com/v1', kind: 'Pool', metadata: { name: 'p' }, spec: { workers: { podTemplate: template('a:1') } } },
      'spec.workers.podTemplate.spec.containers[0].image',
    ],
  ];
  for (const [kind, object, path] of table) {
    it(kind, () => {
      const f = only([object]);
      assert.equal(f.reference, 'docker.io/library/a:1');
      assert.equal(f.reasons[0]?.source, 'pod-spec');
      assert.equal(f.reasons[0]?.path, path);
      assert.equal(f.reasons[0]?.chart, 'shop');
      assert.equal(f.reasons[0]?.origin, 'x.yaml');
    });
  }

  it('init and ephemeral containers, image volumes; resource names carry the namespace', () => {
    const { findings } = extractImages(
      [
        {
          object: {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'p', namespace: 'shop' },
            spec: {
              initContainers: [{ name: 'i', image: 'init:1' }],
              containers: [{ name: 'c', image: 'main:1' }],
              ephemeralContainers: [{ name: 'e', image: 'debug:1' }],
              volumes: [{ name: 'v', image: { reference: 'quay.io/data/models:v3' } }],
            },
          },
        },
      ],
      { namespace: 'ignored' },
    );
    assert.deepEqual(
      findings.map((f) => [f.reference, f.reasons[0]!.resource, f.reasons[0]!.path]),
      [
        ['docker.io/library/debug:1', 'Pod/shop/p', 'spec.ephemeralContainers[0].image'],
        ['docker.io/library/init:1', 'Pod/shop/p', 'spec.initContainers[0].image'],
        ['docker.io/library/main:1', 'Pod/shop/p', 'spec.containers[0].image'],
        ['quay.io/data/models:v3', 'Pod/shop/p', 'spec.volumes[0].image.reference'],
      ],
    );
  });

  it('a broken image field is a warning, not a finding', () => {
    const r = extractImages([{ object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: podSpec('') } }]);
    assert.deepEqual(r.findings, []);
    assert.match(r.warnings[0] ?? '', /Pod\/default\/p spec\.containers\[0\]\.image: "" is not a valid image reference/);
  });
});

describe('custom resources name images in fields', () => {
  it('image strings and {registry, repository, tag} maps; not version or nodeSelector fields', () => {
    const cr = {
      apiVersion: 'monitoring.example.com/v1',
      kind: 'Prometheus',
      metadata: { name: 'main', labels: { 'image': 'label-not-image:1' } },
      spec: {
        image: 'quay.io/prometheus/prometheus:v2.50.0',
        version: 'v2.50.0',
        configReloaderImage: { registry: 'quay.io', repository: 'prometheus-operator/config-reloader', tag: 'v0.71.0' },
        thanos: { baseImage: 'quay.io/thanos/thanos', version: 'v0.34.0' },
        extraImages: ['ghcr.io/a/one:1', 'ghcr.io/a/two:2'],
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        imagePullPolicy: 'IfNotPresent',
        defaultImage: 'true',
      },
    };
    const { findings } = extractImages([{ object: cr }]);
    assert.deepEqual(
      findings.map((f) => [f.reference, f.reasons[0]!.source, f.reasons[0]!.path]),
      [
        ['ghcr.io/a/one:1', 'cr-image-field', 'spec.extraImages[0]'],
        ['ghcr.io/a/two:2', 'cr-image-field', 'spec.extraImages[1]'],
        ['quay.io/prometheus-operator/config-reloader:v0.71.0', 'cr-image-field', 'spec.configReloaderImage'],
        ['quay.io/prometheus/prometheus:v2.50.0', 'cr-image-field', 'spec.image'],
        ['quay.io/thanos/thanos:v0.34.0', 'cr-image-field', 'spec.thanos.baseImage'],
      ],
    );
  });

  it('built-in kinds are read only through their pod specs', () => {
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's', annotations: { image: 'x:1' } }, spec: { image: 'not-read:1' } };
    assert.deepEqual(refs([svc]), []);
  });
});

describe('args, command and env', () => {
  const deploy = (container: Record<string, unknown>) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'operator' },
    spec: { template: { spec: { containers: [{ name: 'op', image: 'quay.io/op/operator:v1', ...container }] } } },
  });
  it('--x-image=REF, --x-image REF (two items), env X_IMAGE, a shell script', () => {
    const { findings } = extractImages([
      {
        object: deploy({
          args: ['--config-reloader-image=quay.io/op/reloader:v0.7', '--solver-image', 'ghcr.io/op/solver:v1.14', '--metrics-addr=:8080'],
          command: ['sh', '-c', 'exec op --init-image=docker.io/op/init:2.1 --log-level=debug'],
          env: [
            { name: 'DEFAULT_SIDECAR_IMAGE', value: 'registry.example.com/side/envoy:v1.30' },
            { name: 'DB_HOST', value: 'db.example.com:5432' },
            { name: 'REDIS', value: 'redis:6379' },
            { name: 'VERSION', value: '1.2.3' },
            { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
          ],
        }),
      },
    ]);
    assert.deepEqual(
      findings.map((f) => [f.reference, f.reasons.map((r) => `${r.source} ${r.path}`).join('; ')]),
      [
        ['docker.io/op/init:2.1', 'args spec.template.spec.containers[0].command[2]'],
        ['ghcr.io/op/solver:v1.14', 'args spec.template.spec.containers[0].args[2]'],
        ['quay.io/op/operator:v1', 'pod-spec spec.template.spec.containers[0].image'],
        ['quay.io/op/reloader:v0.7', 'args spec.template.spec.containers[0].args[0]'],
        ['registry.example.com/side/envoy:v1.30', 'env spec.template.spec.containers[0].env[0].value'],
      ],
    );
  });
});

describe('ConfigMaps', () => {
  it('keys that say image, embedded YAML/JSON configuration, and nothing from nginx.conf or addresses', () => {
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'operator-config', labels: { build: '2024:rc1' } },
      data: {
        'queue-sidecar-image': `gcr.io/knative/queue@sha256:${'cd'.repeat(32)}`,
        'config.yaml': 'backup:\n  image:\n    repository: ghcr.io/op/backup\n    tag: 4.2.0\nendpoint: collector.svc:4317\n',
        'defaults.json': '{"sidecars": [{"name": "log", "image": "docker.io/op/log:1.1"}]}',
        'nginx.conf': 'server { listen 80; location / { proxy_pass http://backend:8080/x:1; } }',
        listen: '0.0.0.0:9090',
        version: '2.7.1',
      },
    };
    const { findings } = extractImages([{ object: cm }]);
    assert.deepEqual(
      findings.map((f) => [f.reference, f.reasons[0]!.source, f.reasons[0]!.path]),
      [
        ['docker.io/op/log:1.1', 'configmap', 'data["defaults.json"].sidecars[0].image'],
        [`gcr.io/knative/queue@sha256:${'cd'.repeat(32)}`, 'configmap', 'data.queue-sidecar-image'],
        ['ghcr.io/op/backup:4.2.0', 'configmap', 'data["config.yaml"].backup.image'],
      ],
    );
  });
});

describe('sidecar injectors: images composed from a hub and a tag', () => {
  it('istio-style {global: {hub, tag, proxy: {image}}} and linkerd-style {image: {name, version}} in ConfigMaps', () => {
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'sidecar-injector' },
      data: {
        values: JSON.stringify({ global: { hub: 'docker.io/istio', tag: '1.24.0', proxy: { image: 'proxyv2', logLevel: 'warning' }, proxy_init: { image: 'proxyv2' } }, pilot: { image: 'pilot' } }),
        'linkerd.yaml': 'proxy:\n  image:\n    name: cr.l5d.io/linkerd/proxy\n    version: edge-24.1.1\n  logLevel: warn\n',
      },
    };
    const { findings } = extractImages([{ object: cm }]);
    assert.deepEqual(
      findings.map((f) => [f.reference, f.reasons.map((r) => r.path).join(' ')]),
      [
        ['cr.l5d.io/linkerd/proxy:edge-24.1.1', 'data["linkerd.yaml"].proxy.image'],
        ['docker.io/istio/proxyv2:1.24.0', 'data.values.global.proxy.image data.values.global.proxy_init.image'],
      ],
    );
  });
});

describe('List kinds and odd documents', () => {
  it('opens List and *List items; skips documents without a kind', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent', namespace: 'kube-system' }, spec: { template: template('agent:1') } },
        { apiVersion: 'apps/v1', kind: 'DeploymentList', items: [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'w' }, spec: { template: template('web:2') } }] },
      ],
    };
    const { findings } = extractImages([{ object: list }, { object: { image: 'no-kind:1' } }, { object: 'a string' }, { object: null }]);
    assert.deepEqual(
      findings.map((f) => [f.reference, f.reasons[0]!.resource]),
      [
        ['docker.io/library/agent:1', 'DaemonSet/kube-system/agent'],
        ['docker.io/library/web:2', 'Deployment/default/w'],
      ],
    );
  });

  it('the same image in two places is one finding with two reasons', () => {
    const a = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a' }, spec: podSpec('busybox') };
    const b = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b' }, spec: podSpec('docker.io/library/busybox:latest') };
    const { findings } = extractImages([{ object: b }, { object: a }]);
    assert.equal(findings.length, 1);
    assert.deepEqual(findings[0]!.reasons.map((r) => r.resource), ['Pod/default/a', 'Pod/default/b']);
  });
});
