// Serve benchmark: `airlock serve` (blobs read in place from the bundle tar) against the same
// content served by docker-registry (distribution 2.8, filesystem storage), in one run.
//
//   npm run bench:serve                     full set (~350 MiB unique, 9 images)
//   npm run bench:serve -- --size small     ~60 MiB smoke run
//   npm run bench:serve -- --rounds 5 --times 3 --concurrency 16 --json
//
// Setup: the bench image set (bench/image-set.ts) is seeded into a source docker-registry,
// `airlock pack --lock` makes the bundle, `airlock push` fills a second, empty docker-registry
// with it (so both servers hold the very same blobs), the source is stopped, and
// `airlock serve BUNDLE` starts. Then, for each server: one pass over every blob with sha256
// checked (correctness, and both get a warm page cache), then `rounds` timed passes in each
// of which every blob is downloaded `times` times by a Node client (undici) with `concurrency`
// GETs in flight. The order of the servers alternates between rounds so neither always runs
// on a cache the other warmed. Reported: MiB/s for each, ratio = airlock / registry (target
// ≥ 1.0), each server's CPU seconds per GiB served (steadier than throughput on a busy
// machine), and airlock serve's peak RSS (VmHWM of the process).
//
// Only 127.0.0.1; every process is stopped by its PID and the work dir removed in `finally`.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { startRegistry, type RunningRegistry } from '../test/helpers/registry.ts';
import { seedRegistry } from '../test/helpers/images.ts';
import { isManifestMediaType } from '../src/core/media-types.ts';
import { startServe, type RunningServe } from '../test/helpers/serve.ts';
import { buildImageSet, uniqueBlobBytes, type SetSize } from './image-set.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const MiB = 1024 * 1024;
const TARGET_RATIO = 1.0;
/** A whole run takes well under a minute here; a hang must not run forever. */
const DEADLINE_MS = 15 * 60_000;

interface Options {
  size: SetSize;
  rounds: number;
  concurrency: number;
  /** Downloads of every blob in one timed pass. */
  times: number;
  json: boolean;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'full' },
      rounds: { type: 'string', default: '6' },
      concurrency: { type: 'string', default: '16' },
      times: { type: 'string', default: '2' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('Usage: node bench/serve.ts [--size full|small] [--rounds N] [--times N] [--concurrency N] [--json]\n');
    process.exit(0);
  }
  if (values.size !== 'full' && values.size !== 'small') throw new Error(`--size must be full or small, got "${values.size}"`);
  const rounds = Number(values.rounds);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error(`--rounds must be an integer from 1 to 20, got "${values.rounds}"`);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new Error(`--concurrency must be 1-256, got "${values.concurrency}"`);
  const times = Number(values.times);
  if (!Number.isInteger(times) || times < 1 || times > 20) throw new Error(`--times must be an integer from 1 to 20, got "${values.times}"`);
  return { size: values.size, rounds, concurrency, times, json: values.json };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

interface Blob {
  repo: string;
  digest: string;
  size: number;
}

interface PassResult {
  seconds: number;
  bytes: number;
  mibPerSecond: number;
}

/** Download every blob once (`times` times in all), `concurrency` at a time; verify sizes (and digests if asked). */
async function pass(base: string, blobs: Blob[], opts: { concurrency: number; times: number; verify: boolean; agent: Agent }): Promise<PassResult> {
  const queue: Blob[] = [];
  for (let i = 0; i < opts.times; i++) queue.push(...blobs);
  let next = 0;
  let bytes = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let i = next++; i < queue.length; i = next++) {
      const b = queue[i]!;
      const res = await request(`${base}/v2/${b.repo}/blobs/${b.digest}`, { dispatcher: opts.agent });
      if (res.statusCode !== 200) throw new Error(`${base}: GET ${b.repo} blob ${b.digest} answered ${res.statusCode}: ${(await res.body.text()).slice(0, 300)}`);
      const hash = opts.verify ? createHash('sha256') : undefined;
      let n = 0;
      for await (const chunk of res.body) {
        n += (chunk as Buffer).length;
        hash?.update(chunk as Buffer);
      }
      if (n !== b.size) throw new Error(`${base}: blob ${b.digest} gave ${n} bytes, expected ${b.size}`);
      if (hash && `sha256:${hash.digest('hex')}` !== b.digest) throw new Error(`${base}: blob ${b.digest} has the wrong digest`);
      bytes += n;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { seconds, bytes, mibPerSecond: bytes / MiB / seconds };
}

async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`airlock ${args.join(' ')} exited with ${code}:\n${stderr}`);
}

