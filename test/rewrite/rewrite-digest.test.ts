// A digest pinned in a chart's values is kept by `airlock rewrite` (the digest is the same in the
// internal registry): proven end to end with real docker-registry processes, skopeo and helm. The
// image (a two-platform index) is locked, packed and pushed to R/P; the chart is rewritten against
// R/P and rendered; each rendered reference resolves, in R/P, to the digest the chart pinned, with
// the source registry stopped.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseManifestStream } from '../../src/discover/sources.ts';
import { runHelm } from '../../src/helm/helm-runner.ts';
import { locateImages } from '../../src/rewrite/locate.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { helmPath } from '../helpers/helm.ts';
import { buildImage, buildIndex, seedRegistry } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { skopeoDigest } from '../helpers/skopeo.ts';

const CHART = fileURLToPath(new URL('../fixtures/rewrite/pinned', import.meta.url));
const HELM = helmPath();

describe('rewrite keeps pinned digests, and they resolve where push put the image', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let dir: string;
  let pinned: string;
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), AIRLOCK_STATE: join(dir, 'state'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-rewrite-digest-'));
    const index = buildIndex([
      buildImage({ layers: [{ files: { 'etc/db': 'amd64\n' } }], platform: 'linux/amd64' }),
      buildImage({ layers: [{ files: { 'etc/db': 'arm64\n' } }], platform: 'linux/arm64' }),
    ]);
    pinned = index.root.digest;
    await seedRegistry(src.url, 'airlock-test/db', '15', index);
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lock, pack, push; rewrite; the rendered references resolve in R/P to the pinned digest', async () => {
    const spec = join(dir, 'airlock.yaml');
    await writeFile(spec, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: pinned, version: 1.0.0}', 'images:', `  - ${src.host}/airlock-test/db:15`, ''].join('\n'));
    const bundle = join(dir, 'b.tar');
    for (const args of [['lock', '-f', spec], ['pack', '-f', spec, '-o', bundle], ['push', bundle, `${dst.host}/mirror`]]) {
      const r = await airlock(args, { env: env() });
      assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
    }
    await src.stop();

    // The chart's values name the source registry and pin the digest, in two shapes.
    const user = join(dir, 'values.yaml');
    await writeFile(user, [`db: {image: {registry: "${src.host}", digest: "${pinned}"}}`, `backup: {repository: "${src.host}/airlock-test/db"}`, `digests: {backup: "${pinned}"}`, ''].join('\n'));
    const overlay = join(dir, 'overlay.yaml');
    const r = await airlock(['rewrite', CHART, '--helm', HELM, '--registry', `${dst.host}/mirror`, '-f', user, '-o', overlay, '--json'], { env: env(), timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stdout);
    assert.deepEqual(res.notRedirected, []);
    assert.deepEqual(
      (res.values as { path: string; value: string }[]).map((v) => [v.path, v.value]),
      [
        ['db.image.registry', `${dst.host}/mirror`],
        ['backup.repository', `${dst.host}/mirror/airlock-test/db`],
      ],
      'digests are not written: they are the same in R/P',
    );

    const rendered = (await runHelm(['template', CHART, '-f', user, '-f', overlay], { helm: HELM })).stdout;
    const refs = parseManifestStream(rendered, 'test').flatMap((m) => locateImages(m.object).locations.flatMap((l) => l.references));
    assert.deepEqual(refs.sort(), [`${dst.host}/mirror/airlock-test/db:15@${pinned}`, `${dst.host}/mirror/airlock-test/db@${pinned}`].sort());
    // A runtime pulls `name:tag@digest` by the digest alone (skopeo refuses both): that is what must resolve.
    for (const ref of refs) assert.equal(await skopeoDigest(`docker://${ref.replace(/:[^/@]+@/, '@')}`), pinned, ref);
    assert.equal(await skopeoDigest(`docker://${dst.host}/mirror/airlock-test/db:15`), pinned, 'and the tag beside it names the same index');
  });
});
