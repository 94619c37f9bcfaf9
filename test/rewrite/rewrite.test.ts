// `airlock rewrite`: a values overlay through the chart's own knobs (global.imageRegistry where the
// chart honours it, each image's values path in its own shape), proven by rendering again with the
// real helm 4.1.4; what values cannot redirect is listed and the post-renderer finishes the job.
// Every expectation is cross-checked against mapAll, the mapping call push makes.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { formatReference, parseReference } from '../../src/core/reference.ts';
import { resolveChartValues, type ChartNode } from '../../src/discover/chart-values.ts';
import { parseManifestStream } from '../../src/discover/sources.ts';
import { runHelm } from '../../src/helm/helm-runner.ts';
import { locateImages } from '../../src/rewrite/locate.ts';
import { mapAll, parseTarget } from '../../src/rewrite/mapping.ts';
import { imagesOutside, postRender } from '../../src/rewrite/post-render.ts';
import { rewriteChart } from '../../src/rewrite/rewrite.ts';
import { knobsFor, setOverlayValue, valuesKnobs, writesFor } from '../../src/rewrite/values-overlay.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { helmPath } from '../helpers/helm.ts';

const FIX = fileURLToPath(new URL('../fixtures/rewrite/', import.meta.url));
const BAD = fileURLToPath(new URL('../fixtures/discover/bad/', import.meta.url));
const HELM = helmPath();
const REGISTRY = '127.0.0.1:5000/mirror';
const TARGET = parseTarget(REGISTRY);

/** Where push puts an image (its own mapping call, mapAll): what every rewrite must point at. */
const pushed = (ref: string): string => formatReference(mapAll([parseReference(ref)], TARGET).get(formatReference(parseReference(ref)))!);
const render = async (chart: string, extra: string[] = []) => (await runHelm(['template', chart, ...extra], { helm: HELM })).stdout;
const rewrite = (args: string[]) => airlock(['rewrite', '--helm', HELM, ...args], { timeoutMs: 60_000 });

function places(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of parseManifestStream(text, 'test')) for (const l of locateImages(m.object).locations) out.set(`${l.resource} ${l.path}`, l.references);
  return out;
}

/** Each place names exactly what push made of the image it named before: the proof, done again here. */
function assertPushedPlaces(before: string, afterText: string): void {
  const was = places(before);
  const now = places(afterText);
  assert.ok(was.size > 0);
  assert.deepEqual([...now.keys()].sort(), [...was.keys()].sort());
  for (const [place, refs] of was) assert.deepEqual(now.get(place), refs.map(pushed).sort(), place);
}

