// Two sources that differ only by registry host (here two registries, both holding team/app:1 with
// different content) land on one name in a target: pack warns at once, and --keep-host puts each under
// its host (R/P/<host>/<path>) for push, serve, post-render, rewrite and mirrors-config alike. Real
// docker-registry, skopeo and containerd; the source registries are stopped before the isolated side.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { startContainerd, type RunningContainerd } from '../helpers/containerd.ts';
import { buildImage, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { skopeoDigest } from '../helpers/skopeo.ts';
import { startServe, type RunningServe } from '../helpers/serve.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { helmPath } from '../helpers/helm.ts';

/** A host as --keep-host writes it in a path: the port's colon as an underscore. */
const component = (host: string): string => host.replace(':', '_');

describe('images that differ only by registry host, kept apart with --keep-host', () => {
  let one: RunningRegistry;
  let two: RunningRegistry;
  let dst: RunningRegistry;
  let ctrd: RunningContainerd;
  let dir: string;
  let bundle: string;
  let refs: [string, string];
  const images: BuiltImage[] = [];
  const servers: RunningServe[] = [];
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), AIRLOCK_STATE: join(dir, 'state'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });

  before(async () => {
    [one, two, dst] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-keephost-'));
    ctrd = await startContainerd();
    images.push(buildImage({ layers: [{ files: { 'etc/from': 'one\n' } }] }), buildImage({ layers: [{ files: { 'etc/from': 'two\n' } }] }));
    await seedRegistry(one.url, 'team/app', '1', images[0]!);
    await seedRegistry(two.url, 'team/app', '1', images[1]!);
    refs = [`${one.host}/team/app:1`, `${two.host}/team/app:1`];
    bundle = join(dir, 'twins.tar');
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await Promise.all([one?.stop(), two?.stop(), dst?.stop(), ctrd?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('pack warns at once, naming both and --keep-host; then the sources are gone', async () => {
    const spec = join(dir, 'airlock.yaml');
    await writeFile(spec, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: twins, version: 1.0.0}', 'images:', ...refs.map((r) => `  - ${r}`), ''].join('\n'));
    const p = await airlock(['pack', '--lock', '-f', spec, '-o', bundle], { env: env() });
    assert.equal(p.code, 0, p.stderr);
    const [a, b] = [...refs].sort();
    assert.ok(p.stderr.includes(`warning: ${a} and ${b} would be pushed to the same name (they differ only by registry host); push with --keep-host`), p.stderr);
    await Promise.all([one.stop(), two.stop()]);
  });

  test('push without --keep-host refuses before sending; with it, both land side by side, digests unchanged', async () => {
    const refused = await airlock(['push', bundle, `${dst.host}/mirror`], { env: env() });
    assert.equal(refused.code, 8, refused.stderr);
    assert.match(refused.stderr, /would both be pushed to/);
    assert.match(refused.stderr, /--keep-host/);
    const r = await airlock(['push', bundle, `${dst.host}/mirror`, '--keep-host', '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const targets = (resultOf(r.stdout).images as { target: string }[]).map((i) => i.target).sort();
    assert.deepEqual(targets, [one, two].map((reg) => `${dst.host}/mirror/${component(reg.host)}/team/app:1`).sort());
    assert.equal(await skopeoDigest(`docker://${dst.host}/mirror/${component(one.host)}/team/app:1`), images[0]!.root.digest);
    assert.equal(await skopeoDigest(`docker://${dst.host}/mirror/${component(two.host)}/team/app:1`), images[1]!.root.digest);
  });

  test('containerd pulls each original name through hosts.toml from mirrors-config --keep-host (override_path)', async () => {
    const hosts = join(dir, 'certs.d');
    const cfg = await airlock(['mirrors-config', bundle, '--registry', `${dst.host}/mirror`, '--keep-host', '--format', 'containerd', '-o', hosts], { env: env() });
    assert.equal(cfg.code, 0, cfg.stderr);
    for (const ref of refs) await ctrd.ctr(['images', 'pull', '--hosts-dir', hosts, ref]);
    const listed = new Map((await ctrd.images()).map((i) => [i.ref, i.digest]));
    assert.equal(listed.get(refs[0]), images[0]!.root.digest);
    assert.equal(listed.get(refs[1]), images[1]!.root.digest);
  });

  test('k3s registries.yaml from mirrors-config --keep-host rewrites each source to its own path', async () => {
    const r = await airlock(['mirrors-config', bundle, '--registry', `${dst.host}/mirror`, '--keep-host'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const doc = parse(r.stdout) as { mirrors: Record<string, { rewrite?: Record<string, string> }> };
    for (const reg of [one, two]) assert.deepEqual(doc.mirrors[reg.host]!.rewrite, { '^(.*)$': `mirror/${component(reg.host)}/$1` });
  });

  test('serve --prefix --keep-host answers both names, as pushed and by original name', async () => {
    const srv = await startServe([bundle, '--listen', '127.0.0.1:0', '--prefix', 'internal', '--keep-host']);
    servers.push(srv);
    assert.equal(await skopeoDigest(`docker://${srv.host}/internal/${component(one.host)}/team/app:1`), images[0]!.root.digest);
    assert.equal(await skopeoDigest(`docker://${srv.host}/internal/${component(two.host)}/team/app:1`), images[1]!.root.digest);
    const hosts = join(dir, 'certs.d-serve');
    const cfg = await airlock(['mirrors-config', bundle, '--registry', `${srv.host}/internal`, '--keep-host', '--format', 'containerd', '-o', hosts], { env: env() });
    assert.equal(cfg.code, 0, cfg.stderr);
    await ctrd.ctr(['images', 'rm', ...refs]);
    for (const ref of refs) await ctrd.ctr(['images', 'pull', '--hosts-dir', hosts, ref]);
    const listed = new Map((await ctrd.images()).map((i) => [i.ref, i.digest]));
    assert.equal(listed.get(refs[1]), images[1]!.root.digest);
  });

  test('post-render and rewrite --keep-host point each image where push put it', async () => {
    const manifests = refs.map((ref, i) => ['apiVersion: v1', 'kind: Pod', `metadata: {name: p${i}}`, 'spec:', '  containers:', `    - {name: c, image: "${ref}"}`, ''].join('\n')).join('---\n');
    const input = join(dir, 'pods.yaml');
    await writeFile(input, manifests);
    const r = await airlock(['post-render', '--registry', `${dst.host}/mirror`, '--keep-host', '--strict', input], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    for (const reg of [one, two]) assert.ok(r.stdout.includes(`image: "${dst.host}/mirror/${component(reg.host)}/team/app:1"`), r.stdout);

    const chart = join(dir, 'chart');
    await mkdir(join(chart, 'templates'), { recursive: true });
    await writeFile(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: twins\nversion: 0.1.0\n');
    await writeFile(join(chart, 'values.yaml'), `a:\n  image: ${refs[0]}\nb:\n  image: ${refs[1]}\n`);
    await writeFile(join(chart, 'templates', 'pods.yaml'), ['a', 'b'].map((k) => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${k}}\nspec:\n  containers:\n    - {name: c, image: {{ .Values.${k}.image | quote }}}\n`).join('---\n'));
    const w = await airlock(['rewrite', chart, '--registry', `${dst.host}/mirror`, '--keep-host', '--helm', helmPath(), '--json'], { env: env() });
    assert.equal(w.code, 0, w.stderr);
    const res = resultOf(w.stdout);
    assert.deepEqual((res.images as { status: string }[]).map((i) => i.status), ['redirected', 'redirected']);
    assert.equal(res.overlay.a.image, `${dst.host}/mirror/${component(one.host)}/team/app:1`);
    assert.equal(res.overlay.b.image, `${dst.host}/mirror/${component(two.host)}/team/app:1`);
    const written = await readFile(input, 'utf8');
    assert.equal(written, manifests, 'post-render read the file, never wrote it');
  });
});
