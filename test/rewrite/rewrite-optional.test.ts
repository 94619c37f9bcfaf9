// `airlock rewrite --include-optional`: the overlay also redirects the images of components a chart
// switches off by default (an exporter under `metrics.enabled: false` with registry + repository +
// tag keys, a sidecar under a nested switch whose tag is the chart's appVersion, a subchart under its
// condition), found by discover's renders with the switches on, and proven by rendering the chart
// the way a user later installs it: `helm template -f overlay.yaml --set metrics.enabled=true ...`.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseReference } from '../../src/core/reference.ts';
import { parseTarget } from '../../src/rewrite/mapping.ts';
import { rewriteChart } from '../../src/rewrite/rewrite.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { HELM, places, pushedUnder, render } from './support/render.ts';

const CHART = fileURLToPath(new URL('../fixtures/rewrite/observatory', import.meta.url));
const MODES = fileURLToPath(new URL('../fixtures/discover/string-modes', import.meta.url));
const REGISTRY = '127.0.0.1:5000/mirror';
const TARGET = parseTarget(REGISTRY);
const ALL_ON = ['--set', 'metrics.enabled=true', '--set', 'metrics.authProxy.enabled=true', '--set', 'cache.enabled=true'];
const SNAPSHOT_PLACE = 'CronJob/default/release-name-backup spec.jobTemplate.spec.template.spec.containers[0].image';

const pushed = pushedUnder(TARGET);
const renderChart = (extra: string[] = [], chart = CHART): Promise<string> => render(chart, extra);




/** Every place of the render with the overlay names what push made of the image it named without it (same tag), except `left`. */
function assertPushed(before: string, afterText: string, left: string[] = []): void {
  const was = places(before);
  const now = places(afterText);
  assert.ok(was.size > 0);
  assert.deepEqual([...now.keys()].sort(), [...was.keys()].sort());
  for (const [place, refs] of was) {
    if (left.includes(place)) continue;
    const got = now.get(place)!;
    assert.deepEqual(got, refs.map(pushed).sort(), place);
    for (const [i, ref] of got.entries()) {
      assert.ok(ref.startsWith(`${REGISTRY}/`), `${place}: ${ref} is under ${REGISTRY}`);
      assert.equal(parseReference(ref).tag, parseReference(refs[i]!).tag, `${place}: tag unchanged`);
    }
  }
}

