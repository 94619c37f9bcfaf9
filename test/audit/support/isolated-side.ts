// Run inside `airlock sandbox` by test/audit/sandbox-airlock.test.ts: drives airlock's
// isolated-side commands together with their peers, all on the sandbox's own loopback.
//
//   isolated-side.ts serve BUNDLE   airlock serve on 127.0.0.1, skopeo (a real client) copies an image out of it
//   isolated-side.ts push BUNDLE    docker-registry on 127.0.0.1, airlock push into it, skopeo reads it back
//
// Prints one JSON line with what it saw; exits 0 only when every step worked. Every process it
// starts is stopped by its PID before it exits.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRegistry } from '../../helpers/registry.ts';
import { startServe } from '../../helpers/serve.ts';
import { skopeo, skopeoDigest } from '../../helpers/skopeo.ts';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));

async function serve(bundle: string, work: string): Promise<Record<string, unknown>> {
  const server = await startServe([bundle, '--listen', '127.0.0.1:0']);
  try {
    const image = (server.listening.images as { image: string; served: string; digest: string }[]).find((i) => i.image === 'docker.io/library/web:1')!;
    const digest = await skopeoDigest(`docker://${server.host}/${image.served}`);
    // Copy it out whole, as a node would pull it.
    await skopeo(['copy', '--src-tls-verify=false', `docker://${server.host}/${image.served}`, `oci:${join(work, 'pulled')}:web`], { timeoutMs: 60_000 });
    return { served: image.served, expected: image.digest, digest };
  } finally {
    await server.stop();
  }
}

async function push(bundle: string): Promise<Record<string, unknown>> {
  const reg = await startRegistry();
  try {
    const { stdout } = await run(process.execPath, [MAIN, 'push', bundle, `${reg.host}/mirror`, '--json'], { timeout: 60_000 });
    const result = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.type === 'result');
    const digest = await skopeoDigest(`docker://${reg.host}/mirror/library/web:1`);
    return { registry: reg.host, pushed: result !== undefined, digest };
  } finally {
    await reg.stop();
  }
}

const [mode, bundle] = process.argv.slice(2);
const work = await mkdtemp(join(tmpdir(), 'airlock-isolated-'));
try {
  if (!bundle || (mode !== 'serve' && mode !== 'push')) throw new Error('usage: isolated-side.ts serve|push BUNDLE');
  const result = mode === 'serve' ? await serve(bundle, work) : await push(bundle);
  process.stdout.write(`${JSON.stringify({ isolatedSide: mode, ...result })}\n`);
} catch (e) {
  process.stderr.write(`isolated-side ${mode}: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
