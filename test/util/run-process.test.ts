// The one process runner, with real programs (sh scripts): exit status and output, stdin, a
// program that hangs with a child of its own (both are gone after the deadline), one error naming
// a program that is missing or not executable, the output cap, and interruption.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AbortedError, ExitCode, isAirlockError } from '../../src/core/errors.ts';
import { BinaryNotFoundError, findExecutable, runProcess, startProcess } from '../../src/util/run-process.ts';
import { running } from '../helpers/wait.ts';


describe('runProcess', { concurrency: true }, () => {
  let dir: string;
  const script = async (name: string, body: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-run-process-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('returns the exit status and what it printed; stdin, env and cwd reach the program', async () => {
    const bin = await script('echo.sh', 'read line; echo "got $line from $GREETER in $(pwd)"; echo "warned" >&2; exit 3');
    const r = await runProcess(bin, [], { input: 'hello\n', env: { PATH: process.env.PATH, GREETER: 'test' }, cwd: dir });
    assert.deepEqual(r, { exitCode: 3, signal: null, stdout: `got hello from test in ${dir}\n`, stderr: 'warned\n' });
  });

  it('a program that hangs with a child of its own: after the deadline both are gone, even a child that ignores SIGTERM', async () => {
    // The child ignores SIGTERM, so only the SIGKILL to the whole group after the grace period ends it.
    const bin = await script('hang.sh', '(trap "" TERM; exec sleep 1000) &\necho "$$ $!"\nwait');
    // The child would sleep 1000 s: the run ending with `stopped: 'timeout'` shows the deadline ended it.
    const r = await runProcess(bin, [], { timeoutMs: 300, killGraceMs: 300 });
    const [helper, child] = r.stdout.trim().split(' ').map(Number) as [number, number];
    assert.ok(helper > 0 && child > 0, r.stdout);
    assert.equal(r.stopped, 'timeout');
    assert.equal(r.exitCode, null);
    assert.equal(r.signal, 'SIGTERM');
    assert.equal(running(helper), false, `helper ${helper} is gone`);
    assert.equal(running(child), false, `its child ${child} is gone`);
  });

  it('a missing program is one error naming it, with what to do', async () => {
    await assert.rejects(runProcess('airlock-no-such-program', ['x'], { env: { PATH: dir } }), (e: unknown) => {
      assert.ok(e instanceof BinaryNotFoundError);
      assert.equal(e.code, 'BINARY_NOT_FOUND');
      assert.equal(e.exitCode, 3);
      assert.equal(e.reason, 'missing');
      assert.match(e.message, /"airlock-no-such-program" was not found on PATH/);
      assert.match(e.hint ?? '', /install airlock-no-such-program/);
      return true;
    });
    await assert.rejects(runProcess(join(dir, 'nope'), []), (e: unknown) => e instanceof BinaryNotFoundError && /nope" does not exist/.test(e.message));
  });

  it('a file that is not executable is named as such', async () => {
    const path = join(dir, 'plain.txt');
    await writeFile(path, 'not a program\n');
    await chmod(path, 0o644);
    await assert.rejects(runProcess(path, []), (e: unknown) => {
      assert.ok(e instanceof BinaryNotFoundError);
      assert.equal(e.reason, 'not-executable');
      assert.match(e.message, /plain\.txt" is not an executable file/);
      assert.match(e.hint ?? '', /chmod \+x/);
      return true;
    });
  });

  it('a working directory that does not exist is named, not blamed on the program', async () => {
    await assert.rejects(runProcess('/bin/sh', ['-c', 'true'], { cwd: join(dir, 'no-such-dir') }), (e: unknown) => {
      assert.ok(isAirlockError(e) && !(e instanceof BinaryNotFoundError));
      assert.match(e.message, /working directory .*no-such-dir does not exist/);
      return true;
    });
  });

  it('a program that prints more than allowed is stopped, with what it printed up to then', async () => {
    const bin = await script('flood.sh', 'head -c 1048576 /dev/zero\nexec sleep 1000');
    const r = await runProcess(bin, [], { maxOutputBytes: 4096, timeoutMs: 30_000 });
    assert.equal(r.stopped, 'output-limit');
    assert.notEqual(r.exitCode, 0);
    assert.ok(r.stdout.length <= 4096);
  });

  it('an abort stops the program and its children, then rejects with AbortedError', async () => {
    const fifo = join(dir, 'started.fifo');
    execFileSync('mkfifo', [fifo]);
    const bin = await script('wait.sh', `sleep 1000 &\necho "$$ $!" > "${fifo}"\nwait`);
    const ac = new AbortController();
    const run = runProcess(bin, [], { signal: ac.signal, killGraceMs: 300 });
    // Opening the FIFO blocks until the script writes its PIDs: the abort comes while it runs.
    const [helper, child] = (await readFile(fifo, 'utf8')).trim().split(' ').map(Number) as [number, number];
    assert.equal(running(child), true);
    ac.abort();
    await assert.rejects(run, (e: unknown) => e instanceof AbortedError && e.exitCode === 130);
    assert.equal(running(helper), false, 'the program is gone');
    assert.equal(running(child), false, 'its child is gone');
  });

  it('an already aborted signal starts nothing', async () => {
    const marker = join(dir, 'ran');
    await assert.rejects(runProcess('/bin/sh', ['-c', `touch ${marker}`], { signal: AbortSignal.abort() }), { name: 'AbortedError', code: 'ABORTED', exitCode: ExitCode.interrupted });
    await assert.rejects(readFile(marker), { code: 'ENOENT' });
  });
});

describe('startProcess', () => {
  it('stop() on a process kept in our group ends it with SIGTERM', async () => {
    const p = startProcess('/bin/sh', ['-c', 'echo up; exec sleep 1000'], { ownGroup: false, stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => p.stdout!.once('data', r));
    assert.equal(p.running, true);
    await p.stop(1000);
    assert.deepEqual(await p.exited, { exitCode: null, signal: 'SIGTERM' });
    assert.equal(p.running, false);
  });

  it('a program that cannot start rejects `exited` with the typed error', async () => {
    const p = startProcess('airlock-no-such-program', [], { env: { PATH: '/nonexistent' } });
    await assert.rejects(p.exited, (e: unknown) => e instanceof BinaryNotFoundError && e.code === 'BINARY_NOT_FOUND' && e.exitCode === ExitCode.notFound && e.message === '"airlock-no-such-program" was not found on PATH');
    await p.stop();
  });
});

describe('findExecutable', () => {
  it('finds a bare name on PATH (then in extra dirs) and a path against cwd; a directory or a plain file is no program', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-find-exe-'));
    try {
      await mkdir(join(dir, 'bin'));
      await mkdir(join(dir, 'sbin'));
      await mkdir(join(dir, 'bin', 'tool-dir'));
      await writeFile(join(dir, 'bin', 'tool'), '#!/bin/sh\n');
      await chmod(join(dir, 'bin', 'tool'), 0o755);
      await writeFile(join(dir, 'bin', 'plain'), 'text\n');
      await writeFile(join(dir, 'sbin', 'admin-tool'), '#!/bin/sh\n');
      await chmod(join(dir, 'sbin', 'admin-tool'), 0o755);
      const env = { PATH: `/nonexistent::${join(dir, 'bin')}` };
      assert.equal(await findExecutable('tool', { env }), join(dir, 'bin', 'tool'));
      assert.equal(await findExecutable('./bin/tool', { cwd: dir }), join(dir, 'bin', 'tool'));
      assert.equal(await findExecutable('admin-tool', { env }), undefined);
      assert.equal(await findExecutable('admin-tool', { env, extraDirs: [join(dir, 'sbin')] }), join(dir, 'sbin', 'admin-tool'));
      assert.equal(await findExecutable('tool-dir', { env }), undefined);
      assert.equal(await findExecutable('plain', { env }), undefined);
      assert.equal(await findExecutable(join(dir, 'bin', 'missing')), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
