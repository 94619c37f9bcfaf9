// The package as a new user gets it: `npm pack` (which builds dist/), the tarball installed into an
// empty directory, `npx airlock --help` there, and a script that imports `pack` and `verify` from
// 'airlock', typechecked with tsc against the shipped .d.ts files, packing from a real registry and
// verifying a good and a damaged bundle.
//
// Nothing here reaches beyond this machine: every npm command runs --offline with a private cache,
// and airlock's dependencies are installed from tarballs packed out of this clone's node_modules
// (only the packages package.json names, and theirs: a runtime import of anything else fails).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBounded, type RunResult } from '../helpers/run.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, layersOf, seedRegistry } from '../helpers/images.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE_BIN = dirname(process.execPath);

/** The packages airlock needs at run time: its dependencies, and theirs. */
async function runtimeDependencies(): Promise<string[]> {
  const seen = new Set<string>();
  const visit = async (name: string): Promise<void> => {
    if (seen.has(name)) return;
    seen.add(name);
    const pkg = JSON.parse(await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) await visit(dep);
  };
  const own = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(own.dependencies)) await visit(dep);
  return [...seen];
}

const CONSUMER = `import { readFile, writeFile } from 'node:fs/promises';
import { createSession, pack, verify, type PackEvent, type VerifyReport } from 'airlock';

const [dir] = process.argv.slice(2) as [string];
const phases: string[] = [];
await using session = createSession({ cacheDir: \`\${dir}/cache\` });
const packed = await pack(\`\${dir}/good.tar\`, {
  spec: \`\${dir}/airlock.yaml\`,
  relock: true,
  session,
  onEvent: (e: PackEvent) => {
    if (e.type === 'phase') phases.push(e.phase);
  },
});
const good: VerifyReport = await verify(packed.path);

// Damage one byte inside the largest blob of a copy.
const layer = packed.inventory.blobs.reduce((a, b) => (b.size > a.size ? b : a));
const bytes = await readFile(packed.path);
const header = bytes.indexOf(\`blobs/sha256/\${layer.digest.slice('sha256:'.length)}\`);
bytes[header + 512 + 100]! ^= 0xff;
await writeFile(\`\${dir}/bad.tar\`, bytes);
const bad: VerifyReport = await verify(\`\${dir}/bad.tar\`);

const summary = (r: VerifyReport) => ({ ok: r.ok, blobs: r.blobs, problems: r.problems.map((p) => ({ digest: p.digest, images: p.images, message: p.message })) });
console.log(JSON.stringify({ phases, layer: layer.digest, good: summary(good), bad: summary(bad) }));
`;

describe('the npm package', () => {
  let dir: string;
  let registry: RunningRegistry;
  let env: NodeJS.ProcessEnv;
  let image: ReturnType<typeof buildImage>;

  const run = async (cmd: string, args: string[], cwd: string, timeoutMs = 180_000): Promise<RunResult> => {
    const r = await runBounded(cmd, args, { cwd, env, timeoutMs, install: 'npm comes with Node.js' });
    assert.ok(!r.timedOut, `${cmd} ${args.join(' ')} took longer than ${timeoutMs} ms`);
    assert.equal(r.code, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout.toString()}\n${r.stderr}`);
    return r;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-package-'));
    env = {
      ...process.env,
      // Node 24 (this test's) and this clone's tools first: npm's scripts, npx and the bin run on them.
      PATH: [NODE_BIN, join(ROOT, 'node_modules', '.bin'), process.env.PATH ?? ''].join(delimiter),
      npm_config_cache: join(dir, 'npm-cache'),
      npm_config_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      npm_config_loglevel: 'error',
      DOCKER_CONFIG: join(dir, 'docker'),
      REGISTRY_AUTH_FILE: '',
    };
    registry = await startRegistry();
    image = buildImage({ layers: [{ random: { bytes: 256 * 1024, seed: 11 } }, { files: { 'etc/motd': 'hello' } }] });
    await seedRegistry(registry.url, 'shop/web', '1.0', image);
  });

  after(async () => {
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('npm pack installs into an empty directory: npx airlock --help, and a typed script packs and verifies', async () => {
    // npm pack runs the prepack script: the build into dist/.
    const packed = await run('npm', ['pack', '--pack-destination', dir, '--json'], ROOT);
    const [{ filename, files }] = JSON.parse(packed.stdout.toString()) as [{ filename: string; files: { path: string }[] }];
    const paths = files.map((f) => f.path);
    for (const p of ['bin/airlock.mjs', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/audit/sandbox/ns-helper.js', 'dist/audit/sandbox/ns-init.js', 'helm-plugin/plugin.yaml', 'package.json']) {
      assert.ok(paths.includes(p), `the tarball holds ${p}`);
    }
    assert.deepEqual(paths.filter((p) => /^(src|test|bench|scripts)\//.test(p)), [], 'no sources or tests in the tarball');

    const deps = join(dir, 'deps');
    await mkdir(deps);
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', deps, ...(await runtimeDependencies()).map((d) => join(ROOT, 'node_modules', d))], ROOT);
    const app = join(dir, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' })}\n`);
    await run('npm', ['install', '--ignore-scripts', join(dir, filename), ...(await readdir(deps)).map((f) => join(deps, f))], app);

    const help = await run('npx', ['airlock', '--help'], app);
    assert.match(help.stdout.toString(), /^airlock \d+\.\d+\.\d+: carry Kubernetes images/);
    assert.match(help.stdout.toString(), /\n {2}verify +check every blob/);

    // The consumer, typechecked as strictly as we typecheck ourselves, against the shipped types only.
    await writeFile(join(app, 'consumer.ts'), CONSUMER);
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2024',
          lib: ['es2024', 'esnext.disposable'],
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          noUncheckedIndexedAccess: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules', '@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app);
    // A mistake in the consumer is caught by those types.
    await writeFile(join(app, 'wrong.ts'), `import { verify } from 'airlock';\nconst n: number = (await verify('b.tar')).ok;\nconsole.log(n);\n`);
    const wrong = await runBounded(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2024', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'), 'wrong.ts'], { cwd: app, env, timeoutMs: 60_000, install: '' });
    assert.equal(wrong.code, 2, wrong.stdout.toString());
    assert.match(wrong.stdout.toString(), /wrong\.ts.*Type 'boolean' is not assignable to type 'number'/);

    const work = join(dir, 'work');
    await mkdir(work);
    await writeFile(join(work, 'airlock.yaml'), `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: shop, version: "1"}\nimages:\n  - ${registry.host}/shop/web:1.0\n`);
    const consumer = await run(process.execPath, ['consumer.ts', work], app);
    const out = JSON.parse(consumer.stdout.toString()) as {
      phases: string[];
      layer: string;
      good: { ok: boolean; blobs: number; problems: unknown[] };
      bad: { ok: boolean; problems: { digest?: string; images: string[]; message: string }[] };
    };
    assert.deepEqual(out.phases, ['lock', 'download']);
    assert.equal(out.layer, layersOf(image).reduce((a, b) => (b.descriptor.size > a.descriptor.size ? b : a)).descriptor.digest);
    assert.deepEqual(out.good, { ok: true, blobs: image.blobs.length, problems: [] });
    assert.equal(out.bad.ok, false);
    assert.deepEqual(out.bad.problems, [{ digest: out.layer, images: [`${registry.host}/shop/web:1.0`], message: out.bad.problems[0]!.message }]);
    assert.match(out.bad.problems[0]!.message, /^digest mismatch: the content hashes to sha256:[0-9a-f]{64}$/);
  });
});
