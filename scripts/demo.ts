// The main job end to end on the embedded sample app: an "upstream" registry seeded with a small
// shop (stand-in for the public registries this machine cannot reach) → lock → pack → verify →
// inspect → `airlock serve` the bundle as the isolated side's registry → a real client (skopeo)
// pulls every image from it, by its served name and as a mirror of its original registry, and
// every digest is compared with upstream.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/helpers/registry.ts';
import { buildImage, buildIndex, seedRegistry, type BuiltImage } from '../test/helpers/images.ts';
import { MANIFEST_MEDIA_TYPES } from '../src/core/media-types.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const MiB = 1024 * 1024;

function run(args: string[], cwd: string): Promise<number> {
  process.stdout.write(`\n$ airlock ${args.join(' ')}\n`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd, stdio: 'inherit', env: { ...process.env, AIRLOCK_CACHE: join(cwd, 'cache'), AIRLOCK_STATE: join(cwd, 'state') } });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function must(args: string[], cwd: string): Promise<void> {
  const code = await run(args, cwd);
  if (code !== 0) throw new Error(`airlock ${args[0]} exited with ${code}`);
}

/** Start `airlock serve` on a free loopback port; resolves with its URL once it listens. */
async function serve(bundle: string, cwd: string): Promise<{ url: string; child: ChildProcess }> {
  process.stdout.write(`\n$ airlock serve ${bundle} --listen 127.0.0.1:0\n`);
  const child = spawn(process.execPath, [MAIN, 'serve', bundle, '--listen', '127.0.0.1:0', '--json'], { cwd, stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, AIRLOCK_STATE: join(cwd, 'state') } });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('airlock serve did not start within 10 s')), 10_000);
    lines.on('line', (l) => {
      const e = JSON.parse(l) as { type: string; url?: string; message?: string };
      if (e.type === 'listening') {
        clearTimeout(timer);
        resolve(e.url!);
      } else if (e.type === 'error') reject(new Error(e.message));
    });
    child.on('close', (code) => reject(new Error(`airlock serve exited with ${code}`)));
  });
  console.log(`listening on ${url}`);
  return { url, child };
}

async function digestAt(base: string, repo: string, tag: string, ns?: string): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}${ns ? `?ns=${ns}` : ''}`, {
    method: 'HEAD',
    headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') },
  });
  return res.headers.get('docker-content-digest') ?? `missing (HTTP ${res.status})`;
}

const upstream = await startRegistry();
const dir = await mkdtemp(join(tmpdir(), 'airlock-demo-'));
let served: ChildProcess | undefined;
let failed = false;
try {
  console.log(`upstream registry with the sample app (docker-registry, pid ${upstream.pid}): ${upstream.url}`);
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
  // The isolated side: no upstream any more, airlock's own registry answers from the bundle file.
  await upstream.stop();
  const { url, child } = await serve('shop.tar', dir);
  served = child;
  const host = new URL(url).host;
  console.log('\nskopeo (a real client) pulls every image, all platforms, from airlock serve; digests compared with upstream:');
  for (const a of app) {
    const want = a.image.root.digest;
    // A full pull, layers and all, into an OCI layout; its index.json names what was pulled.
    const layout = join(dir, 'pulled', a.repo.replace('/', '-'));
    await mkdir(layout, { recursive: true });
    await promisify(execFile)('skopeo', ['copy', '--quiet', '--insecure-policy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${host}/${a.repo}:${a.tag}`, `oci:${layout}:${a.tag}`]);
    const pulled = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const viaSkopeo = pulled.manifests[0]?.digest ?? 'nothing pulled';
    const viaMirror = await digestAt(url, a.repo, a.tag, upstream.host);
    const ok = viaSkopeo === want && viaMirror === want;
    failed ||= !ok;
    console.log(`  ${ok ? 'same' : 'DIFFERENT'}  ${host}/${a.repo}:${a.tag}  ${viaSkopeo}${viaMirror === want ? '  (also as a mirror of ' + upstream.host + ')' : '  mirror: ' + viaMirror}`);
  }
  console.log(failed ? '\ndemo FAILED: a digest changed' : '\ndemo OK: every image crossed with its digest unchanged, served by airlock from the bundle file');
} catch (e) {
  failed = true;
  console.error(`demo FAILED: ${(e as Error).message}`);
} finally {
  if (served?.pid !== undefined && served.exitCode === null) {
    const exited = new Promise((r) => served!.once('close', r));
    process.kill(served.pid, 'SIGTERM');
    await exited;
  }
  await upstream.stop();
  await rm(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