describe('airlock rewrite --include-optional', { concurrency: true }, () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'airlock-rewrite-optional-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('without it the overlay covers the default render only: switching the exporter on later pulls from upstream', async () => {
    const r = await rewriteChart({ chart: CHART, registry: REGISTRY, helm: HELM });
    assert.equal(r.optional, undefined);
    assert.deepEqual(r.images.map((i) => i.reference), ['vendor.example/obs/server:2.4.0']);
    const file = join(tmp, 'default.yaml');
    await writeFile(file, r.overlayText);
    const outside = [...places(await renderChart(['-f', file, ...ALL_ON])).values()].flat().filter((ref) => !ref.startsWith(`${REGISTRY}/`));
    assert.deepEqual(outside.sort(), ['docker.io/vendorexample/kv-cache:7.2.4', 'docker.io/vendorexample/obs-exporter:0.9.1', 'quay.io/vendor-example/auth-proxy:2.4.0']);
  });

  it('with it, helm template -f overlay.yaml --set metrics.enabled=true ... renders every image under R/P with its tag unchanged', async () => {
    const r = await rewriteChart({ chart: CHART, registry: REGISTRY, helm: HELM, includeOptional: true });
    const file = join(tmp, 'optional.yaml');
    await writeFile(file, r.overlayText);
    // all switched on, as the test's user would
    assertPushed(await renderChart(ALL_ON), await renderChart(['-f', file, ...ALL_ON]));
    // each component alone, and the default render (values for components that are off change nothing there)
    assertPushed(await renderChart(['--set', 'metrics.enabled=true']), await renderChart(['-f', file, '--set', 'metrics.enabled=true']));
    assertPushed(await renderChart(['--set', 'cache.enabled=true']), await renderChart(['-f', file, '--set', 'cache.enabled=true']));
    assertPushed(await renderChart(), await renderChart(['-f', file]));
    // the hard-coded snapshot image of the backup job is the one thing values cannot move
    assertPushed(await renderChart(['--set', 'backup.enabled=true']), await renderChart(['-f', file, '--set', 'backup.enabled=true']), [SNAPSHOT_PLACE]);
  });

  it('reports each optional image with the values key that switches it on: moved, or left with its template line', async () => {
    const r = await rewriteChart({ chart: CHART, registry: REGISTRY, helm: HELM, includeOptional: true });
    assert.ok(r.optional);
    assert.deepEqual(r.optional.failed, []);
    assert.deepEqual(r.optional.renders, [['metrics.enabled', 'metrics.authProxy.enabled', 'cache.enabled', 'backup.enabled']]);
    assert.deepEqual(
      r.optional.moved.map((m) => [m.reference, m.target, m.switches]),
      [
        ['docker.io/vendorexample/kv-cache:7.2.4', `${REGISTRY}/vendorexample/kv-cache:7.2.4`, ['cache.enabled']],
        ['docker.io/vendorexample/obs-exporter:0.9.1', `${REGISTRY}/vendorexample/obs-exporter:0.9.1`, ['metrics.enabled']],
        ['quay.io/vendor-example/auth-proxy:2.4.0', `${REGISTRY}/vendor-example/auth-proxy:2.4.0`, ['metrics.enabled', 'metrics.authProxy.enabled']],
      ],
    );
    assert.deepEqual(r.optional.left.map((l) => [l.reference, l.switch]), [['vendor.example/tools/snapshot:1.0', 'backup.enabled']]);
    assert.deepEqual(
      r.notRedirected.map((n) => [`${n.resource} ${n.path}`, n.template, n.line, n.optional?.valuesPath]),
      [[SNAPSHOT_PLACE, 'observatory/templates/backup.yaml', 15, 'backup.enabled']],
    );
    // the image the user's values render is not optional, and its place is the user's render's
    const server = r.images.find((i) => i.reference === 'vendor.example/obs/server:2.4.0')!;
    assert.equal(server.optional, undefined);
    assert.equal(server.places.length, 1);
    assert.equal(server.places[0]!.switches, undefined);
    assert.match(r.overlayText, /3 of 4 belong to components switched off by default/);
  });

  it('CLI: --include-optional --json lists them and exits 7 for the hard-coded one; --post-render-fallback leaves nothing (0); without the flag nothing changes (0)', async () => {
    const withFlag = await airlock(['rewrite', CHART, '--registry', REGISTRY, '--include-optional', '--helm', HELM, '--json']);
    assert.equal(withFlag.code, 7, withFlag.stderr);
    const j = resultOf(withFlag.stdout) as { optional: { moved: unknown[]; left: { reference: string; switch: string }[] }; overlay: Record<string, unknown> };
    assert.equal(j.optional.moved.length, 3);
    assert.deepEqual(j.optional.left.map((l) => [l.reference, l.switch]), [['vendor.example/tools/snapshot:1.0', 'backup.enabled']]);

    const out = join(tmp, 'cli.yaml');
    const fallback = await airlock(['rewrite', CHART, '--registry', REGISTRY, '--include-optional', '--post-render-fallback', '--helm', HELM, '-o', out]);
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(fallback.stderr, /include-optional: rendered with 4 switches on too .*: 3 of 4 optional images redirected/);
    assert.match(fallback.stderr, /with the post-renderer too .*: every image points at/);

    const plain = await airlock(['rewrite', CHART, '--registry', REGISTRY, '--helm', HELM, '--json']);
    assert.equal(plain.code, 0, plain.stderr);
    const p = resultOf(plain.stdout) as Record<string, unknown>;
    assert.equal('optional' in p, false);
    assert.deepEqual(p.overlay, { server: { image: { registry: REGISTRY } } });
  });

  it('components a string mode switches (expose.type: clusterIP, architecture: replication) are covered too, named by the setting', async () => {
    const r = await rewriteChart({ chart: MODES, registry: REGISTRY, helm: HELM, includeOptional: true });
    assert.ok(r.optional);
    assert.deepEqual(r.optional.failed, []);
    assert.deepEqual(r.optional.renders, [['sentinel.enabled'], ['expose.type=clusterIP', 'architecture=replication', 'sentinel.enabled'], ['expose.type=nodePort', 'sentinel.enabled']]);
    assert.deepEqual(
      r.optional.moved.map((m) => [m.reference, m.switches]),
      [
        ['registry.vendor.example/modes/proxy:1.27', ['expose.type=clusterIP']],
        ['registry.vendor.example/modes/replica-agent:3.1', ['architecture=replication']],
        ['registry.vendor.example/modes/sentinel:3.1', ['architecture=replication', 'sentinel.enabled']],
      ],
    );
    assert.deepEqual(r.optional.left, []);
    const file = join(tmp, 'modes.yaml');
    await writeFile(file, r.overlayText);
    for (const on of [[], ['--set', 'expose.type=clusterIP'], ['--set', 'expose.type=nodePort'], ['--set', 'architecture=replication', '--set', 'sentinel.enabled=true']]) {
      assertPushed(await renderChart(on, MODES), await renderChart(['-f', file, ...on], MODES));
    }
  });
});
