// `airlock post-render`: rendered manifests in on stdin, out on stdout with every image mapped to the
// target exactly where push puts it, everything else untouched; and the helm 4 post-renderer plugin
// (installed by `airlock helm-plugin install`, and the repository's helm-plugin/ directory) run by
// the real helm 4.1.4 with private HELM_* directories.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { formatReference, parseReference } from '../../src/core/reference.ts';
import { parseManifestStream } from '../../src/discover/sources.ts';
import { runHelm } from '../../src/helm/helm-runner.ts';
import { helmPluginsDir, pluginYaml } from '../../src/rewrite/helm-plugin.ts';
import { ImageSet, mapImagesInText } from '../../src/rewrite/image-text.ts';
import { locateImages } from '../../src/rewrite/locate.ts';
import { mapAll, mapReference, parseTarget } from '../../src/rewrite/mapping.ts';
import { imagesOutside, postRender } from '../../src/rewrite/post-render.ts';
import { parseResourcePath } from '../../src/rewrite/resource-path.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { helmPath } from '../helpers/helm.ts';

const FIX = fileURLToPath(new URL('../fixtures/rewrite/', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(REPO, 'src/cli/main.ts');
const HELM = helmPath();
const REGISTRY = '127.0.0.1:5000/mirror';
const TARGET = parseTarget(REGISTRY);

/** Where push puts an image (its own mapping call, mapAll): what every rewrite must point at. */
const pushed = (ref: string): string => formatReference(mapAll([parseReference(ref)], TARGET).get(formatReference(parseReference(ref)))!);

/** Every image of rendered manifests, by place (`resource path`). */
function places(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of parseManifestStream(text, 'test')) {
    for (const l of locateImages(m.object).locations) out.set(`${l.resource} ${l.path}`, l.references);
  }
  return out;
}

/** The cross-check: each place now names exactly what push made of the image it named before. */
function assertPushedPlaces(before: string, afterText: string): void {
  const was = places(before);
  const now = places(afterText);
  assert.ok(was.size > 0);
  assert.deepEqual([...now.keys()].sort(), [...was.keys()].sort(), 'the same places hold images');
  for (const [place, refs] of was) assert.deepEqual(now.get(place), refs.map(pushed).sort(), place);
}

/** Leaf paths where two parsed objects differ. */
function diffPaths(a: unknown, b: unknown, path = ''): string[] {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b) ? [] : [path];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const out: string[] = [];
  for (const k of keys) out.push(...diffPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}/${k}`));
  return out;
}

function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr });
    }),
  );
}

const postRenderCli = (args: string[], input: string) => run(process.execPath, [MAIN, 'post-render', ...args], { input });
const render = async (chart: string, extra: string[] = []) => (await runHelm(['template', join(FIX, chart), ...extra], { helm: HELM })).stdout;

describe('finding a reference again in text and mapping it', () => {
  const table: [string, string[], 'any' | 'qualified', string][] = [
    ['nginx', ['docker.io/library/nginx:latest'], 'any', '127.0.0.1:5000/mirror/library/nginx'],
    ['nginx:1.27', ['docker.io/library/nginx:1.27'], 'any', '127.0.0.1:5000/mirror/library/nginx:1.27'],
    ['--solver-image=ghcr.io/x/solver:v1 --v=2', ['ghcr.io/x/solver:v1'], 'qualified', '--solver-image=127.0.0.1:5000/mirror/x/solver:v1 --v=2'],
    ['image:quay.io/x/y:1', ['quay.io/x/y:1'], 'qualified', 'image:127.0.0.1:5000/mirror/x/y:1'],
    [`a quay.io/x/y:1@sha256:${'a'.repeat(64)} b`, [`quay.io/x/y:1@sha256:${'a'.repeat(64)}`], 'qualified', `a 127.0.0.1:5000/mirror/x/y:1@sha256:${'a'.repeat(64)} b`],
    // a URL that happens to look like an image is a link, not a pull
    ['see https://quay.io/x/y:1 or quay.io/x/y:1', ['quay.io/x/y:1'], 'qualified', 'see https://quay.io/x/y:1 or 127.0.0.1:5000/mirror/x/y:1'],
    // in free text a bare word is not taken for an image by name alone
    ['run nginx, then nginx:1.27', ['docker.io/library/nginx:1.27'], 'qualified', 'run nginx, then 127.0.0.1:5000/mirror/library/nginx:1.27'],
    // a name with its tag elsewhere (baseImage + version), fully qualified
    ['ghcr.io/x/pgbouncer', ['ghcr.io/x/pgbouncer:1.22.0'], 'qualified', '127.0.0.1:5000/mirror/x/pgbouncer'],
    // already where push put it: left alone, so post-render can run twice
    ['127.0.0.1:5000/mirror/library/nginx:1.27', ['127.0.0.1:5000/mirror/library/nginx:1.27'], 'any', '127.0.0.1:5000/mirror/library/nginx:1.27'],
    // another tag of the same image is not this image
    ['nginx:1.26', ['docker.io/library/nginx:1.27'], 'any', 'nginx:1.26'],
  ];
  for (const [text, refs, bare, want] of table) {
    it(`${JSON.stringify(text)} → ${JSON.stringify(want)}`, () => {
      assert.equal(mapImagesInText(text, new ImageSet(refs), TARGET, bare).text, want);
    });
  }
  it('property: whatever the image and the target, the mapped literal is exactly what push makes of it', () => {
    const component = fc.stringMatching(/^[a-z0-9]{1,6}(?:[-_.][a-z0-9]{1,4})?$/);
    const registry = fc.constantFrom('docker.io', 'quay.io', 'ghcr.io', 'localhost:5000', 'registry.example.com:8443', '10.0.0.7:5000');
    const ref = fc.record({
      registry,
      path: fc.array(component, { minLength: 1, maxLength: 3 }),
      tag: fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}$/), { nil: undefined }),
      digest: fc.option(fc.stringMatching(/^[a-f0-9]{64}$/), { nil: undefined }),
    });
    const target = fc.record({ registry: fc.constantFrom('r.local', '127.0.0.1:5000', 'harbor.internal:8443'), prefix: fc.constantFrom('', 'mirror', 'a/b') });
    fc.assert(
      fc.property(ref, target, fc.constantFrom('=', ' ', ': '), (r, t, glue) => {
        const literal = `${r.registry}/${r.path.join('/')}${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@sha256:${r.digest}`}`;
        const parsed = parseReference(literal);
        const explicit = r.tag !== undefined || r.digest !== undefined;
        const want = formatReference(mapReference(parsed, t));
        // as an image field
        const field = mapImagesInText(literal, new ImageSet([parsed]), t, 'any');
        assert.equal(formatReference(parseReference(field.text)), want);
        // inside free text, after a flag
        const text = `--image${glue}${literal} --v=2`;
        const mapped = mapImagesInText(text, new ImageSet([parsed]), t, 'qualified');
        // (every source registry here names a host, so free text takes even a bare name)
        assert.equal(mapped.text, `--image${glue}${explicit ? want : want.replace(/:latest$/, '')} --v=2`);
        // a second pass changes nothing
        assert.equal(mapImagesInText(field.text, new ImageSet([parseReference(field.text)]), t, 'any').text, field.text);
      }),
      { numRuns: 300 },
    );
  });

  it('paths discovery reports are read back into segments', () => {
    assert.deepEqual(parseResourcePath('spec.template.spec.containers[0].args[2]'), ['spec', 'template', 'spec', 'containers', 0, 'args', 2]);
    assert.deepEqual(parseResourcePath('data["config.json"]'), ['data', 'config.json']);
    assert.deepEqual(parseResourcePath('spec.volumes[1].image.reference'), ['spec', 'volumes', 1, 'image', 'reference']);
  });
});

