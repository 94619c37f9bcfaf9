// The user's command, started inside the sandbox namespace and shut in there: a PID namespace of
// its own behind ns-init, read-only kernel settings, and only the capabilities confine.ts keeps.
// airlock talks to ns-init over a unix socket in a directory of its own (see ns-init.ts for why
// not by signals): the command's start, its exit status, and airlock's stop and kill orders.
import { extname, join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { holdNodeOptions, KEPT_CAPABILITIES, READ_ONLY_MOUNTS, setprivArgs } from './confine.ts';
import type { InitConfig, InitEvent, InitOrder } from './ns-init.ts';
import type { SandboxTools } from './prerequisites.ts';
import { SetupError } from './setup-error.ts';
import { startProcess, type ExitStatus } from '../../util/run-process.ts';
import { selfProcessArgs } from '../../util/executable.ts';

// ns-init.ts beside this file in the sources, ns-init.js in the built package, as this module is;
// the executable runs itself instead.
const initScript = (): string => fileURLToPath(new URL(`./ns-init${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
const START_TIMEOUT_MS = 15_000;
// After the kill order: how long ns-init may take to report before airlock pulls the namespace down.
const KILL_WAIT_MS = 1_000;

export interface ConfinedCommandOptions {
  tools: SandboxTools;
  /** The sandbox's network namespace. */
  namespace: string;
  command: string[];
  /** A directory of airlock's for the control socket. */
  dir: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Where the command's stdout goes: ours, or our stderr. */
  stdout: 'inherit' | 'stderr';
  /** Between SIGTERM and SIGKILL, for the command and for what it leaves running. */
  graceMs: number;
}

export interface ConfinedCommand {
  /** airlock's child (unshare, in airlock's PID namespace). */
  readonly pid: number | undefined;
  /** The command's own exit status. */
  readonly exited: Promise<ExitStatus>;
  /** SIGTERM to the command, SIGKILL after the grace period; resolves once it has exited. */
  stop(): Promise<void>;
  /** Resolves once nothing of it is left: the command, what it left running, ns-init. */
  readonly gone: Promise<void>;
}

function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true, () => true),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves once the command runs confined; rejects with SetupError when it could not be. */
export async function startConfinedCommand(o: ConfinedCommandOptions): Promise<ConfinedCommand> {
  const path = join(o.dir, 'control.sock');
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  let control: Socket | undefined;
  const connected = new Promise<Socket>((resolve) => {
    server.on('connection', (s) => {
      // The first connection is ns-init's, made before the command starts; nobody gets a second.
      if (control) return void s.destroy();
      control = s;
      server.close();
      resolve(s);
    });
  });

  const config: InitConfig = {
    control: path,
    mount: o.tools.mount,
    mounts: READ_ONLY_MOUNTS,
    argv: [o.tools.setpriv, ...setprivArgs(KEPT_CAPABILITIES), '--', ...o.command],
    graceMs: o.graceMs,
  };
  // --disable-sigusr1: SIGUSR1 would open node's inspector, and the command can signal its PID 1
  // (the executable has it built in).
  const init = selfProcessArgs('ns-init', initScript, ['--disable-sigusr1']);
  const child = startProcess(o.tools.ip, ['netns', 'exec', o.namespace, o.tools.unshare, '--pid', '--fork', '--mount-proc', '--kill-child', '--', process.execPath, ...init, JSON.stringify(config)], {
    stdio: ['inherit', o.stdout === 'stderr' ? 2 : 'inherit', 'inherit'],
    env: holdNodeOptions(o.env),
    cwd: o.cwd,
    ownGroup: false,
  });
  const childExit = child.exited.then(
    (s) => s,
    (e: Error) => {
      throw new SetupError(`could not start the sandbox around ${o.command[0]}: ${e.message}`);
    },
  );
  childExit.catch(() => {});

  let onStarted: (() => void) | undefined;
  let onExit: ((s: ExitStatus) => void) | undefined;
  let onError: ((e: Error) => void) | undefined;
  const started = new Promise<void>((resolve, reject) => {
    onStarted = resolve;
    onError = reject;
  });
  const reported = new Promise<ExitStatus>((resolve) => (onExit = resolve));
  void connected.then((s) => {
    let buffered = '';
    s.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const e = JSON.parse(buffered.slice(0, nl)) as InitEvent;
        buffered = buffered.slice(nl + 1);
        if (e.t === 'started') onStarted?.();
        else if (e.t === 'error') onError?.(new SetupError(`the sandbox could not start ${o.command[0]}: ${e.message}`));
        else if (e.t === 'exit') onExit?.({ exitCode: e.exitCode, signal: e.signal });
      }
    });
    s.on('error', () => s.destroy());
  });
  // ns-init gone without a word (unshare or node could not start it, or it died): its exit status
  // is all there is.
  void childExit.then(
    (s) => onError?.(new SetupError(`the sandbox around ${o.command[0]} ended before the command started (${s.exitCode !== null ? `exit ${s.exitCode}` : s.signal})`, 'see the message above')),
    (e: Error) => onError?.(e),
  );
  const timer = setTimeout(() => onError?.(new SetupError(`the sandbox around ${o.command[0]} did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
  try {
    await started;
  } catch (e) {
    child.kill('SIGKILL');
    await childExit.catch(() => undefined);
    server.close();
    control?.destroy();
    throw e;
  } finally {
    clearTimeout(timer);
    onStarted = undefined;
    onError = undefined;
  }

  // The command's status as ns-init reported it. Should ns-init end without a report (it died),
  // the status airlock's child ended with; only once the socket is closed, as a report comes
  // before that and may be read after the child's exit is.
  const closed = connected.then((s) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r()))));
  const exited = Promise.race([reported, Promise.all([childExit, closed]).then(([s]) => s)]);
  const order = (x: InitOrder): void => {
    if (control && !control.destroyed) control.write(`${JSON.stringify(x)}\n`);
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      order({ t: 'stop' });
      if (await within(exited, o.graceMs)) return;
      order({ t: 'kill' });
      if (await within(exited, KILL_WAIT_MS)) return;
      // unshare's --kill-child takes ns-init, and with it everything in the PID namespace.
      child.kill('SIGKILL');
      await exited.catch(() => undefined);
    })();
    return stopping;
  };
  const gone = childExit.then(
    () => undefined,
    () => undefined,
  ).finally(() => control?.destroy());
  return { pid: child.pid, exited, stop, gone };
}
