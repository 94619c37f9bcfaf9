// The command table as a user meets it: `airlock --help` lists every command with its summary,
// each command answers `--help`, and a typo gets a usage error naming the commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { airlock, resultOf } from '../helpers/cli.ts';
import { commandNames, loadCommand, loadCommands } from '../../src/cli/commands/index.ts';

test('every command in the table loads under its own name', async () => {
  const all = await loadCommands();
  assert.deepEqual(all.map((c) => c.name), [...commandNames]);
  assert.equal(await loadCommand('no-such-command'), undefined);
  assert.equal(await loadCommand('constructor'), undefined, 'only the table’s own names');
});

test('airlock --help lists every command with its summary; each command has --help', async () => {
  const r = await airlock(['--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const c of await loadCommands()) {
    assert.ok(r.stdout.includes(c.name) && r.stdout.includes(c.summary), `${c.name} listed with its summary`);
  }
  for (const name of ['pack', 'push', 'serve']) {
    const h = await airlock([name, '--help']);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, new RegExp(`airlock ${name}`));
  }
});

test('an unknown command exits 2 and names the commands there are', async () => {
  const r = await airlock(['pakc']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "pakc"/);
  assert.match(r.stderr, /commands: discover, lock, pack, .*history/);
});

test('airlock --version and version --json: version, the checkout\'s commit, platform, Node, from sources', async () => {
  const root = new URL('../../', import.meta.url);
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string };
  const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' }).trim() !== '';
  const platform = `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;
  const j = await airlock(['version', '--json']);
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(resultOf(j.stdout), { type: 'result', name: 'airlock', version: pkg.version, platform, node: process.versions.node, commit: head, dirty, from: 'sources' });
  const t = await airlock(['--version']);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.stdout, `airlock ${pkg.version}\n  commit    ${head}${dirty ? ' (with uncommitted changes)' : ''}\n  platform  ${platform}, running from sources\n  node      ${process.versions.node}\n`);
  const extra = await airlock(['version', 'now']);
  assert.equal(extra.code, 2);
  assert.match(extra.stderr, /version: unexpected arguments: now/);
});