/** CPU seconds (user + system) a process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Peak resident set size of a process (kernel high-water mark), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

async function main(): Promise<void> {
  const opts = parseOptions();
  const deadline = setTimeout(() => {
    log(`bench:serve: still running after ${DEADLINE_MS / 60_000} minutes, giving up`);
    process.exit(1);
  }, DEADLINE_MS);
  deadline.unref();
  const dir = await mkdtemp(join(tmpdir(), 'airlock-bench-serve-'));
  let src: RunningRegistry | undefined;
  let dst: RunningRegistry | undefined;
  let srv: RunningServe | undefined;
  const agents: Agent[] = [];
  try {
    log(`building the ${opts.size} image set…`);
    const set = buildImageSet(opts.size, join(dir, 'layers'));
    const unique = uniqueBlobBytes(set);
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    for (const img of set) await seedRegistry(src.url, img.repo, img.tag, img.image, { concurrency: 4 });
    const spec = join(dir, 'airlock.yaml');
    await writeFile(spec, ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: bench, version: 1.0.0}', 'images:', ...set.map((i) => `  - ${src!.host}/${i.repo}:${i.tag}`), ''].join('\n'));
    const env = { ...process.env, AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: join(dir, 'no-auth.json') };
    log('airlock pack…');
    const bundle = join(dir, 'bundle.tar');
    await runCli(['pack', '--lock', '-f', spec, '-o', bundle], env);
    log('airlock push into an empty docker-registry…');
    await runCli(['push', bundle, dst.host], env);
    await src.stop();
    src = undefined;
    await rm(join(dir, 'cache'), { recursive: true, force: true });
    srv = await startServe([bundle, '--listen', '127.0.0.1:0', '-q']);

    // Every unique blob once, with a repository that has it (the same names on both servers).
    // Manifests are left out: distribution answers them under /manifests/ only.
    const blobs = new Map<string, Blob>();
    for (const img of set) for (const b of img.image.blobs) if (!blobs.has(b.descriptor.digest) && !isManifestMediaType(b.descriptor.mediaType)) blobs.set(b.descriptor.digest, { repo: img.repo, digest: b.descriptor.digest, size: b.descriptor.size });
    const list = [...blobs.values()];
    const servers = [
      { name: 'airlock serve', url: srv.url, pid: srv.pid },
      { name: 'docker-registry', url: dst.url, pid: dst.pid },
    ];
    const agentFor = new Map(servers.map((s) => [s.name, new Agent({ connections: opts.concurrency, keepAliveTimeout: 30_000 })]));
    agents.push(...agentFor.values());

    for (const s of servers) {
      const r = await pass(s.url, list, { concurrency: opts.concurrency, times: 1, verify: true, agent: agentFor.get(s.name)! });
      log(`${s.name}: ${list.length} blobs, ${(r.bytes / MiB).toFixed(0)} MiB verified (warm-up, ${r.mibPerSecond.toFixed(0)} MiB/s with sha256)`);
    }
    const totals = new Map(servers.map((s) => [s.name, { seconds: 0, bytes: 0, cpu: 0 }]));
    for (let round = 0; round < opts.rounds; round++) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        const cpu0 = await cpuSeconds(s.pid);
        const r = await pass(s.url, list, { concurrency: opts.concurrency, times: opts.times, verify: false, agent: agentFor.get(s.name)! });
        const t = totals.get(s.name)!;
        t.cpu += (await cpuSeconds(s.pid)) - cpu0;
        t.seconds += r.seconds;
        t.bytes += r.bytes;
        log(`round ${round + 1}: ${s.name.padEnd(15)} ${r.mibPerSecond.toFixed(0).padStart(6)} MiB/s (${r.seconds.toFixed(2)} s)`);
      }
    }
    const rss = await peakRss(srv.pid);
    const rate = (n: string): number => totals.get(n)!.bytes / MiB / totals.get(n)!.seconds;
    const airlockRate = rate('airlock serve');
    const registryRate = rate('docker-registry');
    const ratio = airlockRate / registryRate;
    // CPU seconds per GiB served: less sensitive to other load on the machine than throughput.
    const cpuPerGiB = (n: string): number => totals.get(n)!.cpu / (totals.get(n)!.bytes / (1024 * MiB));
    const result = {
      size: opts.size,
      images: set.length,
      blobs: list.length,
      uniqueBytes: unique.bytes,
      rounds: opts.rounds,
      timesPerRound: opts.times,
      concurrency: opts.concurrency,
      airlockMiBps: Math.round(airlockRate),
      registryMiBps: Math.round(registryRate),
      ratio: Math.round(ratio * 100) / 100,
      targetRatio: TARGET_RATIO,
      airlockPeakRssBytes: rss,
      airlockCpuSecondsPerGiB: Math.round(cpuPerGiB('airlock serve') * 100) / 100,
      registryCpuSecondsPerGiB: Math.round(cpuPerGiB('docker-registry') * 100) / 100,
    };
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write(
        [
          `serve benchmark (${opts.size}: ${set.length} images, ${list.length} blobs, ${(unique.bytes / MiB).toFixed(0)} MiB unique; ${opts.rounds} rounds, ${opts.concurrency} concurrent GETs)`,
          `  airlock serve     ${airlockRate.toFixed(0).padStart(6)} MiB/s   ${cpuPerGiB('airlock serve').toFixed(2)} CPU s/GiB`,
          `  docker-registry   ${registryRate.toFixed(0).padStart(6)} MiB/s   ${cpuPerGiB('docker-registry').toFixed(2)} CPU s/GiB`,
          `  ratio             ${ratio.toFixed(2)} (target ≥ ${TARGET_RATIO.toFixed(1)}) ${ratio >= TARGET_RATIO ? 'OK' : 'BELOW TARGET'}`,
          `  airlock serve peak RSS ${(rss / MiB).toFixed(0)} MiB`,
          '',
        ].join('\n'),
      );
    }
    process.exitCode = ratio >= TARGET_RATIO ? 0 : 1;
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    if (srv) await srv.stop();
    await Promise.all([src?.stop(), dst?.stop()]);
    await rm(dir, { recursive: true, force: true });
    clearTimeout(deadline);
  }
}

await main();
