// Many small images: airlock against skopeo when a release is a thousand images, each in its own
// repository (the shape of a platform's add-on catalogue). What matters here is not bandwidth but
// per-image work and memory: airlock's peak RSS must stay bounded by the work in flight, not grow
// with the number of images.
//
//   npm run bench:many                       1000 images, one round
//   npm run bench:many -- --images 400       another count
//   npm run bench:many -- --json             results as one JSON document on stdout
//
// One round: `airlock pack` (empty cache) vs `skopeo sync --src yaml --dest dir` (every image, one
// process), then `airlock push` into an empty registry vs `skopeo sync --src dir --dest docker`
// from skopeo's own copy into another empty registry. Each image: one layer shared by all (64 KiB),
// one of its own (a few KiB of files), its config and manifest. Wall-clock times include process
// start; ratio = skopeo s / airlock s. Everything talks to 127.0.0.1 only; every process is
// stopped by its PID and every temp dir removed in `finally`.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startRegistry, type RunningRegistry } from '../test/helpers/registry.ts';
import { buildImage, seedRegistry, type BuiltImage } from '../test/helpers/images.ts';
import { skopeo, skopeoIsolation } from '../test/helpers/skopeo.ts';
import { MANIFEST_MEDIA_TYPES } from '../src/core/media-types.ts';
import { mapLimit } from '../src/util/limiter.ts';
import { airlock, checkInterrupted, interrupt, log, resultOf, settle, table, withOthers, type ChildRun } from './lib.ts';

const TARGET_RSS = 150e6;
const SKOPEO_TIMEOUT_MS = 20 * 60_000;

interface Options {
  images: number;
  json: boolean;
  quietWaitMs: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      images: { type: 'string', default: '1000' },
      json: { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '30' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('Usage: node bench/many-images.ts [--images N] [--json] [--quiet-wait SECONDS]\n');
    process.exit(0);
  }
  const images = Number(values.images);
  if (!Number.isInteger(images) || images < 1 || images > 5000) throw new Error(`--images must be an integer from 1 to 5000, got "${values.images}"`);
  const quiet = Number(values['quiet-wait']);
  if (!Number.isFinite(quiet) || quiet < 0 || quiet > 600) throw new Error(`--quiet-wait must be 0 to 600 seconds, got "${values['quiet-wait']}"`);
  return { images, json: values.json, quietWaitMs: quiet * 1000 };
}

interface ManyImage {
  repo: string;
  tag: string;
  image: BuiltImage;
}

function buildSet(count: number): ManyImage[] {
  const shared = { random: { bytes: 64 * 1024, seed: 7 } };
  return Array.from({ length: count }, (_, i) => {
    const name = `app-${String(i).padStart(4, '0')}`;
    return { repo: `many/${name}`, tag: '1.0', image: buildImage({ layers: [shared, { files: { 'srv/NAME': `${name}\n`, [`etc/${name}.conf`]: `id=${i}\n` } }] }) };
  });
}

async function checkRegistry(reg: RunningRegistry, set: ManyImage[], who: string): Promise<void> {
  const accept = MANIFEST_MEDIA_TYPES.join(', ');
  await mapLimit(set, 16, async (img) => {
    const res = await fetch(`${reg.url}/v2/${img.repo}/manifests/${img.tag}`, { method: 'HEAD', headers: { accept } });
    const got = res.status === 200 ? res.headers.get('docker-content-digest') : undefined;
    if (got !== img.image.root.digest) throw new Error(`${who}: ${reg.host}/${img.repo}:${img.tag} is ${got ?? 'missing'}, expected ${img.image.root.digest}`);
  });
}

interface Step {
  airlockSeconds: number;
  skopeoSeconds: number;
  ratio: number;
  airlockPeakRssBytes: number;
  others: number;
}

function step(run: ChildRun, skopeoSeconds: number, others: number): Step {
  return { airlockSeconds: run.seconds, skopeoSeconds, ratio: skopeoSeconds / run.seconds, airlockPeakRssBytes: run.peakRssBytes, others };
}

