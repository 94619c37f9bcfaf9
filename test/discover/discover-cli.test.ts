// `airlock discover` driven as a user would, on fixture charts rendered by the real helm (pinned
// v4.1.4 in .tools/bin), a kustomize overlay built by the real kubectl, and plain manifests.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { airlock, resultOf } from '../helpers/cli.ts';
import { helmPath, kubectlPath } from '../helpers/helm.ts';
import { discoverImages, type DiscoverOptions } from '../../src/discover/discover.ts';
import { isAirlockError, type AirlockError } from '../../src/core/errors.ts';

const FIX = fileURLToPath(new URL('../fixtures/discover/', import.meta.url));
const HELM = helmPath();
const run = (args: string[], cwd = FIX) => airlock(['discover', '--helm', HELM, ...args], { cwd, timeoutMs: 60_000 });
const lines = (stdout: string) => stdout.split('\n').filter((l) => l !== '');
/** The references of text output, without the `\t# optional: ...` marks. */
const refs = (stdout: string) => lines(stdout).map((l) => l.split('\t')[0]!);

interface JsonImage {
  reference: string;
  reasons: { source: string; resource: string; path: string; chart?: string; origin?: string }[];
  optional?: { valuesPath: string; hint: string };
}
const images = (stdout: string): Map<string, JsonImage> => new Map((resultOf(stdout).images as JsonImage[]).map((i) => [i.reference, i]));

const SHOP_DEFAULT = [
  'docker.io/airlock-test/curl:8.5.0', // test pod (helm.sh/hook: test)
  'docker.io/airlock-test/postgres:15.6.0', // subchart db, tag overridden by the parent
  'docker.io/airlock-test/shop-cleanup:1.4.2', // CronJob
  'docker.io/airlock-test/shop-migrate:1.4.2', // pre-install hook Job
  'docker.io/airlock-test/shop-reindex:1.4.2', // post-upgrade hook Job
  'docker.io/airlock-test/shop:1.4.2',
  'docker.io/airlock-test/upgrade-notes:1.0.0', // rendered only with .Release.IsUpgrade
  'docker.io/library/busybox:1.36', // init container
];

