// `airlock rewrite` on the shapes real charts use, each fixture built for one class of them and
// proven by rendering again with the real helm: repositories whose tag (or digest, or registry)
// comes from another key, registry knobs the values never set (found by the probe render, not by a
// list of names), and images hard-coded in templates, which `--post-render-fallback` sends through
// airlock's helm 4 post-renderer plugin so that nothing is left outside R/P.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseTarget } from '../../src/rewrite/mapping.ts';
import { imagesOutside } from '../../src/rewrite/post-render.ts';
import { rewriteChart } from '../../src/rewrite/rewrite.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { HELM, places, pushedUnder, render, run } from './support/render.ts';

const FIX = fileURLToPath(new URL('../fixtures/rewrite/', import.meta.url));
const REGISTRY = '127.0.0.1:5000/mirror';
const TARGET = parseTarget(REGISTRY);
const BUSYBOX_PLACE = 'Deployment/default/release-name-proxy spec.template.spec.initContainers[0].image';

const pushed = pushedUnder(TARGET);




/** Every place names what push made of the image it named before, except the places listed as left. */
function assertPushedPlaces(before: string, afterText: string, left: string[] = []): void {
  const was = places(before);
  const now = places(afterText);
  assert.ok(was.size > 0);
  assert.deepEqual([...now.keys()].sort(), [...was.keys()].sort());
  for (const [place, refs] of was) assert.deepEqual(now.get(place), left.includes(place) ? refs : refs.map(pushed).sort(), place);
}

