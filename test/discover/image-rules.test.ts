// Which strings count as images, by where they stand: table tests and properties.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { imageFromField, imageFromMap, imageFromNamedField, imageFromText } from '../../src/discover/image-rules.ts';
import { scanKeyedValue, scanText } from '../../src/discover/text-scan.ts';
import { formatReference, parseReference } from '../../src/core/reference.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('imageFromField: containers[].image takes anything that parses', () => {
  const table: [unknown, string | undefined][] = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['registry.k8s.io/x/y:v1@' + DIGEST, `registry.k8s.io/x/y:v1@${DIGEST}`],
    ['localhost:5000/team/app', 'localhost:5000/team/app:latest'],
    ['index.docker.io/library/redis:7', 'docker.io/library/redis:7'],
    ['', undefined],
    [' nginx', undefined],
    ['Nginx:1', undefined],
    ['https://quay.io/x:1', undefined],
    ['{{ .Values.image }}', undefined],
    [42, undefined],
    [null, undefined],
  ];
  for (const [input, want] of table) {
    it(`${JSON.stringify(input)} → ${want ?? 'not an image'}`, () => assert.equal(imageFromField(input), want));
  }
});

describe('imageFromNamedField: custom-resource fields whose key says image', () => {
  const table: [string, string, string | undefined][] = [
    ['image', 'quay.io/prometheus/prometheus:v2.50.0', 'quay.io/prometheus/prometheus:v2.50.0'],
    ['image', 'busybox', 'docker.io/library/busybox:latest'],
    ['sidecarImage', 'ghcr.io/a/b:1', 'ghcr.io/a/b:1'],
    ['sidecarImage', 'enabled', undefined],
    ['defaultImage', 'true', undefined],
    ['imageTag', 'v2', undefined],
    ['baseImage', 'db.example.com:5432', undefined],
    ['image', '/opt/images/app.tar', undefined],
    ['image', './app', undefined],
  ];
  for (const [key, value, want] of table) {
    it(`${key}: ${value} → ${want ?? 'not an image'}`, () => assert.equal(imageFromNamedField(key, value), want));
  }
});

describe('imageFromText: free text needs a tag or digest, and a key saying image or a registry host', () => {
  const table: [string, boolean, string | undefined][] = [
    ['busybox:1.36', true, 'docker.io/library/busybox:1.36'],
    ['busybox:1.36', false, undefined],
    ['quay.io/a/b:v1', false, 'quay.io/a/b:v1'],
    [`gcr.io/t/e@${DIGEST}`, false, `gcr.io/t/e@${DIGEST}`],
    ['"quay.io/a/b:v1"', true, 'quay.io/a/b:v1'],
    ['quay.io/a/b', true, undefined], // no tag: a repository prefix, not an image
    ['nginx', true, undefined],
    ['1.2.3', true, undefined], // a version string
    ['v1.2.3', true, undefined],
    ['redis:6379', true, undefined], // host:port
    ['db.example.com:5432', true, undefined],
    ['localhost:5000', true, undefined],
    ['0.0.0.0:8080', true, undefined],
    ['http://quay.io/a/b:1', true, undefined], // URL
    ['/etc/app/config.yaml', true, undefined], // path
    ['key=value:1', true, undefined],
    ['kubernetes.io/os:linux', false, undefined], // a label, not an image
    ['app.kubernetes.io/component:web', false, undefined],
    ['docs.example.com/guide:latest', false, undefined], // no digit in the tag, no key
    ['postgres:16', true, 'docker.io/library/postgres:16'],
    ['$(SIDECAR_IMAGE)', true, undefined],
    ['nginx@sha256:abc', true, undefined],
  ];
  for (const [text, keyed, want] of table) {
    it(`${text} (${keyed ? 'keyed' : 'bare'}) → ${want ?? 'not an image'}`, () => assert.equal(imageFromText(text, keyed), want));
  }
});

describe('imageFromMap: image-shaped maps', () => {
  it('{registry, repository, tag, digest} with and without a global registry', () => {
    const m = { registry: 'docker.io', repository: 'bitnami/redis', tag: '7.2.4', digest: '' };
    assert.equal(imageFromMap(m)?.reference, 'docker.io/bitnami/redis:7.2.4');
    const g = imageFromMap(m, { globalRegistry: 'registry.internal:5000' });
    assert.equal(g?.reference, 'registry.internal:5000/bitnami/redis:7.2.4');
    assert.ok(g?.variants.includes('docker.io/bitnami/redis:7.2.4'));
    assert.equal(imageFromMap({ ...m, digest: DIGEST })?.reference, `docker.io/bitnami/redis:7.2.4@${DIGEST}`);
  });
  it('{repository, tag} with a numeric tag, {image, tag}, {name, tag} only where allowed', () => {
    assert.equal(imageFromMap({ repository: 'quay.io/x/y', tag: 1.2 })?.reference, 'quay.io/x/y:1.2');
    assert.equal(imageFromMap({ image: 'nginx', tag: '1.27' })?.reference, 'docker.io/library/nginx:1.27');
    assert.equal(imageFromMap({ name: 'envoy', tag: 'v1' }), undefined);
    assert.equal(imageFromMap({ name: 'envoyproxy/envoy', tag: 'v1' }, { allowNameTag: true })?.reference, 'docker.io/envoyproxy/envoy:v1');
  });
  it('an empty tag takes the chart appVersion and says so', () => {
    const m = imageFromMap({ repository: 'nginx', tag: '' }, { defaultTag: '1.16.0' });
    assert.deepEqual(m && { ref: m.reference, d: m.tagDefaulted }, { ref: 'docker.io/library/nginx:1.16.0', d: true });
  });
  it('maps that are not images', () => {
    assert.equal(imageFromMap({ repository: 'https://charts.example.com', tag: '1' }), undefined);
    assert.equal(imageFromMap({ name: 'admin', role: 'cluster:admin' }), undefined);
    assert.equal(imageFromMap({ repository: 'nginx' }), undefined);
    assert.equal(imageFromMap({ repository: 'nginx', digest: 'sha256:short' }), undefined);
  });
});

