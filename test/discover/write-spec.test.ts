// `airlock discover --write`: merges into airlock.yaml keeping what a person wrote, comments each
// new entry with its source, and leaves the file untouched on any error.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseSpec } from '../../src/spec/spec.ts';
import { commentFor, writeDiscoveredToSpec } from '../../src/discover/write-spec.ts';
import { preprocessDiscoverArgs } from '../../src/cli/commands/discover.ts';
import { airlock } from '../helpers/cli.ts';
import { helmPath } from '../helpers/helm.ts';

const FIX = fileURLToPath(new URL('../fixtures/discover/', import.meta.url));
const HELM = helmPath();

const HAND_WRITTEN = `# The shop, as carried into the plant network.
apiVersion: airlock.dev/v1alpha1
kind: Bundle
metadata:
  name: shop
  version: 1.4.2 # bump with the chart
platforms: [linux/amd64]
images:
  # our own debugging image, not in any chart
  - registry.example.com/tools/toolbox:2024.1
  - docker.io/airlock-test/shop:1.4.2 # pinned by hand
  - busybox:1.36
`;

describe('discover --write', { concurrency: true }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-discover-write-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('merges into a hand-written spec: every line kept, new images appended with their source; a second run changes nothing', async () => {
    const spec = join(dir, 'merge', 'airlock.yaml');
    await rm(join(dir, 'merge'), { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'merge')));
    await writeFile(spec, HAND_WRITTEN);
    const r = await airlock(['discover', '--helm', HELM, join(FIX, 'shop'), '--write', spec], { cwd: FIX });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /updated .*airlock\.yaml: 6 images added, 2 already there/);
    const text = await readFile(spec, 'utf8');
    for (const line of HAND_WRITTEN.trimEnd().split('\n')) assert.ok(text.includes(line), `kept: ${line}\n---\n${text}`);
    assert.match(text, /  # from chart shop: Job\/default\/release-name-migrate spec\.template\.spec\.containers\[0\]\.image \(\+1 more\)\n  - docker\.io\/airlock-test\/shop-migrate:1\.4\.2\n/);
    assert.match(text, /  # from chart shop: StatefulSet\/default\/release-name-db spec\.template\.spec\.containers\[0\]\.image \(\+1 more\)\n  - docker\.io\/airlock-test\/postgres:15\.6\.0\n/);
    const parsed = parseSpec(text, spec);
    assert.equal(parsed.images.length, 3 + 6);
    assert.equal(text.match(/busybox/g)?.length, 1, 'busybox:1.36 is the same image as docker.io/library/busybox:1.36');

    const again = await airlock(['discover', '--helm', HELM, join(FIX, 'shop'), '--write', spec], { cwd: FIX });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already lists every discovered image; not changed/);
    assert.equal(await readFile(spec, 'utf8'), text);
  });

  it('--write with no file name writes ./airlock.yaml, a new spec named after its directory', async () => {
    const cwd = await mkdtemp(join(dir, 'Shop Deploy-'));
    const r = await airlock(['discover', '--write', join(FIX, 'manifests'), '--json'], { cwd });
    assert.equal(r.code, 0, r.stderr);
    const text = await readFile(join(cwd, 'airlock.yaml'), 'utf8');
    const parsed = parseSpec(text);
    assert.match(parsed.name, /^shop-deploy-/);
    assert.equal(parsed.images.length, 6);
    assert.match(text, /# from \S*manifests\/list\.yaml: DaemonSet\/kube-system\/node-agent spec\.template\.spec\.containers\[0\]\.image\n/);
  });

  it('leaves the spec untouched when the chart fails to render or the spec is broken', async () => {
    const spec = join(dir, 'untouched.yaml');
    await writeFile(spec, HAND_WRITTEN);
    const before = await stat(spec);
    const r = await airlock(['discover', '--helm', HELM, join(FIX, 'bad/broken-chart'), '--write', spec], { cwd: FIX });
    assert.equal(r.code, 2);
    assert.equal(await readFile(spec, 'utf8'), HAND_WRITTEN);
    assert.equal((await stat(spec)).mtimeMs, before.mtimeMs);

    const brokenText = 'apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nimages: [unclosed\n';
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, brokenText);
    const finding = { reference: 'docker.io/library/nginx:1.27', reasons: [{ source: 'pod-spec' as const, resource: 'Pod/default/p', path: 'spec.containers[0].image' }] };
    await assert.rejects(writeDiscoveredToSpec(broken, [finding]), /not valid YAML.*|it was not changed/);
    assert.equal(await readFile(broken, 'utf8'), brokenText);

    const noName = join(dir, 'no-name.yaml');
    const noNameText = 'apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nimages:\n  - nginx:1.26\n';
    await writeFile(noName, noNameText);
    await assert.rejects(writeDiscoveredToSpec(noName, [finding]), /would not be valid.*metadata\.name.*it was not changed/);
    assert.equal(await readFile(noName, 'utf8'), noNameText);
  });

  it('a flow-style empty list becomes a block list; optional images say how to switch them on', async () => {
    const spec = join(dir, 'flow.yaml');
    await writeFile(spec, 'apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: x}\nimages: []\ncharts:\n  - name: shop\n    path: ./shop\n');
    const optional = {
      reference: 'docker.io/acme/exporter:0.1',
      reasons: [{ source: 'values' as const, resource: 'Chart/shop', path: 'metrics.image', chart: 'shop' }],
      optional: { valuesPath: 'metrics.enabled', hint: '' },
    };
    const res = await writeDiscoveredToSpec(spec, [optional]);
    assert.deepEqual(res.added, ['docker.io/acme/exporter:0.1']);
    const text = await readFile(spec, 'utf8');
    assert.match(text, /images:\n  # from chart shop values: metrics\.image; optional: --set metrics\.enabled=true\n  - docker\.io\/acme\/exporter:0\.1\n/);
    assert.match(text, /charts:\n  - name: shop\n    path: \.\/shop\n/);
    assert.equal(commentFor(optional), ' from chart shop values: metrics.image; optional: --set metrics.enabled=true');
  });

  it('with no inputs, discovers the charts the spec lists with a local path (with their values) and writes back into it', async () => {
    const cwd = await mkdtemp(join(dir, 'from-spec-'));
    await writeFile(join(cwd, 'values-airgap.yaml'), 'metrics:\n  enabled: true\n');
    const specText = [
      'apiVersion: airlock.dev/v1alpha1',
      'kind: Bundle',
      'metadata: {name: shop}',
      'charts:',
      `  - name: shop`,
      `    path: ${join(FIX, 'shop')}`,
      '    values: [values-airgap.yaml]',
      '  - name: remote',
      '    repo: https://charts.example.com',
      '    version: ^1.0.0',
      '',
    ].join('\n');
    await writeFile(join(cwd, 'airlock.yaml'), specText);
    const r = await airlock(['discover', '--helm', HELM, '--write'], { cwd });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /chart remote comes from https:\/\/charts\.example\.com: discover reads local charts only/);
    assert.ok(r.stdout.split('\n').includes('docker.io/airlock-test/shop-exporter:0.11.0'), 'the spec\'s values file switched the exporter on');
    const text = await readFile(join(cwd, 'airlock.yaml'), 'utf8');
    assert.ok(text.startsWith(specText), text);
    assert.equal(parseSpec(text).images.length, 9);
    assert.equal(parseSpec(text).charts.length, 2);
  });

  it('--write takes a following *.yaml only when it is a spec (or does not exist yet)', async () => {
    const spec = join(dir, 'pre.yaml');
    await writeFile(spec, HAND_WRITTEN);
    const manifest = join(FIX, 'manifests/app.yaml');
    assert.deepEqual(preprocessDiscoverArgs(['--write', spec, 'x']), [`--write=${spec}`, 'x']);
    assert.deepEqual(preprocessDiscoverArgs(['x', '--write']), ['x', '--write=']);
    assert.deepEqual(preprocessDiscoverArgs(['--write', '--json', 'x']), ['--write=', '--json', 'x']);
    assert.deepEqual(preprocessDiscoverArgs(['--write', manifest]), ['--write=', manifest]);
    assert.deepEqual(preprocessDiscoverArgs(['--write', join(dir, 'new-spec.yml')]), [`--write=${join(dir, 'new-spec.yml')}`]);
    assert.deepEqual(preprocessDiscoverArgs(['--write=a.yaml', 'chart']), ['--write=a.yaml', 'chart']);
  });
});
