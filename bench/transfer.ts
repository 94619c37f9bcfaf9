// Transfer benchmark: airlock against skopeo, the tool people use for this job today.
//
//   npm run bench                      full set (~350 MiB unique, 9 images), one round
//   npm run bench -- --size small      ~60 MiB smoke run
//   npm run bench -- --runs 3 --json   three rounds, results as one JSON document on stdout
//   npm run bench -- --cpu-prof DIR    airlock children also write .cpuprofile files into DIR
//   npm run bench -- --quiet-wait 0    do not wait for other work on the machine to stop (default 60 s)
//
// One round, on fresh directories and registries each time:
//   pack: `airlock pack` (empty cache, new bundle) vs. one `skopeo copy --all --preserve-digests
//         docker://SRC/… oci:DIR:name` per image, sequentially, into one OCI layout directory.
//   push: `airlock push BUNDLE DST1` vs. `skopeo copy oci:DIR:name docker://DST2/…` per image,
//         each into an EMPTY docker-registry.
// ratio = skopeo seconds / airlock seconds (≥ 1 means airlock is faster); issue targets: ≥ 1.5 for
// both, airlock peak RSS < 300 MB. Wall-clock times include process start, as a user sees them.
//
// Fairness notes: each skopeo loop (one per step) gets its own fresh blob-info cache, shared by
// the calls of that loop only (test/helpers/skopeo.ts keeps it private): skopeo cannot skip work
// it did in an earlier step or round, but later calls of a loop may reuse what earlier ones did
// (e.g. mount a base layer pushed a moment ago), as they would in a user's shell loop. Both tools
// may skip blobs their own destination already holds (shared base layers). `sync` runs before every timed step
// so one tool's dirty pages are not written back on the other's clock, and the order of the two
// tools alternates between rounds. On a shared machine other processes steal CPU from whichever
// tool is running: before every timed step the benchmark waits (bounded) for the CPUs to be idle,
// and it reports how much CPU other work took while each tool ran ("others"), so a reader knows
// which rows to trust. Everything talks to 127.0.0.1 only; every process is stopped by
// its PID and every temp dir removed in `finally`.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startRegistry, type RunningRegistry } from '../test/helpers/registry.ts';
import { seedRegistry } from '../test/helpers/images.ts';
import { skopeo, skopeoIsolation } from '../test/helpers/skopeo.ts';
import { buildImageSet, uniqueBlobBytes, type BenchImage, type SetSize } from './image-set.ts';
import { MANIFEST_MEDIA_TYPES } from '../src/core/media-types.ts';
import { airlock, checkInterrupted, interrupt, log, median, MiB, resultOf, settle, table, withOthers, type ChildRun } from './lib.ts';

const TARGET_RATIO = 1.5;
const TARGET_RSS = 300e6;
const SKOPEO_TIMEOUT_MS = 5 * 60_000;

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

interface Options {
  size: SetSize;
  runs: number;
  json: boolean;
  cpuProf: string | undefined;
  concurrency: string | undefined;
  /** Longest wait for idle CPUs before each timed step, in ms (0: do not wait). */
  quietWaitMs: number;
}

interface Measured {
  /** CPU taken by other work while the tools ran, % of all CPUs (the worse of the two tools). */
  others: number;
  airlockSeconds: number;
  skopeoSeconds: number;
  /** skopeo / airlock: ≥ 1 means airlock is faster. */
  ratio: number;
  airlockPeakRssBytes: number;
}