describe('airlock discover', { concurrency: true }, () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'airlock-discover-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('an operator chart: sidecar images in args, env and a ConfigMap, CR image fields, pod templates, annotations; each with why; nothing else', async () => {
    const r = await run(['operator', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const m = images(r.stdout);
    assert.deepEqual([...m.keys()], [
      'docker.io/airlock-test/warmup:2.0',
      'docker.io/airlock-test/worker:2.0',
      'ghcr.io/airlock-test/acme-solver:v1.14.2',
      'ghcr.io/airlock-test/backup-agent:4.2.0',
      'ghcr.io/airlock-test/widget-exporter:0.9',
      'quay.io/airlock-test/config-reloader:v0.7.1',
      'quay.io/airlock-test/metrics-exporter:v0.15.0',
      'quay.io/airlock-test/widget-operand:v1.8.0',
      'quay.io/airlock-test/widget-operator:v0.3.0',
      'quay.io/airlock-test/widget-server:v1.8.0',
      'registry.example.com/sidecars/envoy:v1.30.1',
    ]);
    // labels with colons, host:port env values, version strings, URLs, annotations: none of them
    assert.doesNotMatch([...m.keys()].join('\n'), /platform|backend|redis|5432|6379|1\.2\.3|docs\.example|localhost|not-an-annotation/);
    assert.equal(resultOf(r.stdout).hiddenOptional, 1);
    const first = (ref: string) => m.get(ref)?.reasons[0];
    assert.deepEqual(first('quay.io/airlock-test/config-reloader:v0.7.1'), {
      source: 'args',
      resource: 'Deployment/default/release-name-operator',
      path: 'spec.template.spec.containers[0].args[0]',
      chart: 'widget-operator',
      origin: 'widget-operator/templates/deployment.yaml',
    });
    const where = (ref: string) => [first(ref)?.source, first(ref)?.path];
    assert.deepEqual(where('ghcr.io/airlock-test/acme-solver:v1.14.2'), ['args', 'spec.template.spec.containers[0].args[2]']);
    assert.deepEqual(where('registry.example.com/sidecars/envoy:v1.30.1'), ['env', 'spec.template.spec.containers[0].env[0].value']);
    assert.deepEqual(where('ghcr.io/airlock-test/backup-agent:4.2.0'), ['configmap', 'data.backup-image']);
    assert.deepEqual(where('quay.io/airlock-test/metrics-exporter:v0.15.0'), ['configmap', 'data["operator.yaml"].exporters.metrics.image']);
    assert.deepEqual(where('quay.io/airlock-test/widget-server:v1.8.0'), ['cr-image-field', 'spec.image']);
    assert.deepEqual(where('docker.io/airlock-test/warmup:2.0'), ['pod-spec', 'spec.podTemplate.spec.initContainers[0].image']);
    assert.equal(first('docker.io/airlock-test/warmup:2.0')?.resource, 'WidgetWorkerPool/default/release-name-workers');
    assert.deepEqual(where('quay.io/airlock-test/widget-operand:v1.8.0'), ['chart-annotation', 'annotations["helm.sh/images"][0]']);
    assert.ok(m.get('quay.io/airlock-test/widget-operator:v0.3.0')?.reasons.some((x) => x.source === 'values' && x.path === 'image'));
  });

  it('a {registry,repository,tag,digest} chart: hooks, test pod, CronJob, subchart overrides, .helmignore; optional images hidden', async () => {
    const r = await run(['shop']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout), SHOP_DEFAULT);
    assert.doesNotMatch(r.stdout, /ignored-by-helmignore|postgres:15\.0\.0|redis|shop-exporter/);
    assert.match(r.stderr, /2 optional images not listed.*--include-optional/);
  });

  it('--include-optional lists the optional ones with the values path that switches them on', async () => {
    const r = await run(['shop', '--include-optional', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const m = images(r.stdout);
    assert.deepEqual(m.get('docker.io/airlock-test/shop-exporter:0.11.0')?.optional?.valuesPath, 'metrics.enabled');
    assert.deepEqual(m.get('docker.io/airlock-test/redis:7.2.4')?.optional?.valuesPath, 'cache.enabled');
    assert.equal(m.get('docker.io/airlock-test/shop:1.4.2')?.optional, undefined);
    assert.equal(m.size, SHOP_DEFAULT.length + 2);
    const upgrade = m.get('docker.io/airlock-test/upgrade-notes:1.0.0')?.reasons[0];
    assert.equal(upgrade?.origin, 'shop/templates/upgrade-only.yaml');
    const pg = m.get('docker.io/airlock-test/postgres:15.6.0')?.reasons;
    assert.ok(pg?.some((x) => x.source === 'values' && x.path === 'db.image'), JSON.stringify(pg));
    assert.match(m.get('docker.io/airlock-test/shop-exporter:0.11.0')?.optional?.hint ?? '', /--set metrics\.enabled=true/);
  });

  it('--include-optional: a component a string mode switches is marked with the setting, on stdout and in --json', async () => {
    const text = await run(['string-modes', '--include-optional']);
    assert.equal(text.code, 0, text.stderr);
    assert.ok(lines(text.stdout).includes('registry.vendor.example/modes/proxy:1.27\t# optional: --set expose.type=clusterIP'), text.stdout);
    assert.ok(lines(text.stdout).includes('registry.vendor.example/modes/sentinel:3.1\t# optional: --set architecture=replication --set sentinel.enabled=true'), text.stdout);
    const json = await run(['string-modes', '--include-optional', '--json']);
    const proxy = images(json.stdout).get('registry.vendor.example/modes/proxy:1.27') as JsonImage & { optional: { switches?: string[] } };
    assert.deepEqual(proxy.optional.switches, ['expose.type=clusterIP']);
    assert.match(proxy.optional.hint, /--set expose\.type=clusterIP/);
  });

  it('switched on with --set, the optional images are rendered and required', async () => {
    const r = await run(['shop', '--set', 'metrics.enabled=true', '--set', 'cache.enabled=true', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const m = images(r.stdout);
    assert.equal(m.get('docker.io/airlock-test/shop-exporter:0.11.0')?.reasons[0]?.source, 'pod-spec');
    assert.equal(m.get('docker.io/airlock-test/redis:7.2.4')?.reasons[0]?.origin, 'shop/charts/cache/templates/deployment.yaml');
    assert.equal([...m.values()].filter((i) => i.optional).length, 0);
  });

  it('global.imageRegistry from a values file, on the packaged chart (.tgz) as on the directory', async () => {
    const pkg = join(tmp, 'pkg');
    await promisify(execFile)(HELM, ['package', join(FIX, 'shop'), '--destination', pkg], {
      env: { ...process.env, HELM_CACHE_HOME: join(tmp, 'hc'), HELM_CONFIG_HOME: join(tmp, 'hcfg'), HELM_DATA_HOME: join(tmp, 'hd') },
    });
    const values = join(tmp, 'mirror.yaml');
    await writeFile(values, 'global:\n  imageRegistry: registry.internal:5000\n');
    const fromDir = await run(['shop', '-f', values, '--include-optional']);
    const fromTgz = await run([join(pkg, 'shop-1.4.2.tgz'), '-f', values, '--include-optional']);
    assert.equal(fromDir.code, 0, fromDir.stderr);
    assert.equal(fromTgz.code, 0, fromTgz.stderr);
    assert.deepEqual(lines(fromTgz.stdout), lines(fromDir.stdout));
    const got = refs(fromDir.stdout);
    for (const moved of ['shop:1.4.2', 'shop-migrate:1.4.2', 'postgres:15.6.0', 'shop-exporter:0.11.0']) {
      assert.ok(got.includes(`registry.internal:5000/airlock-test/${moved}`), `${moved} moved to the global registry:\n${got.join('\n')}`);
    }
    assert.ok(got.includes('docker.io/airlock-test/shop-reindex:1.4.2'), 'hard-coded images stay where they are');
    // the cache subchart's template ignores global.imageRegistry: reported where it would really be pulled from
    assert.ok(got.includes('docker.io/airlock-test/redis:7.2.4'), got.join('\n'));
    assert.ok(lines(fromDir.stdout).includes('registry.internal:5000/airlock-test/shop-exporter:0.11.0\t# optional: --set metrics.enabled=true'), fromDir.stdout);
    assert.doesNotMatch(fromDir.stdout, /docker\.io\/airlock-test\/shop:1\.4\.2/);
    // human mode: optional images listed on stdout like the others, how to switch them on on stderr
    assert.match(fromDir.stderr, /optional: registry\.internal:5000\/airlock-test\/shop-exporter:0\.11\.0: .*--set metrics\.enabled=true/);
  });

  it('optional components composed the ways public charts compose them: rendered with their switches on, each with the key that switches it on', async () => {
    const r = await run(['vendor', '--include-optional', '--kube-version', '1.29.3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const m = images(r.stdout);
    const optional = Object.fromEntries([...m.values()].filter((i) => i.optional).map((i) => [i.reference, i.optional!.valuesPath]));
    assert.deepEqual(optional, {
      'docker.io/library/busybox:1.36.1': 'persistence.enabled', // an init container of the main StatefulSet, set at initImage
      'docker.io/vendor/backup:5.0': 'backup.enabled', // registry + repository + tag
      'docker.io/vendor/gateway:2.4': 'gateway.enabled',
      'docker.io/vendor/tls-proxy:3.2.0': 'tls.enabled', // helm refuses tls on: from the values, tag from .Values.appVersion
      'ghcr.io/vendor/sync:3.1.0': 'sync.enabled', // image.name beside image.registry, tag from .Chart.AppVersion
      'quay.io/vendor/exporter:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef': 'exporter.enabled',
      'registry.k8s.io/defaultbackend-amd64:1.5': 'defaultBackend.enabled',
      'registry.k8s.io/kubectl:v1.29.3': 'kubectl.enabled', // the cluster's version, from --kube-version
      'vendor.example/app/admin:3.2.0': 'admin.enabled', // {{ .Values.admin.image }}:{{ .Values.appVersion }}
      'vendor.example/app/reporter:3.3.0': 'reporter.enabled', // top-level version
      'vendor.example/app/scheduler:3.1.0': 'scheduler.enabled', // .Chart.AppVersion inside a `with`
    });
    assert.deepEqual([...m.values()].filter((i) => !i.optional).map((i) => i.reference), ['docker.io/vendor/app:3.1.0']);
    assert.match(m.get('docker.io/library/busybox:1.36.1')!.optional!.hint, /rendered by vendor\/templates\/app\.yaml only when persistence\.enabled is on; switch it on with --set persistence\.enabled=true/);
    assert.equal(m.get('vendor.example/app/admin:3.2.0')!.reasons.find((x) => x.source === 'pod-spec')?.origin, 'vendor/templates/admin.yaml');
    // the upgrade render fails the way charts demanding existing passwords fail: helm's reason, not a wrapper line
    const warnings = resultOf(r.stdout).warnings as string[];
    assert.ok(warnings.some((w) => /rendering as an upgrade failed \(execution error at \(vendor\/templates\/secret\.yaml:8:15\): PASSWORDS ERROR: You must provide your current passwords when upgrading the release\. 'auth\.password' must not be empty/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /helm fails with tls\.enabled switched on \(.*tls\.secretName is required/.test(w)), warnings.join('\n'));
    assert.ok(!warnings.some((w) => /Kubernetes version helm assumes/.test(w)), 'no guess with --kube-version');
  });

  it('global.image.registry, global.registry and a top-level imageRegistry move the optional images the chart moves, and only those', async () => {
    const r = await run(['vendor', '--include-optional', '-f', 'values/vendor-mirrors.yaml']);
    assert.equal(r.code, 0, r.stderr);
    const got = refs(r.stdout);
    for (const ref of [
      'mirror.example:5000/vendor/backup:5.0',
      'mirror.example:5000/vendor/tls-proxy:3.2.0', // from the values alone: the global registry applied
      'sync-mirror.example/vendor/sync:3.1.0',
      'gateway-mirror.example/vendor/gateway:2.4',
      'docker.io/vendor/app:3.1.0', // its template reads image.registry only
    ]) {
      assert.ok(got.includes(ref), `${ref} in:\n${got.join('\n')}`);
    }
    assert.doesNotMatch(r.stdout, /docker\.io\/vendor\/(backup|tls-proxy|gateway)|ghcr\.io\/vendor\/sync/);
    // without --kube-version: helm's own default version, never latest
    assert.match(r.stdout, /^registry\.k8s\.io\/kubectl:v1\.[0-9]+\.[0-9]+\t# optional: --set kubectl\.enabled=true$/m);
    assert.doesNotMatch(r.stdout, /:latest/);
    // ... and it says the tag is helm's guess, naming the image and the flag
    assert.match(r.stderr, /registry\.k8s\.io\/kubectl:v1\.[0-9]+\.[0-9]+ is tagged v1\.[0-9]+\.[0-9]+, the Kubernetes version helm assumes[^\n]*--kube-version/);
    assert.equal(r.stderr.match(/the Kubernetes version helm assumes/g)?.length, 1, r.stderr);
  });

  it('--release-name and --namespace shape resource names as helm template does', async () => {
    const named = await run(['vendor', '--include-optional', '--release-name', 'shop', '-n', 'apps', '--json']);
    assert.equal(named.code, 0, named.stderr);
    const m = images(named.stdout);
    assert.equal(m.get('docker.io/vendor/app:3.1.0')?.reasons[0]?.resource, 'StatefulSet/apps/shop-app');
    assert.equal(m.get('vendor.example/app/admin:3.2.0')?.reasons.find((x) => x.source === 'pod-spec')?.resource, 'Deployment/apps/shop-admin');
    const plain = images((await run(['vendor', '--json'])).stdout);
    assert.equal(plain.get('docker.io/vendor/app:3.1.0')?.reasons[0]?.resource, 'StatefulSet/default/release-name-app');
    const bad = await run(['vendor', '--release-name', 'Not_Valid']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /release name "Not_Valid" is not one helm accepts/);
  });

  it('a kustomize overlay (through kubectl kustomize) and a plain manifest directory with List kinds and JSON', async () => {
    const r = await airlock(['discover', '--kubectl', kubectlPath(), 'kustomize/overlay', 'manifests', '--json'], { cwd: FIX, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const m = images(r.stdout);
    assert.deepEqual([...m.keys()], [
      'docker.io/airlock-test/app:1.0',
      'docker.io/airlock-test/backup:5.0',
      'docker.io/airlock-test/debugger:1.1',
      'docker.io/airlock-test/legacy:0.9',
      'docker.io/airlock-test/log-shipper:3.0.0',
      'ghcr.io/airlock-test/frontend:2.3.1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      'registry.example.com/mirror/nginx:1.27.0',
      'registry.k8s.io/airlock-test/node-agent:v1.2.0',
    ]);
    assert.equal(m.get('registry.example.com/mirror/nginx:1.27.0')?.reasons[0]?.resource, 'Deployment/storefront/api');
    assert.equal(m.get('registry.k8s.io/airlock-test/node-agent:v1.2.0')?.reasons[0]?.origin, 'manifests/list.yaml');
    assert.equal(m.get('docker.io/airlock-test/debugger:1.1')?.reasons[0]?.path, 'spec.ephemeralContainers[0].image');
    assert.equal(m.get('docker.io/airlock-test/backup:5.0')?.reasons[0]?.origin, 'manifests/jobs/backup.json');
  });
});

describe('airlock discover: bad input', { concurrency: true }, () => {
  it('a chart that fails to render: helm\'s message, the chart and the values named, exit 2, nothing on stdout', async () => {
    const r = await run(['bad/broken-chart', '--set', 'replicas=2']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /helm template for chart bad\/broken-chart with --set replicas=2 failed/);
    assert.match(r.stderr, /broken chart: \.Values\.required must be set/);
    assert.equal(r.stdout, '');
  });

  it('a missing helm binary is actionable (exit 3)', async () => {
    const r = await airlock(['discover', '--helm', '/nonexistent/helm', 'shop'], { cwd: FIX });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /helm binary "\/nonexistent\/helm" \(from --helm\) does not exist/);
    assert.match(r.stderr, /hint: install helm/);
  });

  // The same boundary in-process: each error's class, exit code, message and hint.
  const fails = async (o: Partial<DiscoverOptions>, exitCode: number, message: RegExp, hint?: RegExp) => {
    await assert.rejects(discoverImages({ inputs: [], helm: HELM, cwd: FIX, ...o }), (e: AirlockError) => {
      assert.ok(isAirlockError(e), String(e));
      assert.equal(e.exitCode, exitCode, e.message);
      assert.match(e.message, message);
      if (hint) assert.match(e.hint ?? '', hint);
      return true;
    });
  };
  it('a dependency that cannot be found: offline, with the command that fixes it', () =>
    fails({ inputs: ['bad/missing-dep'] }, 2, /missing in charts\/ directory: absent/, /helm dependency build/));
  it('a malformed values file is named', () =>
    fails({ inputs: ['shop'], valuesFiles: ['bad/malformed-values.yaml'] }, 2, /values file bad\/malformed-values\.yaml is not valid YAML/));
  it('a values file that does not exist', () => fails({ inputs: ['shop'], valuesFiles: ['nope.yaml'] }, 3, /values file nope\.yaml does not exist/));
  it('a directory with no manifests', () => fails({ inputs: ['bad/empty-dir'] }, 2, /bad\/empty-dir holds no Kubernetes manifests/));
  it('a path that does not exist', () => fails({ inputs: ['no/such/chart'] }, 3, /no\/such\/chart does not exist/));
  it('values flags without a chart', () => fails({ inputs: ['manifests'], set: ['a=b'] }, 2, /apply to charts, and no input is a chart/));
  it('a remote chart reference', () => fails({ inputs: ['oci://registry.example.com/charts/shop'] }, 2, /discover works on local files/, /helm pull/));
  it('a helm template passed as a manifest', () =>
    fails({ inputs: ['shop/templates/deployment.yaml'] }, 2, /not valid YAML.*looks like a helm template: pass the chart directory/));
});