describe('airlock rewrite on real chart shapes', { concurrency: true }, () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'airlock-rewrite-shapes-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('repositories whose tag, digest or registry sit under other keys: each value set to the mapped piece, a render proves it', async () => {
    const chart = join(FIX, 'vendor-suite');
    const r = await rewriteChart({ chart, registry: REGISTRY, helm: HELM });
    assert.deepEqual(r.overlay, {
      // `{{ .Values.admin.image }}:{{ .Values.appVersion }}`, `:{{ .Chart.AppVersion }}`, `:{{ .Values.version }}`
      admin: { image: '127.0.0.1:5000/mirror/app/admin' },
      worker: { image: '127.0.0.1:5000/mirror/app/worker' },
      ui: { image: '127.0.0.1:5000/mirror/airlock-test/suite-ui' },
      // repository + versions.store + digests.store: the digest stays, it is the same in R/P
      store: { repository: '127.0.0.1:5000/mirror/airlock-test/suite-store' },
      // registry + repository + tag
      cache: { registry: '127.0.0.1:5000/mirror' },
      // docker.io + nginx is docker.io/library/nginx: push puts it at R/P/library/nginx
      proxy: { registry: '127.0.0.1:5000/mirror', repository: 'library/nginx' },
      // name beside registry
      exporter: { image: { registry: '127.0.0.1:5000/mirror' } },
    });
    assert.equal(r.images.length, 8);
    assert.deepEqual(
      r.notRedirected.map((n) => [`${n.resource} ${n.path}`, n.image, n.template, n.line]),
      [[BUSYBOX_PLACE, 'docker.io/library/busybox:1.36', 'vendor-suite/templates/proxy.yaml', 15]],
    );
    const template = (await readFile(join(chart, 'templates/proxy.yaml'), 'utf8')).split('\n');
    assert.match(template[14]!, /image: busybox:1\.36/, 'the line named is where the image is written');

    const file = join(tmp, 'suite.yaml');
    await writeFile(file, r.overlayText);
    const plain = await render(chart);
    const redirected = await render(chart, ['-f', file]);
    assertPushedPlaces(plain, redirected, [BUSYBOX_PLACE]);
    assert.ok(redirected.includes('127.0.0.1:5000/mirror/airlock-test/suite-store:2.1.0@sha256:3bc801a33ea83df414e1aeb962a52412835be99db28668ec25de73fdd4733804'), 'tag and digest kept');
    // The pull secret's `registry: docker.io` moved no image in the probe render: it is not touched.
    assert.ok(redirected.includes('{"auths":{"docker.io":{"username":"robot"}}}'));
  });

  it('registry knobs the values never set (global.image.registry, global.registry, imageRegistry, a map\'s registry, a subchart\'s): found by the probe render', async () => {
    const chart = join(FIX, 'knobs');
    const r = await rewriteChart({ chart, registry: REGISTRY, helm: HELM });
    assert.deepEqual(r.overlay, {
      global: { image: { registry: REGISTRY }, registry: REGISTRY },
      imageRegistry: REGISTRY,
      delta: { image: { registry: REGISTRY } },
      agent: { imageRegistry: REGISTRY },
    });
    // global.imageRegistry is in the values but no template reads it: not counted on.
    assert.equal(r.globalImageRegistry, false);
    assert.deepEqual(r.notRedirected, []);
    assert.deepEqual(r.images.map((i) => i.status), ['redirected', 'redirected', 'redirected', 'redirected', 'redirected']);
    const file = join(tmp, 'knobs.yaml');
    await writeFile(file, r.overlayText);
    assertPushedPlaces(await render(chart), await render(chart, ['-f', file]));
  });

  it('an umbrella chart with vendored subcharts (one repository in a subchart global, registry + namespace + name, common-library maps, repository-or-registry/image with chroot digests): every image moved by values', async () => {
    const chart = join(FIX, 'umbrella');
    const r = await rewriteChart({ chart, registry: REGISTRY, helm: HELM });
    assert.deepEqual(r.notRedirected, []);
    assert.equal(r.images.length, 12);
    assert.ok(r.images.every((i) => i.status === 'redirected'));
    // A subchart's own global is set through the top-level one (helm lets the parent's win).
    assert.equal(r.overlay.global && (r.overlay.global as Record<string, any>).image.repository, '127.0.0.1:5000/mirror/airlock-test/cd');
    // The docker library image behind a bare name: push puts it at R/P/library/nginx.
    assert.deepEqual(r.overlay.web, { image: { repository: '127.0.0.1:5000/mirror/library/nginx' } });
    const file = join(tmp, 'umbrella.yaml');
    await writeFile(file, r.overlayText);
    const redirected = await render(chart, ['-f', file]);
    assertPushedPlaces(await render(chart), redirected);
    assert.deepEqual(imagesOutside(redirected, TARGET), []);
    assert.ok(redirected.includes('127.0.0.1:5000/mirror/airlock-test/edge-controller-chroot:v1.11.3@sha256:d4f0bc5a29de06b510f9aa428f1eedba926012b591fef7a518e776a7c9bd1824'), 'the chroot digest kept');
    assert.ok(redirected.includes('--acme-http01-solver-image=127.0.0.1:5000/mirror/airlock-test/certs-acmesolver:v1.16.2'), 'an image in args, composed from values');
  });

  it('a chart that checks an image value fails with every value marked: registries and names are probed apart, and the registry alone moves it', async () => {
    const chart = join(FIX, 'strict');
    const r = await rewriteChart({ chart, registry: REGISTRY, helm: HELM });
    assert.deepEqual(r.overlay, { image: { registry: REGISTRY } });
    assert.deepEqual(r.notRedirected, []);
    assert.ok(r.warnings.some((w) => w.includes('probed in parts') && w.includes('image.repository must be an airlock-test image')), r.warnings.join('\n'));
    const file = join(tmp, 'strict.yaml');
    await writeFile(file, r.overlayText);
    assertPushedPlaces(await render(chart), await render(chart, ['-f', file]));
  });

  it('--post-render-fallback: the overlay plus the exact helm command with the post-renderer; run as written, nothing is left outside R/P', async () => {
    const chart = join(FIX, 'vendor-suite');
    const out = join(tmp, 'fallback.yaml');
    const helmEnv = { HELM_PLUGINS: join(tmp, 'plugins'), HELM_DATA_HOME: join(tmp, 'data'), HELM_CONFIG_HOME: join(tmp, 'config'), HELM_CACHE_HOME: join(tmp, 'cache') };
    const text = await airlock(['rewrite', '--helm', HELM, chart, '--registry', REGISTRY, '--post-render-fallback', '-o', out], { timeoutMs: 60_000 });
    assert.equal(text.code, 0, text.stderr);
    const line = `helm install RELEASE ${chart} -f ${out} --post-renderer airlock-postrender --post-renderer-args --registry=${REGISTRY}`;
    assert.equal(text.stdout, `${line}\n`);
    assert.match(text.stderr, /hard-coded in vendor-suite\/templates\/proxy\.yaml:15/);
    assert.match(text.stderr, /with the post-renderer too \(1 place mapped by it\): every image points at 127\.0\.0\.1:5000\/mirror/);
    assert.ok((await readFile(out, 'utf8')).includes(`#   ${line}\n`), 'the command is in the overlay header');
    assert.equal((parse(await readFile(out, 'utf8')) as Record<string, any>).admin.image, '127.0.0.1:5000/mirror/app/admin');

    const json = await airlock(['rewrite', '--helm', HELM, chart, '--registry', REGISTRY, '--post-render-fallback', '-o', out, '--json'], { timeoutMs: 60_000 });
    assert.equal(json.code, 0, json.stderr);
    const res = resultOf(json.stdout);
    assert.deepEqual(res.postRender.remaining, []);
    const argv = res.postRender.command as string[];
    assert.deepEqual(argv.slice(0, 4), ['helm', 'install', 'RELEASE', chart]);

    // The command as written, `install` swapped for `template` (same flags, no cluster).
    const inst = await airlock(['helm-plugin', 'install'], { env: helmEnv });
    assert.equal(inst.code, 0, inst.stderr);
    const rendered = await run(HELM, ['template', 'release-name', ...argv.slice(3)], helmEnv);
    assert.equal(rendered.code, 0, rendered.stderr);
    assert.deepEqual(imagesOutside(rendered.stdout, TARGET), []);
    assertPushedPlaces(await render(chart), rendered.stdout);
  });

  it('without the fallback a hard-coded image is listed with its template line, exit 7', async () => {
    const r = await airlock(['rewrite', '--helm', HELM, join(FIX, 'vendor-suite'), '--registry', REGISTRY, '-o', join(tmp, 'x.yaml')], { timeoutMs: 60_000 });
    assert.equal(r.code, 7, r.stderr);
    assert.ok(r.stderr.includes(`not redirected: ${BUSYBOX_PLACE}: docker.io/library/busybox:1.36 (hard-coded in vendor-suite/templates/proxy.yaml:15)`), r.stderr);
  });
});
