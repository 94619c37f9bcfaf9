// `airlock sandbox` as a library: run a command in a fresh network namespace with no way off the
// machine and record everything it tries to reach.
//
//   sandbox namespace: lo + one veth end (169.254.0.1/30, fd00:a1:a1::1/64) with default routes
//                      through it, so every connect() gets as far as nftables; nftables records
//                      each TCP/UDP/ping attempt and refuses it, and each loopback connection
//                      nothing in the sandbox answers; the helper (DNS sink on 127.0.0.1:53,
//                      forwarders for --allow) runs here.
//   sink namespace:    the other veth end and nothing else: no routes, no forwarding.
//
// The command runs as root but cannot touch any of this (confined-command.ts, confine.ts): no
// capability that reaches the network stack or the namespaces, a PID namespace of its own that
// hides airlock and the helper, read-only kernel settings.
//
// The namespace's resolv.conf and hosts come from /etc/netns/NAME/ (which `ip netns exec`
// bind-mounts over /etc), so every name lookup reaches the sink. At the end everything created
// is removed, also after a timeout, Ctrl-C or SIGTERM: processes (by PID), namespaces (which
// takes the veth pair and the nftables table with them), /etc/netns/NAME and the temp dir.
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError, throwIfAborted } from '../../core/errors.ts';
import { parseAllow, startHostForwarders, type AllowEntry, type HostForwarders } from './allow.ts';
import { HELPER_CAPABILITIES, holdNodeOptions, setprivArgs } from './confine.ts';
import { startConfinedCommand } from './confined-command.ts';
import type { HelperConfig, HelperEvent } from './ns-helper.ts';
import { parseAttempts, rulesetText, TABLE, type Attempt, type Redirect } from './nft.ts';
import { checkPrerequisites, type SandboxTools } from './prerequisites.ts';
import { SetupError } from './setup-error.ts';
import { allowAddress, type DnsMode } from './sink-answers.ts';
import { findExecutable, runProcess, runProcessSync, startProcess, type RunningProcess } from '../../util/run-process.ts';
import { selfProcessArgs } from '../../util/executable.ts';

