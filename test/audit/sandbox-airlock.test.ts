// Proof that airlock's isolated-side commands make no outbound attempt at all: verify, inspect,
// export, serve (with a real client, skopeo, in the same sandbox) and push (into a docker-registry
// started inside the sandbox on its loopback), each run under `airlock sandbox`, which records
// every DNS query and connection attempt. And a control: a push aimed at a name outside is caught.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { airlock, resultOf } from '../helpers/cli.ts';
import { fixtureImages, writeFixtureBundle } from '../serve/fixture.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const DRIVER = fileURLToPath(new URL('./support/isolated-side.ts', import.meta.url));
const NODE = process.execPath;
const isRoot = process.getuid?.() === 0;

interface Report {
  exitCode: number | null;
  dns: unknown[];
  connections: unknown[];
  attempted: boolean;
}

/** `airlock sandbox --json -- COMMAND`: the report, the exit code, and the command's output (on stderr). */
async function sandboxed(command: string[], flags: string[] = []): Promise<{ code: number; report: Report; stderr: string }> {
  const r = await airlock(['sandbox', '--json', ...flags, '--', ...command], { timeoutMs: 90_000 });
  return { code: r.code, report: resultOf(r.stdout) as unknown as Report, stderr: r.stderr };
}

function assertSilent(r: { code: number; report: Report; stderr: string }): void {
  assert.deepEqual({ dns: r.report.dns, connections: r.report.connections, attempted: r.report.attempted }, { dns: [], connections: [], attempted: false }, r.stderr);
  assert.equal(r.report.exitCode, 0, r.stderr);
  assert.equal(r.code, 0, r.stderr);
}

describe('isolated-side commands under airlock sandbox', { concurrency: true, skip: isRoot ? false : 'needs root (network namespaces, nftables)' }, () => {
  let dir: string;
  let bundle: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-sandboxed-'));
    bundle = join(dir, 'bundle.tar');
    await writeFixtureBundle(bundle, fixtureImages());
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('verify makes no outbound attempt', async () => {
    const r = await sandboxed([NODE, MAIN, 'verify', bundle]);
    assertSilent(r);
    assert.match(r.stderr, /OK, \d+ blobs/);
  });

  it('inspect makes no outbound attempt', async () => {
    const r = await sandboxed([NODE, MAIN, 'inspect', bundle]);
    assertSilent(r);
    assert.match(r.stderr, /docker\.io\/library\/web:1/);
  });

  it('export makes no outbound attempt', async () => {
    const out = join(dir, 'export');
    const r = await sandboxed([NODE, MAIN, 'export', 'k3s', bundle, out]);
    assertSilent(r);
    assert.ok((await readdir(out)).some((f) => f.endsWith('.tar')));
  });

  it('serve, and a client pulling from it in the same sandbox, make no outbound attempt', async () => {
    const r = await sandboxed([NODE, DRIVER, 'serve', bundle]);
    assertSilent(r);
    const seen = JSON.parse(/^\{"isolatedSide":"serve".*$/m.exec(r.stderr)![0]) as { expected: string; digest: string };
    assert.equal(seen.digest, seen.expected, 'skopeo read the image with its original digest');
  });

  it('push into a registry inside the sandbox makes no outbound attempt', async () => {
    const r = await sandboxed([NODE, DRIVER, 'push', bundle]);
    assertSilent(r);
    const seen = JSON.parse(/^\{"isolatedSide":"push".*$/m.exec(r.stderr)![0]) as { pushed: boolean; digest: string };
    assert.equal(seen.pushed, true);
    assert.match(seen.digest, /^sha256:[0-9a-f]{64}$/);
  });

  it('control: a push to a registry outside is caught (the name and port in the report)', async () => {
    // push retries the refused registry for a few seconds, then gives up by itself.
    const r = await sandboxed([NODE, MAIN, 'push', bundle, 'registry.outside.example:443/mirror']);
    assert.equal(r.code, 7);
    assert.equal(r.report.attempted, true);
    assert.ok((r.report.dns as { name: string }[]).some((d) => d.name === 'registry.outside.example'));
    assert.ok((r.report.connections as { name?: string; port?: number }[]).some((c) => c.name === 'registry.outside.example' && c.port === 443));
  });
});