describe('airlock post-render', { concurrency: true }, () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'airlock-post-render-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('maps every image of every shape (pod specs of any kind, List items, CR fields and maps, args, env, ConfigMaps) and changes nothing else', async () => {
    const input = await readFile(join(FIX, 'manifests/kinds.yaml'), 'utf8');
    const r = await postRenderCli(['--registry', REGISTRY, '--report', join(tmp, 'kinds-report.json')], input);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(imagesOutside(r.stdout, TARGET), []);
    assertPushedPlaces(input, r.stdout);
    const report = JSON.parse(await readFile(join(tmp, 'kinds-report.json'), 'utf8')) as { changed: { resource: string; path: string; from: string; to: string }[]; remaining: unknown[] };
    assert.equal(report.changed.length, 17);
    assert.deepEqual(report.remaining, []);
    for (const c of report.changed) assert.equal(c.to, pushed(c.from));
    assert.match(r.stderr, /17 image references mapped to 127\.0\.0\.1:5000\/mirror in 5 documents/);

    // Byte for byte the same except on lines that name an image: comments, quoting, flow style,
    // the block script around the references, a URL that looks like an image.
    const inLines = input.split('\n');
    const outLines = r.stdout.split('\n');
    assert.equal(outLines.length, inLines.length);
    const changedLines = inLines.map((l, i) => (l === outLines[i] ? -1 : i)).filter((i) => i >= 0);
    assert.equal(changedLines.length, 17);
    for (const i of changedLines) assert.match(outLines[i]!, /127\.0\.0\.1:5000\/mirror\/|registry: 127\.0\.0\.1:5000|repository: mirror\//, `line ${i + 1}`);
    assert.ok(r.stdout.includes('image: 127.0.0.1:5000/mirror/library/busybox:1.36   # short docker library name'));
    assert.ok(r.stdout.includes("image: '127.0.0.1:5000/mirror/pause:3.9'"));
    assert.ok(r.stdout.includes('exec run --image=127.0.0.1:5000/mirror/airlock-test/tool:0.3.0 --docs https://quay.io/airlock-test/docs:1'));
    assert.ok(r.stdout.includes(`"127.0.0.1:5000/mirror/airlock-test/debugger:1.1@sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91"`));
    // a CR image map keeps its shape: the registry field gets R, the repository P/path, tag unchanged
    const cluster = parseAllDocuments(r.stdout)[2]!.toJS() as { spec: { backup: { image: unknown }; proxy: unknown } };
    assert.deepEqual(cluster.spec.backup.image, { registry: '127.0.0.1:5000', repository: 'mirror/airlock-test/backup', tag: '3.1' });
    assert.deepEqual(cluster.spec.proxy, { baseImage: '127.0.0.1:5000/mirror/airlock-test/pgbouncer', version: '1.22.0' });

    // Parsed, only fields inside the reported places differ.
    const a = parseAllDocuments(input).map((d) => d.toJS() as unknown);
    const b = parseAllDocuments(r.stdout).map((d) => d.toJS() as unknown);
    assert.equal(b.length, a.length);
    const differing = diffPaths(a, b);
    assert.ok(differing.length >= 17);
    for (const p of differing) assert.match(p, /\/(image|reference|args\/\d+|command\/\d+|value|registry|repository|baseImage|images\/\d+|sidecar-image|config\.json)$/, p);
  });

  it('running it again changes nothing', async () => {
    const input = await readFile(join(FIX, 'manifests/kinds.yaml'), 'utf8');
    const once = postRender(input, TARGET);
    const twice = postRender(once.text, TARGET);
    assert.equal(twice.text, once.text);
    assert.deepEqual(twice.changed, []);
  });

  it('on a rendered operator chart: sidecars in args/env, CR maps, ConfigMaps all point where push put them', async () => {
    const rendered = await render('gizmo-operator');
    const r = await postRenderCli(['--registry', REGISTRY], rendered);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(imagesOutside(r.stdout, TARGET), []);
    assertPushedPlaces(rendered, r.stdout);
    // helm's `# Source:` comments, and a comment inside a template, survive
    assert.equal(r.stdout.match(/^# Source: /gm)?.length, rendered.match(/^# Source: /gm)?.length);
    assert.ok(r.stdout.includes('# The operator injects these into the pods it manages'));
    assert.ok(r.stdout.includes('--docs=https://docs.example.com/gizmo:v1'), 'a URL is not an image');
    assert.ok(r.stdout.includes('value: db.example.com:5432'));
  });

  it('what it cannot map is reported, and --strict refuses to pass it on', async () => {
    // istio-style: a hub and a bare image name in an embedded config; only the hub could be changed
    const input = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: mesh}',
      'data:',
      '  values.yaml: |',
      '    hub: docker.io/istio',
      '    tag: 1.24.0',
      '    proxy:',
      '      image: proxyv2',
      '',
    ].join('\n');
    const loose = await postRenderCli(['--registry', REGISTRY], input);
    assert.equal(loose.code, 0, loose.stderr);
    assert.equal(loose.stdout, input);
    assert.match(loose.stderr, /not mapped: ConfigMap\/default\/mesh data\["values\.yaml"\]: docker\.io\/istio\/proxyv2:1\.24\.0/);
    const strict = await postRenderCli(['--registry', REGISTRY, '--strict'], input);
    assert.equal(strict.code, 7);
    assert.equal(strict.stdout, '');
    assert.match(strict.stderr, /--strict: 1 image still points outside/);
  });

  it('bad input: not YAML, no --registry, a registry that is not R[/P]', async () => {
    const notYaml = await postRenderCli(['--registry', REGISTRY], 'kind: Pod\n  bad: [\n');
    assert.equal(notYaml.code, 2);
    assert.match(notYaml.stderr, /document 1 is not valid YAML/);
    const noRegistry = await postRenderCli([], 'kind: Pod\n');
    assert.equal(noRegistry.code, 2);
    assert.match(noRegistry.stderr, /post-render needs --registry R\[\/P\]/);
    const badRegistry = await postRenderCli(['--registry', 'Not A Host'], 'kind: Pod\n');
    assert.equal(badRegistry.code, 2);
    assert.match(badRegistry.stderr, /invalid target registry "Not A Host"/);
  });
});