describe('scanText: operators pass images in args, env and config', () => {
  const table: [string, string[]][] = [
    ['--config-reloader-image=quay.io/p/config-reloader:v0.70.0', ['quay.io/p/config-reloader:v0.70.0']],
    ['--prometheus-config-reloader=quay.io/p/prometheus-config-reloader:v0.81.0', ['quay.io/p/prometheus-config-reloader:v0.81.0']],
    ['--solver-image quay.io/jetstack/acmesolver:v1.14.0', ['quay.io/jetstack/acmesolver:v1.14.0']],
    [`-entrypoint-image gcr.io/tekton/entrypoint@${DIGEST}`, [`gcr.io/tekton/entrypoint@${DIGEST}`]],
    ['DEFAULT_SIDECAR_IMAGE=busybox:1.36', ['docker.io/library/busybox:1.36']],
    ['kubectl run x --image=busybox:1.36 -- sleep 1', ['docker.io/library/busybox:1.36']],
    ['{"sidecarImage":"ghcr.io/a/b:v2"}', ['ghcr.io/a/b:v2']],
    ['--image-pull-policy=always --image-registry=localhost:5000 --image-tag=v1.2.3', []],
    ['--node-selector=kubernetes.io/os:linux --selector=app.kubernetes.io/name=web', []],
    ['proxy_pass http://backend:8080/api:v1; server backend.default.svc:8080;', []],
    ['--metrics-addr=0.0.0.0:8080 --version=1.2.3 --role=admin:read', []],
  ];
  for (const [text, want] of table) {
    it(text, () => assert.deepEqual(scanText(text).map((h) => h.reference), want));
  }
  it('a keyed value: the env name says image', () => {
    assert.deepEqual(scanKeyedValue('RELATED_IMAGE_AGENT', 'quay.io/a/agent:2').map((h) => h.reference), ['quay.io/a/agent:2']);
    assert.deepEqual(scanKeyedValue('DB_HOST', 'db:5432'), []);
    assert.deepEqual(scanKeyedValue('REDIS_ADDR', 'redis:6379'), []);
  });
});

describe('scanText stays linear on hostile text', () => {
  it('long runs of key-like words, dotted names and flags finish quickly', () => {
    const started = performance.now();
    for (const text of ['image'.repeat(40_000), 'image='.repeat(40_000), 'a.'.repeat(100_000), '--image '.repeat(30_000), 'x'.repeat(300_000)]) scanText(text);
    assert.ok(performance.now() - started < 2000, `took ${performance.now() - started} ms`);
  });
});

describe('properties', () => {
  const component = fc.stringMatching(/^[a-z0-9]{1,8}(?:[-._][a-z0-9]{1,8})?$/);
  const refArb = fc.record({
    host: fc.constantFrom('quay.io', 'ghcr.io', 'registry.example.com:5000', 'docker.io'),
    path: fc.array(component, { minLength: 1, maxLength: 3 }),
    tag: fc.stringMatching(/^v?[0-9]{1,3}(\.[0-9]{1,3}){0,2}(-[a-z0-9]{1,6})?$/),
  });
  it('a full reference with a tag is accepted everywhere, unchanged by normalising again', () => {
    fc.assert(
      fc.property(refArb, ({ host, path, tag }) => {
        const text = `${host}/${path.join('/')}:${tag}`;
        const norm = formatReference(parseReference(text));
        assert.equal(imageFromField(text), norm);
        assert.equal(imageFromText(text, true), norm);
        assert.equal(imageFromField(norm), norm);
        if (host !== 'docker.io') assert.equal(imageFromText(text, false), norm);
        assert.deepEqual(scanText(`--x-image=${text}`).map((h) => h.reference), [norm]);
      }),
      { numRuns: 300 },
    );
  });
  it('host:port pairs are never images in free text', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){1,3}$/), fc.integer({ min: 1, max: 65535 }), (host, port) => {
        assert.equal(imageFromText(`${host}:${port}`, true), undefined);
        assert.deepEqual(scanText(`ADDR=${host}:${port} --listen ${host}:${port}`), []);
      }),
      { numRuns: 300 },
    );
  });
});
