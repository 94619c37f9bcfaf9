// Delta benchmark: what crosses the gap for a version bump, full bundle against `pack --since`.
//
//   npm run bench:delta                   full image set (~350 MiB unique, 9 images)
//   npm run bench:delta -- --size small   ~60 MiB smoke run
//   npm run bench:delta -- --json         results as one JSON document on stdout
//
// v1 is the transfer benchmark's image set (bench/image-set.ts). v2 bumps one image: shop/api
// 2.1 → 2.2, whose top layer (the application, 40 MiB at full scale) was rebuilt, so its config and
// manifest are new too; every other image is the same. Both are locked from a local docker-registry and packed with the CLI as a user would:
// v1 full, v2 full, v2 --since v1.tar, v2 --since v1's lock. The delta must carry exactly the new
// layer plus the new manifest and config (and the unchanged images' manifests, which a delta
// always carries); the report gives its size against the full v2 bundle, and checks the delta
// packed from v1's lock is byte-identical to the one packed from v1.tar, and that it verifies
// against v1. Everything talks to 127.0.0.1 only; the registry is stopped by its PID and every
// temp dir removed in `finally`.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRegistry, type RunningRegistry } from '../test/helpers/registry.ts';
import { blobBytes, buildImage, findBlob, layersOf, seedRegistry, type BuiltImage } from '../test/helpers/images.ts';
import { CONFIG_MEDIA_TYPES } from '../src/bundle/plan.ts';
import { isManifestMediaType } from '../src/core/media-types.ts';
import { openBundle } from '../src/bundle/index.ts';
import { buildImageSet, type BenchImage, type SetSize } from './image-set.ts';
import { airlock as runAirlock, MiB, type ChildRun } from './lib.ts';


