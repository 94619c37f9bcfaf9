// `airlock help COMMAND` and the completion scripts, driven the way a shell drives them: bash
// sources the script and calls its function with COMP_WORDS/COMP_CWORD set, as on a TAB.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { airlock } from '../helpers/cli.ts';

const run = promisify(execFile);
let dir: string;
let script: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'airlock-completion-'));
  const r = await airlock(['completion', 'bash']);
  assert.equal(r.code, 0, r.stderr);
  script = join(dir, 'airlock.bash');
  await writeFile(script, r.stdout);
  for (const f of ['shop.tar', 'shop.tar.001', 'notes.txt', 'airlock.yaml']) await writeFile(join(dir, f), '');
  await mkdir(join(dir, 'bundles'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** What bash offers for the words typed so far (the last one is being completed). */
async function complete(...words: string[]): Promise<string[]> {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const { stdout } = await run('bash', ['-c', `source ${script}; COMP_WORDS=(airlock ${quoted}); COMP_CWORD=${words.length}; _airlock; printf '%s\\n' "\${COMPREPLY[@]}"`], { cwd: dir });
  return stdout.split('\n').filter((l) => l !== '').sort();
}

test('bash accepts the script; `airlock pa` completes to pack, flags per command, bundles for bundle arguments', async () => {
  await run('bash', ['-n', script]);
  assert.deepEqual(await complete('pa'), ['pack']);
  assert.deepEqual(await complete('log'), ['login', 'logout']);
  assert.deepEqual(await complete('pack', '--ou'), ['--output']);
  assert.ok((await complete('push', '--')).includes('--ca-file'));
  assert.ok(!(await complete('inspect', '--')).includes('--ca-file'), 'inspect talks to no registry');
  assert.deepEqual(await complete('push', ''), ['bundles', 'shop.tar', 'shop.tar.001']);
  assert.deepEqual(await complete('verify', 'shop.tar', '--base', ''), ['bundles', 'shop.tar', 'shop.tar.001']);
  assert.deepEqual(await complete('lock', '-f', 'airlock.y'), ['airlock.yaml']);
  assert.deepEqual(await complete('help', 'ver'), ['verify', 'version']);
  assert.deepEqual(await complete('completion', ''), ['bash', 'fish', 'zsh']);
});

test('zsh and fish scripts name every command; an unknown shell is a usage error', async () => {
  const zsh = await airlock(['completion', 'zsh']);
  assert.equal(zsh.code, 0, zsh.stderr);
  assert.match(zsh.stdout, /bashcompinit/);
  assert.match(zsh.stdout, /complete -F _airlock airlock/);
  const fish = await airlock(['completion', 'fish']);
  assert.equal(fish.code, 0, fish.stderr);
  for (const name of ['pack', 'push', 'login']) assert.match(fish.stdout, new RegExp(`-n '__fish_use_subcommand' -a ${name} -d`));
  assert.match(fish.stdout, /__fish_seen_subcommand_from push' -k -a '\(__fish_complete_suffix \.tar\)'/);
  const bad = await airlock(['completion', 'tcsh']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /completion needs one shell: bash, zsh, fish \(got "tcsh"\)/);
});

test('`airlock help COMMAND` prints what `airlock COMMAND --help` prints', async () => {
  const a = await airlock(['help', 'push']);
  const b = await airlock(['push', '--help']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.match(a.stdout, /^Usage: airlock push BUNDLE/);
  const unknown = await airlock(['help', 'pakc']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "pakc"/);
});