describe('airlock rewrite', { concurrency: true }, () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'airlock-rewrite-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('a chart that honours global.imageRegistry: the overlay sets it, fixes what it alone gets wrong, and a render proves it', async () => {
    const chart = join(FIX, 'webshop');
    const r = await rewriteChart({ chart, registry: REGISTRY, helm: HELM });
    assert.equal(r.globalImageRegistry, true);
    assert.deepEqual(r.overlay, {
      global: { imageRegistry: REGISTRY },
      // its template ignores global.imageRegistry: redirected through its own map's registry
      cleanup: { image: { registry: REGISTRY } },
      // `busybox` under a global registry would be R/P/busybox; push puts it at R/P/library/busybox
      waitForDb: { image: { repository: 'library/busybox' } },
    });
    assert.deepEqual(r.notRedirected, []);
    assert.deepEqual(
      r.images.map((i) => [i.reference, i.status, i.via.join('+')]),
      [
        ['docker.io/airlock-test/webshop-cleanup:1.0.4', 'redirected', 'values'],
        ['docker.io/airlock-test/webshop:3.1.0', 'redirected', 'global.imageRegistry'],
        ['docker.io/library/busybox:1.36', 'redirected', 'global.imageRegistry+values'],
        ['ghcr.io/airlock-test/webshop-exporter:0.11.0', 'redirected', 'global.imageRegistry'],
        ['quay.io/airlock-test/webshop-migrate@sha256:3bc801a33ea83df414e1aeb962a52412835be99db28668ec25de73fdd4733804', 'redirected', 'global.imageRegistry'],
      ],
    );
    for (const i of r.images) assert.equal(i.target, pushed(i.reference));

    // Proven again, independently: helm with the overlay file renders every image where push put it.
    const file = join(tmp, 'webshop-overlay.yaml');
    await writeFile(file, r.overlayText);
    assert.deepEqual(parse(r.overlayText), r.overlay);
    assert.match(r.overlayText, /# Proven by rendering again: 5 of 5 images point at 127\.0\.0\.1:5000\/mirror\./);
    const plain = await render(chart);
    const redirected = await render(chart, ['-f', file]);
    assertPushedPlaces(plain, redirected);
    assert.deepEqual(imagesOutside(redirected, TARGET), []);
    assert.ok(redirected.includes("image: '127.0.0.1:5000/mirror/airlock-test/webshop-migrate@sha256:3bc801a33ea83df414e1aeb962a52412835be99db28668ec25de73fdd4733804'"), 'digest kept');
  });

  it('subcharts with {repository, tag} maps, image strings and lists, with the user\'s own values; overlay in the same shapes', async () => {
    const user = join(tmp, 'platform-values.yaml');
    await writeFile(user, 'api:\n  image:\n    tag: 2.2.0\nworker:\n  replicas: 2\n');
    const out = join(tmp, 'platform-overlay.yaml');
    const r = await rewrite([join(FIX, 'platform'), '--registry', REGISTRY, '-f', user, '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stdout);
    assert.equal(res.file, out);
    assert.equal(res.globalImageRegistry, false);
    assert.deepEqual(res.notRedirected, []);
    assert.ok((res.images as { status: string }[]).every((i) => i.status === 'redirected'));

    const overlay = parse(await readFile(out, 'utf8')) as Record<string, any>;
    assert.deepEqual(overlay, {
      api: {
        image: { repository: '127.0.0.1:5000/mirror/airlock-test/platform-api' },
        // helm replaces lists: the whole list, ports and names kept, images mapped
        sidecars: [
          { name: 'envoy', image: '127.0.0.1:5000/mirror/envoyproxy/envoy:v1.30.1', port: 9901 },
          { name: 'log-shipper', image: '127.0.0.1:5000/mirror/fluent/fluent-bit:3.0.4', port: 2020 },
        ],
      },
      worker: {
        image: { repository: '127.0.0.1:5000/mirror/airlock-test/platform-worker' },
        initImage: '127.0.0.1:5000/mirror/library/busybox:1.36@sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91',
      },
      proxy: { image: '127.0.0.1:5000/mirror/library/nginx:1.27' },
    });

    const plain = await render(join(FIX, 'platform'), ['-f', user]);
    const redirected = await render(join(FIX, 'platform'), ['-f', user, '-f', out]);
    assertPushedPlaces(plain, redirected);
    assert.ok(redirected.includes('image: "127.0.0.1:5000/mirror/airlock-test/platform-api:2.2.0"'), "the user's tag");
    assert.ok(redirected.includes('replicas: 2'), "the user's other values");
  });

  it('an operator whose sidecars are written in args and env: what values cannot redirect is listed (exit 7), the post-renderer fixes it', async () => {
    const chart = join(FIX, 'gizmo-operator');
    const out = join(tmp, 'gizmo-overlay.yaml');
    const r = await rewrite([chart, '--registry', REGISTRY, '-o', out]);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, '');
    const operator = 'Deployment/default/release-name-gizmo-operator';
    for (const line of [
      `not redirected: ${operator} spec.template.spec.containers[0].args[0]: docker.io/airlock-test/gizmo-sidecar:v1.2.0`,
      `not redirected: ${operator} spec.template.spec.containers[0].args[2]: registry.k8s.io/pause:3.9`,
      `not redirected: ${operator} spec.template.spec.containers[0].env[0].value: ghcr.io/airlock-test/gizmo-agent:1.0@sha256:d4f0bc5a29de06b510f9aa428f1eedba926012b591fef7a518e776a7c9bd1824`,
      'not redirected: GizmoCluster/default/release-name-gizmo spec.exporter: ghcr.io/airlock-test/gizmo-exporter:0.9',
      'not redirected: ConfigMap/default/release-name-gizmo-defaults data.backup-image: ghcr.io/airlock-test/gizmo-backup:2.0.1',
    ]) {
      assert.ok(r.stderr.includes(line), `${line}\n---\n${r.stderr}`);
    }
    assert.match(r.stderr, /2 of 7 images now point where push put them/);
    assert.match(r.stderr, /--post-renderer airlock-postrender --post-renderer-args --registry=127\.0\.0\.1:5000\/mirror/);

    const text = await readFile(out, 'utf8');
    assert.deepEqual(parse(text), {
      image: { repository: '127.0.0.1:5000/mirror/airlock-test/gizmo-operator' },
      operand: { image: '127.0.0.1:5000/mirror/airlock-test/gizmo:v1.2.0' },
    });
    assert.match(text, /Values cannot redirect these; add the post-renderer/);

    // The overlay and then the post-renderer: nothing is left outside R, each where push put it.
    const plain = await render(chart);
    const withOverlay = await render(chart, ['-f', out]);
    const leftover = imagesOutside(withOverlay, TARGET).map((i) => i.image).sort();
    assert.equal(leftover.length, 5);
    const final = postRender(withOverlay, TARGET);
    assert.deepEqual(final.remaining, []);
    assert.deepEqual(final.changed.map((c) => c.from).sort(), leftover);
    assertPushedPlaces(plain, final.text);
  });

  it('a chart that refuses other registries unless global.security.allowInsecureImages: the overlay says so', async () => {
    const chart = join(FIX, 'vetted');
    const r = await rewriteChart({ chart, registry: REGISTRY, helm: HELM });
    assert.deepEqual(r.overlay, { global: { imageRegistry: REGISTRY, security: { allowInsecureImages: true } } });
    assert.deepEqual(r.notRedirected, []);
    assert.ok(r.warnings.some((w) => /allowInsecureImages/.test(w)));
    const file = join(tmp, 'vetted-overlay.yaml');
    await writeFile(file, r.overlayText);
    assertPushedPlaces(await render(chart), await render(chart, ['-f', file]));
  });

  it('a hub value the templates put in front of image names (istio style) is rewritten, and the render proves it', async () => {
    const chart = join(FIX, 'mesh');
    const r = await rewriteChart({ chart, registry: REGISTRY, helm: HELM });
    assert.deepEqual(r.overlay, { global: { hub: '127.0.0.1:5000/mirror/airlock-test' } });
    assert.deepEqual(r.notRedirected, []);
    const file = join(tmp, 'mesh-overlay.yaml');
    await writeFile(file, r.overlayText);
    const redirected = await render(chart, ['-f', file]);
    assertPushedPlaces(await render(chart), redirected);
    assert.ok(redirected.includes('--log_output_level=default:info'), 'the rest of global is kept');
  });

  it('one image map used by a template that honours global.imageRegistry and by one that does not: each place through the value it reads, proven', async () => {
    const chart = join(FIX, 'mixed');
    const r = await rewriteChart({ chart, registry: REGISTRY, helm: HELM });
    // The probe render shows the Deployment reads global.imageRegistry first and the Job only the
    // map's registry: both are set, to R/P, and the repository is left as it is.
    assert.equal(r.globalImageRegistry, true);
    assert.deepEqual(r.overlay, { global: { imageRegistry: REGISTRY }, image: { registry: REGISTRY } });
    assert.deepEqual(r.notRedirected, []);
    const file = join(tmp, 'mixed-overlay.yaml');
    await writeFile(file, r.overlayText);
    assertPushedPlaces(await render(chart), await render(chart, ['-f', file]));
  });

  it('a chart-wide registry value that wins over each image map: the maps alone misdirect, so the render says to use it instead', async () => {
    const chart = join(FIX, 'edge-proxy');
    const r = await rewriteChart({ chart, registry: REGISTRY, helm: HELM });
    assert.deepEqual(r.overlay, { global: { image: { registry: REGISTRY } } });
    assert.deepEqual(r.notRedirected, []);
    const file = join(tmp, 'edge-overlay.yaml');
    await writeFile(file, r.overlayText);
    const redirected = await render(chart, ['-f', file]);
    assertPushedPlaces(await render(chart), redirected);
    assert.ok(redirected.includes('127.0.0.1:5000/mirror/airlock-test/edge-proxy:2.3.0@sha256:3bc801a33ea83df414e1aeb962a52412835be99db28668ec25de73fdd4733804'), 'tag and digest kept');
  });

  it('prints the overlay on stdout without -o', async () => {
    const r = await rewrite([join(FIX, 'webshop'), '--registry', 'harbor.internal']);
    assert.equal(r.code, 0, r.stderr);
    const overlay = parse(r.stdout) as Record<string, any>;
    assert.equal(overlay.global.imageRegistry, 'harbor.internal');
    assert.match(r.stderr, /the chart honours global\.imageRegistry/);
    assert.match(r.stderr, /5 of 5 images now point where push put them \(harbor\.internal\)/);
  });

  it('bad input: a chart that does not render, a missing chart, no or a bad --registry', async () => {
    const broken = await rewrite([join(BAD, 'broken-chart'), '--registry', REGISTRY]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /helm template for chart .*broken-chart failed/);
    const missing = await rewrite([join(tmp, 'no-such-chart'), '--registry', REGISTRY]);
    assert.equal(missing.code, 3, missing.stderr);
    const noRegistry = await rewrite([join(FIX, 'webshop')]);
    assert.equal(noRegistry.code, 2);
    assert.match(noRegistry.stderr, /rewrite needs --registry R\[\/P\]/);
    const badRegistry = await rewrite([join(FIX, 'webshop'), '--registry', 'https://UPPER CASE']);
    assert.equal(badRegistry.code, 2);
    assert.match(badRegistry.stderr, /invalid target registry/);
    const missingValues = await rewrite([join(FIX, 'webshop'), '--registry', REGISTRY, '-f', join(tmp, 'nope.yaml')]);
    assert.equal(missingValues.code, 3, missingValues.stderr);
  });
});