async function main(): Promise<void> {
  const opts = parseOptions();
  const onSignal = (): void => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const registries: RunningRegistry[] = [];
  const pids = (): number[] => registries.map((r) => r.pid);
  let work: string | undefined;
  try {
    work = await mkdtemp(join(tmpdir(), 'airlock-bench-many-'));
    const isolation = await skopeoIsolation();
    const set = buildSet(opts.images);
    const src = await startRegistry();
    registries.push(src);
    let t = performance.now();
    await mapLimit(set, 8, async (img) => {
      checkInterrupted();
      await seedRegistry(src.url, img.repo, img.tag, img.image, { concurrency: 2 });
    });
    log(`seeded ${set.length} images into ${src.host} (pid ${src.pid}) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const specPath = join(work, 'airlock.yaml');
    await writeFile(specPath, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: many, version: 1.0.0}', 'images:', ...set.map((i) => `  - ${src.host}/${i.repo}:${i.tag}`), ''].join('\n'));
    const locked = await airlock(['lock', '-f', specPath, '--json'], { dir: work });
    log(`locked in ${locked.seconds.toFixed(2)} s, peak RSS ${(locked.peakRssBytes / 1e6).toFixed(0)} MB (not part of the timed pack)`);
    // skopeo's list of the same images.
    const yamlPath = join(work, 'images.yaml');
    await writeFile(yamlPath, [`${src.host}:`, '  tls-verify: false', '  images:', ...set.map((i) => `    ${i.repo}: ["${i.tag}"]`), ''].join('\n'));

    // One image packed and pushed untimed first: airlock's modules are then in Node's compile
    // cache, as on every run but the first after an install (a cold run also loads the TypeScript
    // stripper when airlock runs from its sources, ~30 MB more).
    const warmSpec = join(work, 'warm', 'airlock.yaml');
    await mkdir(join(work, 'warm'));
    await writeFile(warmSpec, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: warm, version: 1.0.0}', 'images:', `  - ${src.host}/${set[0]!.repo}:${set[0]!.tag}`, ''].join('\n'));
    await airlock(['pack', '--lock', '-f', warmSpec, '-o', join(work, 'warm', 'b.tar'), '--cache', join(work, 'warm', 'cache'), '--json'], { dir: work });
    const warmTarget = await startRegistry();
    try {
      await airlock(['push', join(work, 'warm', 'b.tar'), warmTarget.host, '--json'], { dir: work });
    } finally {
      await warmTarget.stop();
    }

    const bundle = join(work, 'bundle.tar');
    const skopeoDir = join(work, 'skopeo-dir');
    await mkdir(skopeoDir);
    const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T; others: number }> => {
      await settle(opts.quietWaitMs);
      return await withOthers(pids, fn);
    };
    const skopeoTimed = async (args: string[], state: string): Promise<number> => {
      await mkdir(state);
      const started = performance.now();
      await skopeo(args, { timeoutMs: SKOPEO_TIMEOUT_MS, stateDir: state });
      return (performance.now() - started) / 1000;
    };

    log('pack: airlock');
    const pack = await timed(() => airlock(['pack', '-f', specPath, '-o', bundle, '--cache', join(work!, 'cache'), '--json'], { dir: work!, timeoutMs: SKOPEO_TIMEOUT_MS }));
    if (resultOf(pack.value.stdout).images !== set.length) throw new Error('airlock pack did not write every image');
    log('pack: skopeo sync --dest dir');
    const pull = await timed(() => skopeoTimed(['sync', '--scoped', '--src', 'yaml', '--dest', 'dir', yamlPath, skopeoDir], join(work!, 'skopeo-pull-state')));
    const dirs = await readdir(skopeoDir, { recursive: true });
    if (dirs.filter((d) => d.endsWith('manifest.json')).length !== set.length) throw new Error(`skopeo sync wrote ${dirs.filter((d) => d.endsWith('manifest.json')).length} images, expected ${set.length}`);

    const dstA = await startRegistry();
    registries.push(dstA);
    const dstS = await startRegistry();
    registries.push(dstS);
    log('push: airlock');
    const push = await timed(() => airlock(['push', bundle, dstA.host, '--json'], { dir: work!, timeoutMs: SKOPEO_TIMEOUT_MS }));
    log('push: skopeo sync --src dir --dest docker');
    // --scoped kept the source registry's host in skopeo's paths: push from below it.
    const put = await timed(() => skopeoTimed(['sync', '--src', 'dir', '--dest', 'docker', '--dest-tls-verify=false', join(skopeoDir, src.host, 'many'), `${dstS.host}/many`], join(work!, 'skopeo-push-state')));
    await checkRegistry(dstA, set, 'airlock push');
    await checkRegistry(dstS, set, 'skopeo sync');

    const result = { images: set.length, skopeoIsolation: isolation, targetPeakRssBytes: TARGET_RSS, pack: step(pack.value, pull.value, Math.max(pack.others, pull.others)), push: step(push.value, put.value, Math.max(push.others, put.others)) };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const rows = [['step', 'airlock s', 'skopeo s', 'ratio', 'airlock peak RSS', `< ${TARGET_RSS / 1e6} MB`, 'others']];
    for (const name of ['pack', 'push'] as const) {
      const s = result[name];
      rows.push([name, s.airlockSeconds.toFixed(2), s.skopeoSeconds.toFixed(2), s.ratio.toFixed(2), `${(s.airlockPeakRssBytes / 1e6).toFixed(0)} MB`, s.airlockPeakRssBytes < TARGET_RSS ? 'met' : 'MISSED', `${s.others.toFixed(0)}%`]);
    }
    process.stdout.write(
      [
        '',
        `airlock vs skopeo sync: ${set.length} small images, each in its own repository (one shared 64 KiB layer, one own layer)`,
        '',
        table(rows),
        '',
        `ratio = skopeo s / airlock s (>= 1 means airlock is faster); others = CPU other processes took meanwhile, % of ${availableParallelism()} CPUs`,
        '',
      ].join('\n'),
    );
  } finally {
    for (const r of registries) await r.stop();
    if (work) await rm(work, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

try {
  await main();
} catch (e) {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