// The helper runs as its own script: ns-helper.ts beside this file in the sources, ns-helper.js in
// the built package (dist/), whichever this module itself is; the executable runs itself instead.
const helperScript = (): string => fileURLToPath(new URL(`./ns-helper${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
export const SANDBOX_ADDRESS = '169.254.0.1';
/** The far end of the sandbox's only link, in the sink namespace: what a probe may aim at. */
export const SINK_ADDRESS = '169.254.0.2';
const SANDBOX_ADDRESS6 = 'fd00:a1:a1::1';
const SINK_ADDRESS6 = 'fd00:a1:a1::2';
const STEP_TIMEOUT_MS = 15_000;
const KILL_GRACE_MS = 3_000;

export interface SandboxOptions {
  /** The program and its arguments. */
  command: string[];
  /** HOST:PORT endpoints the program may reach. */
  allow?: string[];
  /** Stop the command after this long (a soak); the run then ends normally. */
  timeoutMs?: number;
  /** What the DNS sink answers: a sink address per name (default) or NXDOMAIN. */
  dns?: DnsMode;
  /** Where the command's stdout goes: ours (default) or our stderr (keeps a JSON report clean). */
  stdout?: 'inherit' | 'stderr';
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  /**
   * Called once the command runs (tests use it to interrupt a run on cue); `pid` is airlock's child,
   * in airlock's PID namespace (the command runs in one of its own).
   */
  onStart?: (info: { namespace: string; pid: number }) => void;
}

export interface DnsRecord {
  name: string;
  type: string;
  count: number;
  /** The address answered, or NODATA / NXDOMAIN. */
  answer: string;
  allowed: boolean;
}

export interface ConnectionRecord {
  proto: 'tcp' | 'udp' | 'icmp';
  dest: string;
  port?: number;
  /** The name the program looked up to get `dest`, when it came from the DNS sink. */
  name?: string;
  allowed: boolean;
  /** Packets (refused attempts) or connections (allowed). */
  count: number;
}

export interface SandboxReport {
  namespace: string;
  command: string[];
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  interrupted: boolean;
  seconds: number;
  dns: DnsRecord[];
  connections: ConnectionRecord[];
  /** Something was looked up or connected to that was not allowed. */
  attempted: boolean;
}

async function run(bin: string, args: string[], input?: string): Promise<string> {
  const failed = (why: string): SetupError => new SetupError(`${[bin, ...args].join(' ')} failed: ${why.trim()}`, 'the sandbox needs root, network namespaces and nftables in the kernel');
  let r;
  try {
    r = await runProcess(bin, args, { input, timeoutMs: STEP_TIMEOUT_MS, maxOutputBytes: 64 * 1024 * 1024 });
  } catch (e) {
    throw failed((e as Error).message);
  }
  if (r.stopped === 'timeout') throw failed(`no answer within ${STEP_TIMEOUT_MS / 1000} s`);
  if (r.stopped === 'output-limit') throw failed('too much output');
  if (r.exitCode !== 0) throw failed(r.stderr || `exit ${r.exitCode ?? r.signal}`);
  return r.stdout;
}

async function resolveCommand(cmd: string, env: NodeJS.ProcessEnv, cwd: string): Promise<void> {
  if ((await findExecutable(cmd, { env, cwd })) !== undefined) return;
  throw new NotFoundError(`command "${cmd}" not found or not executable`, { code: 'COMMAND_NOT_FOUND', hint: 'give the program after --, e.g. airlock sandbox -- curl http://example.com' });
}

/** Running, not a zombie waiting for a parent that may never reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX] /s.test(stat);
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Run `command` in a sealed network namespace and report what it tried to reach. */
export async function runSandbox(o: SandboxOptions): Promise<SandboxReport> {
  const tools = await checkPrerequisites();
  if (o.command.length === 0) throw new NotFoundError('no command to run', { code: 'COMMAND_NOT_FOUND', hint: 'airlock sandbox [--allow HOST:PORT]... -- COMMAND ARGS...' });
  const allows = (o.allow ?? []).map(parseAllow);
  const env = o.env ?? process.env;
  const cwd = o.cwd ?? process.cwd();
  await resolveCommand(o.command[0]!, env, cwd);
  throwIfAborted(o.signal);
  const sb = new Sandbox(tools, allows);
  try {
    await sb.setUp(o.dns ?? 'sink', o.signal);
    return await sb.runCommand(o, env, cwd);
  } finally {
    await sb.tearDown();
  }
}

class Sandbox {
  readonly id = randomBytes(4).toString('hex');
  readonly ns = `airlock-sb-${this.id}`;
  readonly sinkNs = `airlock-sk-${this.id}`;
  readonly etcDir = `/etc/netns/${this.ns}`;
  readonly #tools: SandboxTools;
  readonly #allows: AllowEntry[];
  #tmp: string | undefined;
  #ipv6 = false;
  #created: ('ns' | 'sink' | 'etc')[] = [];
  #forwarders: HostForwarders | undefined;
  #helper: RunningProcess | undefined;
  #events: HelperEvent[] = [];
  #helperDone: Promise<void> = Promise.resolve();
  #emergency = (): void => this.#tearDownSync();

  constructor(tools: SandboxTools, allows: AllowEntry[]) {
    this.#tools = tools;
    this.#allows = allows;
  }

  #ip(...args: string[]): Promise<string> {
    return run(this.#tools.ip, args);
  }

  async setUp(dns: DnsMode, signal: AbortSignal | undefined): Promise<void> {
    // If airlock is made to exit mid-run (a second Ctrl-C), remove what exists synchronously.
    process.on('exit', this.#emergency);
    this.#tmp = await mkdtemp(join(tmpdir(), 'airlock-sandbox-'));
    await this.#ip('netns', 'add', this.ns);
    this.#created.push('ns');
    await this.#ip('netns', 'add', this.sinkNs);
    this.#created.push('sink');
    await mkdir(this.etcDir, { recursive: true });
    this.#created.push('etc');
    await writeFile(join(this.etcDir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n');
    await writeFile(join(this.etcDir, 'hosts'), `127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 ${hostname()}\n`);
    throwIfAborted(signal);

    const a = `alsb${this.id}`;
    const b = `alsk${this.id}`;
    await this.#ip('-n', this.ns, 'link', 'set', 'lo', 'up');
    await this.#ip('-n', this.ns, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', this.sinkNs);
    await this.#ip('-n', this.ns, 'addr', 'add', `${SANDBOX_ADDRESS}/30`, 'dev', a);
    await this.#ip('-n', this.sinkNs, 'addr', 'add', `${SINK_ADDRESS}/30`, 'dev', b);
    // IPv6 may be disabled on this machine: then connect() to IPv6 fails before it can be seen, which is still sealed.
    this.#ipv6 = await this.#ip('-n', this.ns, '-6', 'addr', 'add', `${SANDBOX_ADDRESS6}/64`, 'dev', a, 'nodad').then(
      () => this.#ip('-n', this.sinkNs, '-6', 'addr', 'add', `${SINK_ADDRESS6}/64`, 'dev', b, 'nodad'),
    ).then(() => true, () => false);
    await this.#ip('-n', this.sinkNs, 'link', 'set', b, 'up');
    await this.#ip('-n', this.ns, 'link', 'set', a, 'up');
    throwIfAborted(signal);

    this.#forwarders = await startHostForwarders(this.#allows, this.#tmp);
    const ports = await this.#startHelper(dns);
    throwIfAborted(signal);

    const redirects: Redirect[] = [];
    this.#allows.forEach((e, i) => {
      const to = ports[i]!;
      if (e.kind === 'ipv4' || e.kind === 'ipv6') redirects.push({ address: e.host, port: e.port, to });
      else if (e.kind === 'localhost') redirects.push({ address: '127.0.0.1', port: e.port, to }, { address: '::1', port: e.port, to });
      else redirects.push({ address: allowAddress(i), port: e.port, to });
    });
    await run(this.#tools.ip, ['netns', 'exec', this.ns, this.#tools.nft, '-f', '-'], rulesetText(redirects));
    // Routes last: until now no connect() could get past "network unreachable".
    await this.#ip('-n', this.ns, 'route', 'add', 'default', 'via', SINK_ADDRESS, 'dev', a);
    if (this.#ipv6) await this.#ip('-n', this.ns, '-6', 'route', 'add', 'default', 'via', SINK_ADDRESS6, 'dev', a);
  }

  async #startHelper(dns: DnsMode): Promise<number[]> {
    const config: HelperConfig = {
      mode: dns,
      allowedNames: this.#allows.flatMap((e, i): [string, string][] => (e.kind === 'name' ? [[e.host, allowAddress(i)]] : [])),
      forwarders: this.#forwarders!.sockets.map((socket) => ({ socket })),
    };
    // Its own process group: a Ctrl-C at the terminal must not stop the recorder before the report.
    // It reads what the command sends it, so it keeps only the capability to bind port 53.
    const helper = startProcess(this.#tools.ip, ['netns', 'exec', this.ns, this.#tools.setpriv, ...setprivArgs(HELPER_CAPABILITIES), '--', process.execPath, ...selfProcessArgs('ns-helper', helperScript), JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: holdNodeOptions(process.env),
      ownGroup: true,
    });
    this.#helper = helper;
    let stderr = '';
    helper.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString();
    });
    let buffered = '';
    let onReady: ((ports: number[]) => void) | undefined;
    let onFail: ((e: Error) => void) | undefined;
    const ready = new Promise<number[]>((res, rej) => {
      onReady = res;
      onFail = rej;
    });
    helper.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let e: HelperEvent;
        try {
          e = JSON.parse(line) as HelperEvent;
        } catch {
          continue;
        }
        if (e.t === 'ready') onReady?.(e.ports);
        else if (e.t === 'error') onFail?.(new SetupError(`the sandbox DNS sink could not start: ${e.message}`));
        else this.#events.push(e);
      }
    });
    this.#helperDone = new Promise((r) => helper.stdout!.once('end', () => r()));
    helper.exited.then(
      ({ exitCode }) => onFail?.(new SetupError(`the sandbox DNS sink exited (${exitCode ?? 'signal'}) before it was ready: ${stderr.trim()}`)),
      (e: Error) => onFail?.(new SetupError(`the sandbox DNS sink could not start: ${e.message}`)),
    );
    const timer = setTimeout(() => onFail?.(new SetupError(`the sandbox DNS sink was not ready within ${STEP_TIMEOUT_MS / 1000}s: ${stderr.trim()}`)), STEP_TIMEOUT_MS);
    try {
      return await ready;
    } finally {
      clearTimeout(timer);
      onReady = undefined;
      onFail = undefined;
    }
  }

  async runCommand(o: SandboxOptions, env: NodeJS.ProcessEnv, cwd: string): Promise<SandboxReport> {
    const child = await startConfinedCommand({
      tools: this.#tools,
      namespace: this.ns,
      command: o.command,
      dir: this.#tmp!,
      env,
      cwd,
      stdout: o.stdout ?? 'inherit',
      graceMs: KILL_GRACE_MS,
    });
    const started = Date.now();
    let timedOut = false;
    let interrupted = false;
    const timer = o.timeoutMs !== undefined ? setTimeout(() => ((timedOut = true), void child.stop()), o.timeoutMs) : undefined;
    const onAbort = (): void => {
      interrupted = true;
      void child.stop();
    };
    // An abort while the command was being started counts too.
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
    if (child.pid !== undefined) o.onStart?.({ namespace: this.ns, pid: child.pid });
    const outcome = await child.exited.then(({ exitCode, signal }) => ({ code: exitCode, signal })).finally(() => {
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    });
    const seconds = (Date.now() - started) / 1000;
    // What the command left running in its PID namespace goes with it; anything else in the network
    // namespace too.
    await child.gone;
    await this.#killNamespaceProcesses();
    let attempts: Attempt[] = [];
    try {
      attempts = parseAttempts(await this.#ip('netns', 'exec', this.ns, this.#tools.nft, '-j', 'list', 'table', 'inet', TABLE));
    } catch (e) {
      throw new SetupError(`could not read what the sandbox recorded: ${(e as Error).message}`);
    }
    await this.#stopHelper();
    return this.#report(o.command, outcome, { timedOut, interrupted, seconds }, attempts);
  }

  async #killNamespaceProcesses(): Promise<void> {
    const helperPid = this.#helper?.pid;
    const pids = async (): Promise<number[]> => {
      try {
        return (await this.#ip('netns', 'pids', this.ns)).split(/\s+/).filter((p) => /^[0-9]+$/.test(p)).map(Number).filter((p) => p !== helperPid && p !== process.pid);
      } catch {
        return [];
      }
    };
    let left = await pids();
    if (left.length === 0) return;
    for (const p of left) {
      try {
        process.kill(p, 'SIGTERM');
      } catch {
        // gone already
      }
    }
    const deadline = Date.now() + KILL_GRACE_MS;
    while (Date.now() < deadline && (left = left.filter(alive)).length > 0) await sleep(50);
    for (const p of (await pids())) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }

  async #stopHelper(): Promise<void> {
    const h = this.#helper;
    if (!h) return;
    h.stdin?.end();
    const exited = h.exited.then(() => undefined, () => undefined);
    await Promise.race([Promise.all([exited, this.#helperDone]), sleep(KILL_GRACE_MS)]);
    if (h.running && h.pid !== undefined) {
      h.kill('SIGKILL');
      await exited;
    }
  }

  #report(command: string[], outcome: { code: number | null; signal: NodeJS.Signals | null }, how: { timedOut: boolean; interrupted: boolean; seconds: number }, attempts: Attempt[]): SandboxReport {
    const dnsMap = new Map<string, DnsRecord>();
    const nameOf = new Map<string, string>();
    for (const e of this.#events) {
      if (e.t !== 'dns') continue;
      const key = `${e.name}\u0000${e.type}`;
      const r = dnsMap.get(key);
      if (r) r.count++;
      else dnsMap.set(key, { name: e.name, type: e.type, count: 1, answer: e.answer, allowed: e.allowed });
      if (/^[0-9.]+$/.test(e.answer)) nameOf.set(e.answer, e.name);
    }
    const connections: ConnectionRecord[] = attempts.map((a) => ({
      proto: a.proto,
      dest: a.dest,
      ...(a.port !== undefined ? { port: a.port } : {}),
      ...(nameOf.has(a.dest) ? { name: nameOf.get(a.dest)! } : {}),
      allowed: false,
      count: a.packets,
    }));
    this.#allows.forEach((e, i) => {
      const n = this.#forwarders?.counts[i] ?? 0;
      if (n > 0) connections.push({ proto: 'tcp', dest: e.host, port: e.port, ...(e.kind === 'name' ? { name: e.host } : {}), allowed: true, count: n });
    });
    const dns = [...dnsMap.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.type < b.type ? -1 : 1));
    return {
      namespace: this.ns,
      command,
      exitCode: outcome.code,
      signal: outcome.signal,
      timedOut: how.timedOut,
      interrupted: how.interrupted,
      seconds: how.seconds,
      dns,
      connections,
      attempted: dns.some((d) => !d.allowed) || connections.some((c) => !c.allowed),
    };
  }

  async tearDown(): Promise<void> {
    await this.#killNamespaceProcesses().catch(() => undefined);
    await this.#stopHelper().catch(() => undefined);
    await this.#forwarders?.close().catch(() => undefined);
    for (const what of [...this.#created].reverse()) {
      try {
        if (what === 'etc') await rm(this.etcDir, { recursive: true, force: true });
        else await this.#ip('netns', 'del', what === 'ns' ? this.ns : this.sinkNs);
      } catch {
        // best effort: the sync fallback below tries again on exit
        continue;
      }
      this.#created = this.#created.filter((c) => c !== what);
    }
    if (this.#tmp) await rm(this.#tmp, { recursive: true, force: true }).catch(() => undefined);
    if (this.#created.length === 0) process.off('exit', this.#emergency);
  }

  /** Last resort on process exit: synchronous, best effort, by PID and by the names created here. */
  #tearDownSync(): void {
    const ip = this.#tools.ip;
    if (this.#created.includes('ns')) {
      try {
        const pids = runProcessSync(ip, ['netns', 'pids', this.ns], { timeoutMs: 5000 }).stdout.split(/\s+/).filter((p) => /^[0-9]+$/.test(p)).map(Number);
        for (const p of pids) if (p !== process.pid) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      } catch {
        // namespace already gone
      }
    }
    for (const what of this.#created) {
      try {
        if (what === 'etc') rmSync(this.etcDir, { recursive: true, force: true });
        else runProcessSync(ip, ['netns', 'del', what === 'ns' ? this.ns : this.sinkNs], { timeoutMs: 5000 });
      } catch {
        // nothing more can be done while exiting
      }
    }
    this.#created = [];
  }
}