describe('helm 4 post-renderer plugin', { concurrency: true }, () => {
  let tmp: string;
  let helmEnv: NodeJS.ProcessEnv;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'airlock-helm-plugin-'));
    helmEnv = {
      HELM_PLUGINS: join(tmp, 'plugins'),
      HELM_DATA_HOME: join(tmp, 'data'),
      HELM_CONFIG_HOME: join(tmp, 'config'),
      HELM_CACHE_HOME: join(tmp, 'cache'),
    };
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('airlock helm-plugin install, then helm template --post-renderer airlock-postrender leaves no image outside R', async () => {
    const inst = await airlock(['helm-plugin', 'install', '--json'], { env: helmEnv });
    assert.equal(inst.code, 0, inst.stderr);
    assert.equal(resultOf(inst.stdout).dir, join(tmp, 'plugins', 'airlock-postrender'));
    const list = await run(HELM, ['plugin', 'list'], { env: helmEnv });
    assert.match(list.stdout, /airlock-postrender\s+0\.1\.0\s+postrenderer\/v1/);

    for (const chart of ['gizmo-operator', 'platform', 'webshop']) {
      const plain = await run(HELM, ['template', join(FIX, chart)], { env: helmEnv });
      assert.equal(plain.code, 0, plain.stderr);
      const r = await run(HELM, ['template', join(FIX, chart), '--post-renderer', 'airlock-postrender', '--post-renderer-args', `--registry=${REGISTRY}`], { env: helmEnv });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(imagesOutside(r.stdout, TARGET), [], chart);
      assertPushedPlaces(plain.stdout, r.stdout);
    }
  });

  it('a registry given at install time is the default; --post-renderer-args still wins; uninstall removes it', async () => {
    const dir = join(tmp, 'other-plugins');
    const env = { ...helmEnv, HELM_PLUGINS: dir };
    assert.equal((await airlock(['helm-plugin', 'install', '--registry', 'harbor.internal/base', '--plugins-dir', dir], { env })).code, 0);
    const byDefault = await run(HELM, ['template', join(FIX, 'platform'), '--post-renderer', 'airlock-postrender'], { env });
    assert.equal(byDefault.code, 0, byDefault.stderr);
    assert.deepEqual(imagesOutside(byDefault.stdout, parseTarget('harbor.internal/base')), []);
    const overridden = await run(HELM, ['template', join(FIX, 'platform'), '--post-renderer', 'airlock-postrender', '--post-renderer-args', `--registry=${REGISTRY}`], { env });
    assert.deepEqual(imagesOutside(overridden.stdout, TARGET), []);

    const un = await airlock(['helm-plugin', 'uninstall', '--plugins-dir', dir]);
    assert.equal(un.code, 0, un.stderr);
    await assert.rejects(stat(join(dir, 'airlock-postrender')), { code: 'ENOENT' }, 'the plugin is gone');
    const gone = await run(HELM, ['template', join(FIX, 'platform'), '--post-renderer', 'airlock-postrender'], { env });
    assert.notEqual(gone.code, 0);
  });

  it('the repository\'s helm-plugin/ directory, installed with `helm plugin install`, runs airlock from PATH', async () => {
    const bin = join(tmp, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'airlock'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} "$@"\n`);
    await chmod(join(bin, 'airlock'), 0o755);
    // helm 4.1 installs a local directory into $HELM_DATA_HOME/plugins whatever $HELM_PLUGINS says
    const env: NodeJS.ProcessEnv = { ...helmEnv, HELM_DATA_HOME: join(tmp, 'data2'), PATH: `${bin}:${process.env.PATH}` };
    delete env.HELM_PLUGINS;
    const inst = await run(HELM, ['plugin', 'install', join(REPO, 'helm-plugin')], { env });
    assert.equal(inst.code, 0, inst.stderr);
    const r = await run(HELM, ['template', join(FIX, 'gizmo-operator'), '--post-renderer', 'airlock-postrender', '--post-renderer-args', `--registry=${REGISTRY}`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(imagesOutside(r.stdout, TARGET), []);
  });

  it('plugin.yaml and helm\'s plugins directory', () => {
    const y = pluginYaml({ command: '/opt/node', args: ['/opt/airlock/main.ts'] }, { version: '1.0.0', registry: 'r.local/p' });
    const doc = parseAllDocuments(y)[0]!.toJS() as Record<string, any>;
    assert.equal(doc.apiVersion, 'v1');
    assert.equal(doc.type, 'postrenderer/v1');
    assert.equal(doc.runtime, 'subprocess');
    assert.deepEqual(doc.runtimeConfig.platformCommand, [{ command: '/opt/node', args: ['/opt/airlock/main.ts', 'post-render', '--registry', 'r.local/p'] }]);
    assert.equal(helmPluginsDir({ HELM_PLUGINS: '/a:/b' }, 'linux', '/home/u'), '/a');
    assert.equal(helmPluginsDir({ HELM_DATA_HOME: '/d' }, 'linux', '/home/u'), '/d/plugins');
    assert.equal(helmPluginsDir({}, 'linux', '/home/u'), '/home/u/.local/share/helm/plugins');
    assert.equal(helmPluginsDir({ XDG_DATA_HOME: '/x' }, 'linux', '/home/u'), '/x/helm/plugins');
    assert.equal(helmPluginsDir({}, 'darwin', '/Users/u'), '/Users/u/Library/helm/plugins');
  });
});