interface RoundResult {
  round: number;
  order: 'airlock-first' | 'skopeo-first';
  pack: Measured;
  push: Measured;
  bundleBytes: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'full' },
      runs: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      concurrency: { type: 'string' },
      'quiet-wait': { type: 'string', default: '60' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('Usage: node bench/transfer.ts [--size full|small] [--runs N] [--json] [--cpu-prof DIR] [--concurrency N] [--quiet-wait SECONDS]\n');
    process.exit(0);
  }
  if (values.size !== 'full' && values.size !== 'small') throw new Error(`--size must be full or small, got "${values.size}"`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 10) throw new Error(`--runs must be an integer from 1 to 10, got "${values.runs}"`);
  const quietWait = Number(values['quiet-wait']);
  if (!Number.isFinite(quietWait) || quietWait < 0 || quietWait > 600) throw new Error(`--quiet-wait must be 0 to 600 seconds, got "${values['quiet-wait']}"`);
  return {
    size: values.size,
    runs,
    json: values.json,
    cpuProf: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    concurrency: values.concurrency,
    quietWaitMs: quietWait * 1000,
  };
}

// --- the two tools, step by step ------------------------------------------------------------

/** The OCI layout name skopeo gives an image (one layout dir holds them all). */
function ociName(img: BenchImage): string {
  return `${img.repo.replace(/\//g, '-')}-${img.tag}`;
}

/**
 * skopeo, sequentially, one image at a time, the way a shell loop over a list runs it. `stateDir`
 * is a fresh, empty directory: the loop's own blob-info cache, shared by its calls only.
 */
async function skopeoEach(set: BenchImage[], stateDir: string, argsFor: (img: BenchImage) => string[]): Promise<number> {
  await mkdir(stateDir);
  const started = performance.now();
  for (const img of set) {
    checkInterrupted();
    await skopeo(['copy', '--all', '--preserve-digests', '--quiet', ...argsFor(img)], { timeoutMs: SKOPEO_TIMEOUT_MS, stateDir });
  }
  return (performance.now() - started) / 1000;
}

async function remoteDigest(reg: RunningRegistry, repo: string, tag: string): Promise<string | undefined> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT } });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** Both tools must have moved the same images with the same digests, or the times mean nothing. */
async function checkRegistry(reg: RunningRegistry, set: BenchImage[], who: string): Promise<void> {
  for (const img of set) {
    const got = await remoteDigest(reg, img.repo, img.tag);
    if (got !== img.image.root.digest) throw new Error(`${who}: ${reg.host}/${img.repo}:${img.tag} is ${got ?? 'missing'}, expected ${img.image.root.digest}`);
  }
}

async function checkOciLayout(dir: string, set: BenchImage[]): Promise<void> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  for (const img of set) {
    const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ociName(img));
    if (entry?.digest !== img.image.root.digest) throw new Error(`skopeo OCI layout: ${ociName(img)} is ${entry?.digest ?? 'missing'}, expected ${img.image.root.digest}`);
  }
}

