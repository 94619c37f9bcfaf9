// Start a real containerd (1.6, `apt-get install containerd`) as a plain process with its root,
// state and sockets in a temp dir and the CRI plugin disabled, and run `ctr` against it.
// Stopped by its PID; anything it left mounted under the temp dir is unmounted before removal.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopChild } from './registry.ts';
import { runBounded } from './run.ts';

export interface CtrImage {
  ref: string;
  type: string;
  digest: string;
  platforms: string[];
}

export interface RunningContainerd {
  /** The gRPC socket, for `ctr --address`. */
  address: string;
  dir: string;
  pid: number;
  /** Run `ctr --address … -n <namespace> <args>`; rejects with stderr on a non-zero exit. */
  ctr(args: string[], opts?: { namespace?: string; timeoutMs?: number }): Promise<string>;
  /** `ctr images ls` parsed. */
  images(namespace?: string): Promise<CtrImage[]>;
  stop(): Promise<void>;
}

/** The namespace k3s and kubelet use. */
export const K8S_NAMESPACE = 'k8s.io';

export async function startContainerd(): Promise<RunningContainerd> {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-containerd-'));
  const address = join(dir, 'containerd.sock');
  await writeFile(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      // No kubelet here; the CRI plugin would only add noise and global state.
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '[debug]',
      `  address = "${join(dir, 'debug.sock')}"`,
      '  level = "warn"',
      // Keeps containerd from creating /opt/containerd.
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${join(dir, 'opt')}"`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess;
  try {
    child = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 20000) stderr += d.toString();
  });
  const spawnError = new Promise<Error>((r) => child.once('error', r));

  const ctr = async (args: string[], opts: { namespace?: string; timeoutMs?: number } = {}): Promise<string> => {
    const r = await run('ctr', ['--address', address, '-n', opts.namespace ?? K8S_NAMESPACE, ...args], opts.timeoutMs ?? 60_000);
    if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${r.timedOut ? 'timed out' : `exit ${r.code}`}):\n${r.stderr.trim()}`);
    return r.stdout;
  };
  const stop = async (): Promise<void> => {
    await stopChild(child);
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const err = await Promise.race([spawnError, sleep(10).then(() => undefined)]);
      await stop();
      throw new Error(`containerd did not start${err ? `: ${err.message}` : ''}\n${stderr}\n(install it with: apt-get install containerd)`);
    }
    const v = await run('ctr', ['--address', address, 'version'], 2000).catch(() => undefined);
    if (v?.code === 0) break;
    await sleep(50);
  }

  return {
    address,
    dir,
    pid: child.pid!,
    ctr,
    async images(namespace) {
      const out = await ctr(['images', 'ls'], { namespace });
      return out
        .split('\n')
        .slice(1)
        .filter((l) => l.trim() !== '')
        .map((l) => {
          // REF TYPE DIGEST SIZE(number unit) PLATFORMS LABELS
          const [ref = '', type = '', digest = '', , , platforms = ''] = l.trim().split(/\s+/);
          return { ref, type, digest, platforms: platforms === '-' ? [] : platforms.split(',') };
        });
    },
    stop,
  };
}

async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const mounts = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', [m], 10_000).catch(() => undefined);
}

async function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  const r = await runBounded(cmd, args, { timeoutMs, install: 'apt-get install containerd' });
  return { ...r, stdout: r.stdout.toString() };
}
