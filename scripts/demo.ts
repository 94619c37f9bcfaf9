// The main job end to end on the embedded sample app: an "upstream" registry seeded with a small
// shop (stand-in for the public registries this machine cannot reach) → lock → pack → verify →
// inspect → push into an "internal" registry → every digest compared.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, type RunningRegistry } from '../test/helpers/registry.ts';
import { buildImage, buildIndex, seedRegistry, type BuiltImage } from '../test/helpers/images.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const MiB = 1024 * 1024;

function run(args: string[], cwd: string): Promise<number> {
  process.stdout.write(`\n$ airlock ${args.join(' ')}\n`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd, stdio: 'inherit', env: { ...process.env, AIRLOCK_CACHE: join(cwd, 'cache') } });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function must(args: string[], cwd: string): Promise<void> {
  const code = await run(args, cwd);
  if (code !== 0) throw new Error(`airlock ${args[0]} exited with ${code}`);
}

async function digestAt(reg: RunningRegistry, repo: string, tag: string): Promise<string> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  return res.headers.get('docker-content-digest') ?? `missing (HTTP ${res.status})`;
}

const upstream = await startRegistry();
const internal = await startRegistry();
const dir = await mkdtemp(join(tmpdir(), 'airlock-demo-'));
let failed = false;
try {
  console.log(`upstream registry (sample app): ${upstream.url}  pid ${upstream.pid}`);
  console.log(`internal registry (the isolated side): ${internal.url}  pid ${internal.pid}`);
  const base = { random: { bytes: 8 * MiB, seed: 42 } };
  const app: { repo: string; tag: string; image: BuiltImage }[] = [
    { repo: 'shop/frontend', tag: '1.4.0', image: buildImage({ layers: [base, { files: { 'srv/index.html': '<h1>shop</h1>\n' } }], format: 'oci' }) },
    { repo: 'shop/api', tag: '1.4.0', image: buildImage({ layers: [base, { random: { bytes: 4 * MiB, seed: 7 } }], format: 'docker' }) },
    {
      repo: 'library/redis',
      tag: '7.2',
      image: buildIndex([
        buildImage({ layers: [base, { random: { bytes: 2 * MiB, seed: 8 } }], platform: 'linux/amd64' }),
        buildImage({ layers: [{ random: { bytes: 6 * MiB, seed: 9 } }], platform: 'linux/arm64' }),
      ]),
    },
    { repo: 'shop/migrations', tag: '1.4.0', image: buildImage({ layers: [base, { files: { 'migrate.sql': 'create table orders();\n' } }] }) },
  ];
  for (const a of app) await seedRegistry(upstream.url, a.repo, a.tag, a.image);
  await writeFile(
    join(dir, 'airlock.yaml'),
    ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: shop, version: 1.4.0}', 'images:', ...app.map((a) => `  - ${upstream.host}/${a.repo}:${a.tag}`), ''].join('\n'),
  );
  console.log(`\nspec: ${join(dir, 'airlock.yaml')}`);

  await must(['lock'], dir);
  await must(['pack', '-o', 'shop.tar'], dir);
  await must(['verify', 'shop.tar'], dir);
  await must(['inspect', 'shop.tar'], dir);
  await must(['push', 'shop.tar', `${internal.host}/mirror`], dir);

  console.log('\ndigests, upstream vs internal registry:');
  for (const a of app) {
    const want = a.image.root.digest;
    const got = await digestAt(internal, `mirror/${a.repo}`, a.tag);
    const ok = got === want;
    failed ||= !ok;
    console.log(`  ${ok ? 'same' : 'DIFFERENT'}  ${internal.host}/mirror/${a.repo}:${a.tag}  ${got}`);
  }
  console.log(failed ? '\ndemo FAILED: a digest changed' : '\ndemo OK: every image crossed with its digest unchanged');
} catch (e) {
  failed = true;
  console.error(`demo FAILED: ${(e as Error).message}`);
} finally {
  await Promise.all([upstream.stop(), internal.stop()]);
  await rm(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