describe('overlay values', () => {
  it('a hub above bare image names (istio style) is rewritten as a whole', () => {
    const node: ChartNode = {
      name: 'mesh',
      annotations: {},
      dependencies: [],
      subcharts: [],
      source: 'mesh',
      defaults: { global: { hub: 'docker.io/istio', tag: '1.24.0', proxy: { image: 'proxyv2' } } },
    };
    const { top, charts } = resolveChartValues(node, {});
    const image = 'docker.io/istio/proxyv2:1.24.0';
    const [knob] = knobsFor(image, valuesKnobs(charts));
    assert.ok(knob);
    assert.deepEqual(writesFor(knob, top, image, TARGET, 'full'), [{ segments: ['global', 'hub'], value: '127.0.0.1:5000/mirror/istio', images: [image] }]);
  });

  it('a path through a list writes the whole list, as computed', () => {
    const top = { a: { list: [{ x: 1, image: 'a:1' }, { x: 2, image: 'b:1' }], keep: true } };
    const overlay: Record<string, unknown> = {};
    setOverlayValue(overlay, top, ['a', 'list', 1, 'image'], 'R/b:1');
    assert.deepEqual(overlay, { a: { list: [{ x: 1, image: 'a:1' }, { x: 2, image: 'R/b:1' }] } });
    assert.equal(top.a.list[1]!.image, 'b:1', 'the computed values are not changed');
  });
});