async function round(n: number, ctx: { opts: Options; set: BenchImage[]; src: RunningRegistry; work: string; specPath: string; registries: Set<RunningRegistry> }): Promise<RoundResult> {
  const { opts, set, src, work } = ctx;
  const dir = join(work, `round-${n}`);
  await mkdir(dir);
  const bundle = join(dir, 'bundle.tar');
  const oci = join(dir, 'oci');
  const airlockFirst = n % 2 === 1;
  const extra = opts.concurrency !== undefined ? ['--concurrency', opts.concurrency] : [];
  // Both tools for one step, in this round's order, each after settle(); `others` is the worse one.
  const pids = (): number[] => [...ctx.registries].map((r) => r.pid);
  const runBoth = async <A, B>(a: () => Promise<A>, b: () => Promise<B>): Promise<{ a: A; b: B; others: number }> => {
    const first = async <T>(fn: () => Promise<T>): Promise<{ value: T; others: number }> => {
      await settle(opts.quietWaitMs);
      return await withOthers(pids, fn);
    };
    if (airlockFirst) {
      const ra = await first(a);
      const rb = await first(b);
      return { a: ra.value, b: rb.value, others: Math.max(ra.others, rb.others) };
    }
    const rb = await first(b);
    const ra = await first(a);
    return { a: ra.value, b: rb.value, others: Math.max(ra.others, rb.others) };
  };

  log(`round ${n}: pack (${airlockFirst ? 'airlock first' : 'skopeo first'})`);
  const { a: packRun, b: skopeoPull, others: packOthers } = await runBoth(
    () => airlock(['pack', '-f', ctx.specPath, '-o', bundle, '--cache', join(dir, 'cache'), '--json', ...extra], { dir, cpuProf: opts.cpuProf }),
    () => skopeoEach(set, join(dir, 'skopeo-pull-state'), (img) => ['--src-tls-verify=false', `docker://${src.host}/${img.repo}:${img.tag}`, `oci:${oci}:${ociName(img)}`]),
  );
  const packed = resultOf(packRun.stdout);
  if (packed.images !== set.length) throw new Error(`airlock pack wrote ${String(packed.images)} images, expected ${set.length}`);
  await checkOciLayout(oci, set);
  const bundleBytes = (await stat(bundle)).size;
  log(`  airlock ${packRun.seconds.toFixed(2)} s, skopeo ${skopeoPull.toFixed(2)} s`);

  // Fresh, empty targets for each tool: neither may find the other's (or an earlier round's) blobs.
  const dstA = await startRegistry();
  ctx.registries.add(dstA);
  const dstS = await startRegistry();
  ctx.registries.add(dstS);
  try {
    log(`round ${n}: push (${airlockFirst ? 'airlock first' : 'skopeo first'})`);
    const { a: pushRun, b: skopeoPush, others: pushOthers } = await runBoth(
      () => airlock(['push', bundle, dstA.host, '--json', ...extra], { dir, cpuProf: opts.cpuProf }),
      () => skopeoEach(set, join(dir, 'skopeo-push-state'), (img) => ['--dest-tls-verify=false', `oci:${oci}:${ociName(img)}`, `docker://${dstS.host}/${img.repo}:${img.tag}`]),
    );
    await checkRegistry(dstA, set, 'airlock push');
    await checkRegistry(dstS, set, 'skopeo copy');
    log(`  airlock ${pushRun.seconds.toFixed(2)} s, skopeo ${skopeoPush.toFixed(2)} s`);
    return {
      round: n,
      order: airlockFirst ? 'airlock-first' : 'skopeo-first',
      pack: measured(packRun, skopeoPull, packOthers),
      push: measured(pushRun, skopeoPush, pushOthers),
      bundleBytes,
    };
  } finally {
    for (const r of [dstA, dstS]) {
      await r.stop();
      ctx.registries.delete(r);
    }
    // Each round holds ~3× the set on disk (cache, bundle, OCI dir); drop it before the next.
    await rm(dir, { recursive: true, force: true });
  }
}

/** Medians of each column (the ratio from the median times, RSS the worst seen). */
function medianOf(ms: Measured[]): Measured {
  const airlockSeconds = median(ms.map((m) => m.airlockSeconds));
  const skopeoSeconds = median(ms.map((m) => m.skopeoSeconds));
  return {
    others: Math.max(...ms.map((m) => m.others)),
    airlockSeconds,
    skopeoSeconds,
    ratio: skopeoSeconds / airlockSeconds,
    airlockPeakRssBytes: Math.max(...ms.map((m) => m.airlockPeakRssBytes)),
  };
}

function measured(run: ChildRun, skopeoSeconds: number, others: number): Measured {
  return { others, airlockSeconds: run.seconds, skopeoSeconds, ratio: skopeoSeconds / run.seconds, airlockPeakRssBytes: run.peakRssBytes };
}

// --- report ---------------------------------------------------------------------------------

