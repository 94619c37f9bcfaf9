// Where the airlock executable of a platform is found, from the sources (the executable's own case
// runs in test/exe/): dist/airlock-linux-<arch> once built and executable, nothing otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOOL_EXECUTABLES, toolExecutable } from '../../src/tools/executables.ts';

test('toolExecutable: the built file of the platform when it is there and executable, else undefined', async () => {
  const dist = await mkdtemp(join(tmpdir(), 'airlock-dist-'));
  try {
    assert.equal(await toolExecutable('linux/amd64', { distDir: dist }), undefined, 'not built');
    await writeFile(join(dist, 'airlock-linux-amd64'), 'x');
    assert.equal(await toolExecutable('linux/amd64', { distDir: dist }), undefined, 'not executable');
    await chmod(join(dist, 'airlock-linux-amd64'), 0o755);
    assert.equal(await toolExecutable('linux/amd64', { distDir: dist }), join(dist, 'airlock-linux-amd64'));
    assert.equal(await toolExecutable('linux/arm64', { distDir: dist }), undefined, 'each platform its own file');
    for (const other of ['linux/riscv64', 'windows/amd64', 'constructor', '']) assert.equal(await toolExecutable(other, { distDir: dist }), undefined, other);
  } finally {
    await rm(dist, { recursive: true, force: true });
  }
  assert.deepEqual(Object.keys(TOOL_EXECUTABLES), ['linux/amd64', 'linux/arm64']);
});

test('toolExecutable: by default, dist/ of this checkout', async () => {
  const built = fileURLToPath(new URL('../../dist/airlock-linux-arm64', import.meta.url));
  assert.equal(await toolExecutable('linux/arm64'), existsSync(built) ? built : undefined);
});
