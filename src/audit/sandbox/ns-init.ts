// The sandboxed command's first process, started by airlock as
//   ip netns exec NS unshare --pid --fork --mount-proc --kill-child node ns-init.ts CONFIG
// (or the executable in its internal mode, src/util/executable.ts)
// so it is PID 1 of a PID namespace of its own, with a /proc of that namespace. It makes /proc/sys
// and /sys read-only, starts the command through setpriv (capabilities dropped, no_new_privs) and
// tells airlock over a unix socket when the command started and how it ended.
//
// airlock cannot signal this process: unshare, its parent, holds SIGTERM and SIGINT, and the first
// process of a PID namespace ignores every signal it has no handler for (so the command cannot stop
// it either; node's SIGUSR1 handler, the inspector, is off). Stop and kill orders come over the same socket, which the command cannot
// reach: airlock accepts one connection, this one, before the command starts, and the socket is
// close-on-exec. When the command has ended, what it left running gets SIGTERM and a grace period;
// this process then exits, and the kernel kills whatever is still in the namespace.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { releaseNodeOptions, type ReadOnlyMount } from './confine.ts';
import { runProcess, startProcess, type ExitStatus } from '../../util/run-process.ts';

export interface InitConfig {
  /** airlock's control socket. */
  control: string;
  /** mount(8). */
  mount: string;
  mounts: readonly ReadOnlyMount[];
  /** setpriv, its options, `--`, the command and its arguments. */
  argv: string[];
  /** How long what the command left running has between SIGTERM and SIGKILL. */
  graceMs: number;
}

/** From this process to airlock. */
export type InitEvent = { t: 'started' } | { t: 'error'; message: string } | ({ t: 'exit' } & ExitStatus);
/** From airlock to this process. */
export type InitOrder = { t: 'stop' } | { t: 'kill' };

const MOUNT_TIMEOUT_MS = 10_000;
// The exit status when the command never ran (as env(1) and timeout(1) use it).
const SETUP_FAILED = 125;

function send(control: Socket, e: InitEvent): void {
  control.write(`${JSON.stringify(e)}\n`);
}

/** Any process of this PID namespace but this one that has not exited (zombies of orphans do not count). */
function othersAlive(): boolean {
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry) || entry === '1') continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && state !== 'X') return true;
    } catch {
      // exited meanwhile
    }
  }
  return false;
}

async function sweep(graceMs: number): Promise<void> {
  try {
    // From the first process of a PID namespace: every other process in it.
    process.kill(-1, 'SIGTERM');
  } catch {
    return; // nobody left
  }
  const deadline = Date.now() + graceMs;
  while (othersAlive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

let control: Socket | undefined;

async function main(configText: string | undefined): Promise<void> {
  const config = JSON.parse(configText ?? '{}') as InitConfig;
  const socket = connect(config.control);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  control = socket;
  let ending = false;
  // airlock is gone: nothing may outlive it, and this process leaving takes the namespace down.
  socket.on('close', () => {
    if (!ending) process.exit(SETUP_FAILED);
  });
  socket.on('error', () => socket.destroy());

  for (const m of config.mounts) {
    if (!existsSync(m.path)) continue;
    const r = await runProcess(config.mount, m.args, { timeoutMs: MOUNT_TIMEOUT_MS });
    if (r.exitCode !== 0) throw new Error(`could not make ${m.path} read-only: ${r.stderr.trim() || r.stopped || `mount exited with ${r.exitCode ?? r.signal}`}`);
  }

  // In airlock's process group, on its terminal: an interactive command gets Ctrl-C and may read it.
  const command = startProcess(config.argv[0]!, config.argv.slice(1), { stdio: ['inherit', 'inherit', 'inherit'], env: releaseNodeOptions(process.env), ownGroup: false });
  // A program that cannot be started has no PID, and `exited` rejects.
  if (command.pid === undefined) await command.exited;
  send(socket, { t: 'started' });
  let buffered = '';
  socket.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const order = JSON.parse(buffered.slice(0, nl)) as InitOrder;
      buffered = buffered.slice(nl + 1);
      if (order.t === 'stop') command.kill('SIGTERM');
      else if (order.t === 'kill') command.kill('SIGKILL');
    }
  });
  const status = await command.exited;
  ending = true;
  send(socket, { t: 'exit', exitCode: status.exitCode, signal: status.signal });
  await sweep(config.graceMs);
  socket.end(() => process.exit(0));
}

/** The first process's whole life; `config` is the InitConfig JSON airlock passed. */
export function nsInitMain(config: string | undefined): void {
  main(config).catch(onFailure);
}

function onFailure(e: unknown): void {
  const message = (e as Error).message;
  // The command never ran: airlock turns this into its error.
  if (control && !control.destroyed) {
    send(control, { t: 'error', message });
    control.end(() => process.exit(SETUP_FAILED));
  } else {
    process.stderr.write(`airlock sandbox: ${message}\n`);
    process.exit(SETUP_FAILED);
  }
}

// Started as a script (the sources, dist/); the executable calls nsInitMain (src/cli/exe-main.ts).
if (import.meta.main) nsInitMain(process.argv[2]);