function report(opts: Options, set: BenchImage[], unique: { count: number; bytes: number }, rounds: RoundResult[], isolation: string): string {
  const rows = [['round', 'step', 'airlock s', 'skopeo s', 'ratio', 'airlock peak RSS', 'targets', 'others']];
  const row = (label: string, step: string, m: Measured): string[] => [
    label,
    step,
    m.airlockSeconds.toFixed(2),
    m.skopeoSeconds.toFixed(2),
    m.ratio.toFixed(2),
    `${(m.airlockPeakRssBytes / 1e6).toFixed(0)} MB`,
    m.ratio >= TARGET_RATIO && m.airlockPeakRssBytes < TARGET_RSS ? 'met' : 'MISSED',
    `${m.others.toFixed(0)}%`,
  ];
  for (const r of rounds) {
    for (const step of ['pack', 'push'] as const) {
      rows.push(row(`${r.round} (${r.order === 'airlock-first' ? 'a→s' : 's→a'})`, step, r[step]));
    }
  }
  if (rounds.length > 1) {
    for (const step of ['pack', 'push'] as const) rows.push(row('median', step, medianOf(rounds.map((r) => r[step]))));
  }
  const bundle = rounds[0]!.bundleBytes;
  return [
    `airlock vs skopeo: ${set.length} images, ${unique.count} unique blobs, ${(unique.bytes / MiB).toFixed(1)} MiB unique (--size ${opts.size})`,
    `skopeo blob-info cache: ${isolation === 'shared' ? 'SHARED system cache (no user namespaces): skopeo times may be skewed' : `fresh for each step, shared by that step's calls (${isolation})`}`,
    '',
    table(rows),
    '',
    `ratio = skopeo s / airlock s (>= 1 means airlock is faster); targets: ratio >= ${TARGET_RATIO}, peak RSS < ${TARGET_RSS / 1e6} MB`,
    `others = CPU taken by other processes while the tools ran, % of ${availableParallelism()} CPUs (worse of the two); a quiet machine shows a few %, above ~10 % the times are skewed`,
    `bundle: ${(bundle / MiB).toFixed(2)} MiB = unique blobs ${(unique.bytes / MiB).toFixed(2)} MiB + ${((bundle - unique.bytes) / 1024).toFixed(1)} KiB of tar headers and metadata`,
  ].join('\n');
}

// --- main -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseOptions();
  const onSignal = (): void => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const registries = new Set<RunningRegistry>();
  let work: string | undefined;
  try {
    work = await mkdtemp(join(tmpdir(), 'airlock-bench-'));
    const isolation = await skopeoIsolation();
    if (opts.cpuProf) await mkdir(opts.cpuProf, { recursive: true });

    let t = performance.now();
    const set = buildImageSet(opts.size, join(work, 'layers'));
    const unique = uniqueBlobBytes(set);
    log(`built ${set.length} images, ${unique.count} blobs, ${(unique.bytes / MiB).toFixed(1)} MiB unique in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const src = await startRegistry();
    registries.add(src);
    t = performance.now();
    for (const img of set) {
      checkInterrupted();
      await seedRegistry(src.url, img.repo, img.tag, img.image);
    }
    log(`seeded ${src.host} (pid ${src.pid}) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const specPath = join(work, 'airlock.yaml');
    await writeFile(
      specPath,
      ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: bench, version: 1.0.0}', 'images:', ...set.map((i) => `  - ${src.host}/${i.repo}:${i.tag}`), ''].join('\n'),
    );
    // Locking is its own user step (it only reads manifests); pack is timed from a ready lock.
    const locked = await airlock(['lock', '-f', specPath, '--json'], { dir: work });
    log(`locked in ${locked.seconds.toFixed(2)} s (not part of the timed pack)`);

    const rounds: RoundResult[] = [];
    for (let n = 1; n <= opts.runs; n++) {
      checkInterrupted();
      rounds.push(await round(n, { opts, set, src, work, specPath, registries }));
    }

    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            size: opts.size,
            skopeoIsolation: isolation,
            images: set.length,
            uniqueBlobs: unique.count,
            uniqueBytes: unique.bytes,
            targets: { ratio: TARGET_RATIO, peakRssBytes: TARGET_RSS },
            rounds,
            median: { pack: medianOf(rounds.map((r) => r.pack)), push: medianOf(rounds.map((r) => r.push)) },
          },
          null,
          2,
        )}\n`,
      );
    } else {
      process.stdout.write(`\n${report(opts, set, unique, rounds, isolation)}\n`);
    }
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
