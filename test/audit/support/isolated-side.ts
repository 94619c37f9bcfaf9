// Run inside `airlock sandbox` by test/audit/sandbox-airlock.test.ts: drives airlock's
// isolated-side commands together with their peers, all on the sandbox's own loopback.
//
//   isolated-side.ts serve BUNDLE   airlock serve on 127.0.0.1, skopeo (a real client) copies an image out of it
//   isolated-side.ts push BUNDLE    docker-registry on 127.0.0.1, airlock push into it, skopeo reads it back
//
// Prints one JSON line with what it saw; exits 0 only when every step worked. Every process it
// starts is stopped by its PID before it exits.
import { testEnv } from '../../helpers/cli.ts';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRegistry, stopChild } from '../../helpers/registry.ts';
import { skopeo, skopeoDigest } from '../../helpers/skopeo.ts';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));

async function serve(bundle: string, work: string): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [MAIN, 'serve', bundle, '--listen', '127.0.0.1:0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: testEnv() });
  try {
    const listening = await new Promise<Record<string, any>>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error('airlock serve did not start in 20 s')), 20_000);
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        for (const line of buf.split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            const e = JSON.parse(line) as Record<string, any>;
            if (e.type === 'listening') {
              clearTimeout(timer);
              resolve(e);
            }
          } catch {
            // partial line
          }
        }
      });
      child.once('exit', (code) => reject(new Error(`airlock serve exited with ${code}`)));
    });
    const image = (listening.images as { image: string; served: string; digest: string }[]).find((i) => i.image === 'docker.io/library/web:1')!;
    const host = `127.0.0.1:${listening.port}`;
    const digest = await skopeoDigest(`docker://${host}/${image.served}`);
    // Copy it out whole, as a node would pull it.
    await skopeo(['copy', '--src-tls-verify=false', `docker://${host}/${image.served}`, `oci:${join(work, 'pulled')}:web`], { timeoutMs: 60_000 });
    return { served: image.served, expected: image.digest, digest };
  } finally {
    await stopChild(child);
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
