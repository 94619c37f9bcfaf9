// The helm/kubectl seam: which binary, private state that is removed afterwards, offline by
// default, helm's own message in errors, interruption.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExitCode, NotFoundError, UsageError } from '../../src/core/errors.ts';
import { findHelm, findKubectl, runHelm, runKubectl } from '../../src/helm/helm-runner.ts';
import { helmPath, kubectlPath } from '../helpers/helm.ts';
import { fileAppears, running, until, within } from '../helpers/wait.ts';

describe('helm runner', { concurrency: true }, () => {
  let dir: string;
  let envDump: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-helm-runner-'));
    await mkdir(join(dir, 'bin'));
    // A stand-in binary that shows what the runner gives it: its environment, and its exit status.
    envDump = join(dir, 'bin', 'helm');
    // `sleep PIDFILE`: writes its PID (kept by the exec'd sleep) where the test waits for it, then hangs.
    await writeFile(envDump, '#!/bin/sh\nif [ "$1" = fail ]; then echo "Error: chart is broken" >&2; exit 1; fi\nif [ "$1" = sleep ]; then echo $$ > "$2.tmp"; mv "$2.tmp" "$2"; exec sleep 30; fi\nenv\n');
    await chmod(envDump, 0o755);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds helm from the option, then $AIRLOCK_HELM, then PATH; says how to install it when none', async () => {
    assert.equal(await findHelm({ helm: helmPath(), env: { AIRLOCK_HELM: envDump } }), helmPath());
    assert.equal(await findHelm({ env: { AIRLOCK_HELM: envDump, PATH: '/usr/bin' } }), envDump);
    assert.equal(await findHelm({ env: { PATH: `/nonexistent:${join(dir, 'bin')}` } }), envDump);
    await assert.rejects(findHelm({ env: { PATH: '/nonexistent' } }), (e: NotFoundError) => {
      assert.equal(e.code, 'HELM_NOT_FOUND');
      assert.equal(e.exitCode, 3);
      assert.match(e.hint ?? '', /name the helm binary \(or set AIRLOCK_HELM\)/);
      return true;
    });
    await assert.rejects(findHelm({ helm: join(dir, 'nope') }), /helm binary ".*nope" \(from the helm option\) does not exist or is not an executable file/);
    assert.equal(await findKubectl({ helm: helmPath(), env: { PATH: '/nonexistent' } }), kubectlPath());
  });

  it('gives helm private state dirs, removed afterwards, and no way out but loopback', async () => {
    const { stdout } = await runHelm(['env'], { helm: envDump, env: { ...process.env, HELM_DATA_HOME: undefined, HTTPS_PROXY: 'http://proxy.corp:3128' } });
    const env = Object.fromEntries(stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const state = env.HELM_CACHE_HOME!.replace(/\/cache$/, '');
    assert.match(state, /airlock-helm-/);
    for (const k of ['HELM_CONFIG_HOME', 'HELM_DATA_HOME', 'HELM_REPOSITORY_CONFIG', 'HELM_REPOSITORY_CACHE', 'HELM_REGISTRY_CONFIG', 'HELM_PLUGINS', 'KUBECONFIG']) {
      assert.ok(env[k]?.startsWith(state), `${k}=${env[k]}`);
    }
    assert.equal(env.HTTPS_PROXY, 'http://127.0.0.1:9');
    assert.equal(env.HTTP_PROXY, 'http://127.0.0.1:9');
    assert.equal(env.NO_PROXY, undefined);
    await assert.rejects(stat(state), { code: 'ENOENT' });
  });

  it('lets an explicit helm state variable through (a caller with its own registry config)', async () => {
    const { stdout } = await runHelm(['env'], { helm: envDump, env: { ...process.env, HELM_REGISTRY_CONFIG: '/srv/airlock/registry.json' }, network: true });
    assert.match(stdout, /^HELM_REGISTRY_CONFIG=\/srv\/airlock\/registry\.json$/m);
    assert.doesNotMatch(stdout, /127\.0\.0\.1:9/);
  });

  it('a failure carries helm\'s stderr and names what was worked on', async () => {
    await assert.rejects(runHelm(['fail'], { helm: envDump, what: 'chart ./shop with values prod.yaml' }), (e: UsageError) => {
      assert.equal(e.code, 'HELM_FAILED');
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /^helm fail for chart \.\/shop with values prod\.yaml failed \(exited with status 1\):\n {4}Error: chart is broken$/);
      return true;
    });
  });

  it('the real helm renders offline, and its state dir is gone afterwards', async () => {
    const { stdout } = await runHelm(['version', '--template', '{{ .Version }}'], { helm: helmPath() });
    assert.equal(stdout, 'v4.1.4');
    const { stdout: k } = await runKubectl(['version', '--client', '-o', 'json'], { kubectl: kubectlPath() });
    assert.match(JSON.parse(k).clientVersion.gitVersion, /^v1\.35\./);
  });

  it('an abort kills helm and rejects with AbortedError', async () => {
    const controller = new AbortController();
    const pidFile = join(dir, 'helm-sleep.pid');
    const helm = runHelm(['sleep', pidFile], { helm: envDump, signal: controller.signal });
    await fileAppears(pidFile);
    const pid = Number(await readFile(pidFile, 'utf8'));
    controller.abort();
    // helm would sleep 30 s: the rejection coming back at all shows the abort ended it.
    await assert.rejects(within(helm, 20_000, 'runHelm after the abort'), { name: 'AbortedError', code: 'ABORTED', exitCode: ExitCode.interrupted });
    await until(() => !running(pid), `helm (pid ${pid}) to be gone`);
  });
});