interface Result {
  size: SetSize;
  bumped: { image: string; from: string; to: string; layerBytes: number };
  fullV2Bytes: number;
  deltaBytes: number;
  /** delta / full v2. */
  ratio: number;
  carried: { blobs: number; bytes: number; layers: number; layerBytes: number; manifests: number; configs: number };
  relied: { blobs: number; bytes: number };
  /** The delta carries exactly the changed layer among layers, and the new manifest and config. */
  onlyWhatChanged: boolean;
  /** --since v1.lock gives the same bytes as --since v1.tar. */
  sameFromLock: boolean;
  verifiedAgainstBase: boolean;
  seconds: { packFullV2: number; packDelta: number; packDeltaFromLock: number };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The airlock CLI as a user runs it (bench/lib.ts), in this benchmark's work folder. */
function airlock(args: string[], env: NodeJS.ProcessEnv & { AIRLOCK_STATE: string }): Promise<ChildRun> {
  // The run's peak-RSS note goes beside the state folder, in the benchmark's own folder.
  return runAirlock(args, { dir: dirname(env.AIRLOCK_STATE), env });
}

function spec(reg: RunningRegistry, version: string, set: BenchImage[]): string {
  return ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', `metadata: {name: bench, version: '${version}'}`, 'images:', ...set.map((i) => `  - ${reg.host}/${i.repo}:${i.tag}`), ''].join('\n');
}

const sha = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { size: { type: 'string', default: 'full' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    process.stdout.write('Usage: node bench/delta.ts [--size full|small] [--json]\n');
    return;
  }
  if (values.size !== 'full' && values.size !== 'small') throw new Error(`--size must be full or small, got "${values.size}"`);
  const size: SetSize = values.size;
  const dir = await mkdtemp(join(tmpdir(), 'airlock-bench-delta-'));
  let reg: RunningRegistry | undefined;
  try {
    const work = join(dir, 'layers');
    await mkdir(work);
    const v1 = buildImageSet(size, work);
    // The bump: shop/api's top layer (the application) rebuilt, everything below it kept.
    const bumpIndex = v1.findIndex((i) => i.repo === 'shop/api');
    const old = v1[bumpIndex]!;
    const layers = layersOf(old.image);
    const top = layers.at(-1)!.descriptor.size;
    const bumpedImage: BuiltImage = buildImage({ baseLayers: layers.slice(0, -1), layers: [{ random: { bytes: top - 1024, seed: 302 } }], workDir: work });
    const v2 = v1.map((i, n) => (n === bumpIndex ? { repo: i.repo, tag: '2.2', image: bumpedImage } : i));
    const newLayer = layersOf(bumpedImage).at(-1)!.descriptor;

    reg = await startRegistry();
    log(`seeding ${v1.length + 1} images into ${reg.host}`);
    for (const i of v2) await seedRegistry(reg.url, i.repo, i.tag, i.image);
    await seedRegistry(reg.url, old.repo, old.tag, old.image);
    const env = { AIRLOCK_CACHE: join(dir, 'cache'), AIRLOCK_STATE: join(dir, 'state'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: join(dir, 'no-auth.json') };
    for (const [v, set] of [['v1', v1], ['v2', v2]] as const) {
      await mkdir(join(dir, v));
      await writeFile(join(dir, v, 'airlock.yaml'), spec(reg, v === 'v1' ? '1' : '2', set));
      await airlock(['lock', '-f', join(dir, v, 'airlock.yaml'), '-q'], env);
    }
    log('pack v1 (full)');
    await airlock(['pack', '-f', join(dir, 'v1', 'airlock.yaml'), '-o', join(dir, 'v1.tar'), '-q'], env);
    log('pack v2 (full)');
    const full = await airlock(['pack', '-f', join(dir, 'v2', 'airlock.yaml'), '-o', join(dir, 'v2-full.tar'), '-q'], env);
    log('pack v2 --since v1.tar');
    const delta = await airlock(['pack', '-f', join(dir, 'v2', 'airlock.yaml'), '-o', join(dir, 'v2.tar'), '--since', join(dir, 'v1.tar'), '-q'], env);
    log('pack v2 --since v1/airlock.lock');
    const fromLock = await airlock(['pack', '-f', join(dir, 'v2', 'airlock.yaml'), '-o', join(dir, 'v2-lock.tar'), '--since', join(dir, 'v1', 'airlock.lock'), '-q'], env);
    log('verify v2.tar --base v1.tar');
    let verified = true;
    try {
      await airlock(['verify', join(dir, 'v2.tar'), '--base', join(dir, 'v1.tar'), '-q'], env);
    } catch {
      verified = false;
    }

    const b = await openBundle(join(dir, 'v2.tar'));
    let result: Result;
    try {
      const blobs = b.inventory.blobs;
      const manifests = blobs.filter((x) => isManifestMediaType(x.mediaType));
      const configs = blobs.filter((x) => CONFIG_MEDIA_TYPES.includes(x.mediaType));
      const layerBlobs = blobs.filter((x) => !manifests.includes(x) && !configs.includes(x));
      const bumpedConfig = (JSON.parse(blobBytes(findBlob(bumpedImage, bumpedImage.root.digest)).toString('utf8')) as { config: { digest: string } }).config.digest;
      const relied = b.inventory.delta?.blobs ?? [];
      result = {
        size,
        bumped: { image: old.repo, from: old.tag, to: '2.2', layerBytes: newLayer.size },
        fullV2Bytes: (await stat(join(dir, 'v2-full.tar'))).size,
        deltaBytes: (await stat(join(dir, 'v2.tar'))).size,
        ratio: 0,
        carried: {
          blobs: blobs.length,
          bytes: blobs.reduce((a, x) => a + x.size, 0),
          layers: layerBlobs.length,
          layerBytes: layerBlobs.reduce((a, x) => a + x.size, 0),
          manifests: manifests.length,
          configs: configs.length,
        },
        relied: { blobs: relied.length, bytes: relied.reduce((a, x) => a + x.size, 0) },
        onlyWhatChanged:
          layerBlobs.length === 1 &&
          layerBlobs[0]!.digest === newLayer.digest &&
          configs.length === 1 &&
          configs[0]!.digest === bumpedConfig &&
          manifests.some((m) => m.digest === bumpedImage.root.digest),
        sameFromLock: (await sha(join(dir, 'v2.tar'))) === (await sha(join(dir, 'v2-lock.tar'))),
        verifiedAgainstBase: verified,
        seconds: { packFullV2: full.seconds, packDelta: delta.seconds, packDeltaFromLock: fromLock.seconds },
      };
      result.ratio = result.deltaBytes / result.fullV2Bytes;
    } finally {
      await b.close();
    }

    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      const m = (n: number): string => `${(n / MiB).toFixed(2)} MiB`;
      process.stdout.write(
        [
          `version bump: ${result.bumped.image} ${result.bumped.from} → ${result.bumped.to} (top layer changed, ${result.bumped.layerBytes} bytes), ${v2.length - 1} images unchanged`,
          `full v2 bundle:   ${m(result.fullV2Bytes)}  (pack ${result.seconds.packFullV2.toFixed(1)} s)`,
          `delta since v1:   ${m(result.deltaBytes)}  (pack ${result.seconds.packDelta.toFixed(1)} s; from v1's lock ${result.seconds.packDeltaFromLock.toFixed(1)} s)  = ${(result.ratio * 100).toFixed(2)} % of full`,
          `carried: ${result.carried.layers} layer (${result.carried.layerBytes} bytes), ${result.carried.configs} config, ${result.carried.manifests} manifests; relied on: ${result.relied.blobs} blobs (${m(result.relied.bytes)})`,
          `only what changed: ${result.onlyWhatChanged ? 'yes' : 'NO'}; same bytes from v1's lock: ${result.sameFromLock ? 'yes' : 'NO'}; verify --base v1.tar: ${result.verifiedAgainstBase ? 'OK' : 'FAILED'}`,
        ].join('\n') + '\n',
      );
    }
    if (!result.onlyWhatChanged || !result.sameFromLock || !result.verifiedAgainstBase) process.exitCode = 1;
  } finally {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
