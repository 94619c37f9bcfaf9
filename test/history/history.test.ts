// The import history: a hash-chained log that pushes and serves append to, possibly at the same
// time from several processes. Appends at once still chain one after the other; an edited line
// breaks the chain where it was changed; a lock left by a killed run is taken over.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { appendHistory, readHistory, type HistoryRecord } from '../../src/history/history.ts';

const HISTORY = fileURLToPath(new URL('../../src/history/history.ts', import.meta.url));

function record(n: number): HistoryRecord {
  return { action: 'push', bundle: `/b${n}.tar`, name: 'shop', version: String(n), inventory: `sha256:${'a'.repeat(64)}`, key: null, verified: false, target: 'registry.internal:5000', images: n };
}

describe('import history', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-history-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('twenty appends at once, in one process: every line chains to the one before it', async () => {
    const path = join(dir, 'one.jsonl');
    await Promise.all(Array.from({ length: 20 }, (_, i) => appendHistory(record(i), { path })));
    const h = await readHistory({ path });
    assert.equal(h.entries.length, 20);
    assert.deepEqual(h.broken, []);
  });

  test('appends from four processes at once chain one after the other; no lock file is left', async () => {
    const path = join(dir, 'many.jsonl');
    const script = `const { appendHistory } = await import(${JSON.stringify(HISTORY)}); for (let i = 0; i < 10; i++) await appendHistory(JSON.parse(process.argv[1]), { path: ${JSON.stringify(path)} });`;
    const runs = Array.from({ length: 4 }, (_, i) =>
      new Promise<number>((resolve) => spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(record(i))], { stdio: 'ignore' }).on('close', (c) => resolve(c ?? 1))),
    );
    assert.deepEqual(await Promise.all(runs), [0, 0, 0, 0]);
    const h = await readHistory({ path });
    assert.equal(h.entries.length, 40);
    assert.deepEqual(h.broken, []);
    await assert.rejects(readFile(`${path}.lock`), { code: 'ENOENT' });
  });

  test('a lock left by a killed run is taken over; a changed line breaks the chain right after it', async () => {
    const path = join(dir, 'stale.jsonl');
    const gone = await new Promise<number>((resolve) => {
      const c = spawn('true');
      c.on('close', () => resolve(c.pid!));
    });
    await writeFile(`${path}.lock`, String(gone));
    for (let i = 0; i < 3; i++) await appendHistory(record(i), { path });
    const lines = (await readFile(path, 'utf8')).split('\n');
    lines[1] = lines[1]!.replace('"images":1', '"images":7');
    await writeFile(path, lines.join('\n'));
    assert.deepEqual((await readHistory({ path })).broken, [{ line: 3, message: 'the chain breaks here: a line before it was changed, removed or reordered' }]);
  });
});
