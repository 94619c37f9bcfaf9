import { constants } from 'node:os';
import { ExitCode, UsageError } from '../../core/errors.ts';
import { runSandbox, SINK_ADDRESS, type SandboxReport } from '../../audit/sandbox/sandbox.ts';
import { Output, table } from '../output.ts';
import { defineCommand } from './types.ts';

const VALUE_FLAGS = new Set(['--allow', '--timeout', '--dns']);

/** Everything from the first word that is not an option of ours is the command: put `--` before it. */
export function preprocessSandboxArgs(args: string[]): string[] {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args;
    if (VALUE_FLAGS.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return [...args.slice(0, i), '--', ...args.slice(i)];
  }
  return args;
}

function commandLine(args: string[]): string {
  const line = args.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
}

function describeExit(r: SandboxReport): string {
  const how = r.exitCode !== null ? `exited with ${r.exitCode}` : `was stopped by ${r.signal ?? 'a signal'}`;
  const why = r.timedOut ? ' (--timeout reached)' : r.interrupted ? ' (interrupted)' : '';
  return `${commandLine(r.command)} ${how}${why} after ${r.seconds.toFixed(1)}s`;
}

export function humanSandboxReport(r: SandboxReport): string {
  const lines: string[] = [`sandbox ${r.namespace}: ${describeExit(r)}`];
  if (r.dns.length === 0) lines.push('DNS queries: none');
  else {
    lines.push('DNS queries:');
    const rows = [['NAME', 'TYPE', 'COUNT', 'ANSWERED', 'ALLOWED']];
    for (const d of r.dns) rows.push([d.name, d.type, String(d.count), d.answer, d.allowed ? 'yes' : 'no']);
    lines.push(table(rows).replace(/^/gm, '  '));
  }
  if (r.connections.length === 0) lines.push('connection attempts: none');
  else {
    lines.push('connection attempts:');
    const rows = [['PROTO', 'DESTINATION', 'PORT', 'NAME', 'COUNT', 'ALLOWED']];
    for (const c of r.connections) rows.push([c.proto, c.dest, c.port !== undefined ? String(c.port) : '-', c.name ?? '-', String(c.count), c.allowed ? 'yes' : 'no (refused)']);
    lines.push(table(rows).replace(/^/gm, '  '));
  }
  lines.push(r.attempted ? 'ATTEMPTED: the command tried to reach the network beyond what --allow lets through' : 'nothing attempted: no lookup and no connection beyond what --allow lets through');
  return lines.join('\n');
}

export const sandboxCommand = defineCommand({
  name: 'sandbox',
  summary: 'run a command with no way off the machine and report every lookup and connection it tries (Linux, root)',
  usage: `Usage: airlock sandbox [--allow HOST:PORT]... [--timeout S] [--dns sink|nxdomain] [--json] -- COMMAND ARGS...

Runs COMMAND in a fresh network namespace that has no route off the machine: its only link leads to
a second, empty namespace. Records, and refuses at once:
  - every DNS query (the namespace's resolver is a sink on 127.0.0.1:53 that logs the name and type
    and answers each name with an address of its own in 198.18.0.0/16, or NXDOMAIN with --dns nxdomain),
  - every TCP/UDP connection attempt and ping to anything but loopback (nftables in the namespace,
    destination and port; a name's sink address is shown with the name),
  - every TCP/UDP connection to a loopback port nothing in the sandbox answers on (outside, this
    machine's own services listen there; inside, 127.0.0.1 is the sandbox's own).
Loopback works inside the sandbox: a server and its client can both run in it. At the end (the
command exits, --timeout passes, Ctrl-C or SIGTERM) every process left in the namespace is
stopped and the namespaces, veth pair and nftables table are removed.

COMMAND runs as root but cannot change or stop the recording: it has none of the capabilities that
reach past its namespace (CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN, CAP_SYS_PTRACE, …; dropped from
the bounding set, with no_new_privs), a PID namespace of its own, and /proc/sys and /sys read-only.
It keeps root's file powers and may bind ports below 1024. It can still write any file on this
machine: run a program you do not trust as another user, e.g.
  airlock sandbox -- setpriv --reuid=65534 --regid=65534 --clear-groups PROGRAM

Options:
      --allow HOST:PORT   let connections to HOST:PORT through (repeatable), e.g. a test registry on
                          this machine: --allow 127.0.0.1:5000. Inside, HOST:PORT is served by a
                          forwarder that carries each connection over a unix socket to airlock, which
                          connects to HOST:PORT from the host; an allowed name resolves (inside) to an
                          address of its own and (outside) through the host's resolver.
      --timeout S         stop the command after S seconds (a soak test); then report as usual
      --dns MODE          sink (default: every name resolves to a sink address, so the connection that
                          follows is recorded too) or nxdomain
      --json              the report as a JSON result line; the command's stdout goes to stderr
                          {"type":"result","dns":[{name,type,count,answer,allowed}],
                           "connections":[{proto,dest,port,name?,allowed,count}],"attempted":bool,…}

A probe that must not leave may aim at names (the sink answers them) or at ${SINK_ADDRESS}, the far end of
the sandbox's only link.
Needs Linux, root, ip (iproute2), nft (nftables), and setpriv, unshare and mount (util-linux);
$AIRLOCK_IP / $AIRLOCK_NFT name the binaries.
Exit code: ${ExitCode.findings} when anything beyond --allow was attempted; else the command's own exit code
(0 after --timeout, ${ExitCode.interrupted} when interrupted).`,
  options: {
    allow: { type: 'string', multiple: true },
    timeout: { type: 'string' },
    dns: { type: 'string' },
  },
  preprocessArgs: preprocessSandboxArgs,
  async run({ values, positionals, signal }) {
    // Our own output: `--json` after `--` belongs to the command, not to us.
    const out = new Output({ json: values.json === true, quiet: values.quiet === true });
    if (positionals.length === 0) throw new UsageError('sandbox needs a command to run', { hint: 'airlock sandbox [--allow HOST:PORT]... -- COMMAND ARGS...' });
    let timeoutMs: number | undefined;
    if (typeof values.timeout === 'string') {
      const s = Number(values.timeout);
      if (!Number.isFinite(s) || s <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got "${values.timeout}"`);
      timeoutMs = Math.round(s * 1000);
    }
    const dns = typeof values.dns === 'string' ? values.dns : 'sink';
    if (dns !== 'sink' && dns !== 'nxdomain') throw new UsageError(`--dns must be sink or nxdomain, got "${dns}"`);
    const report = await runSandbox({
      command: positionals,
      allow: Array.isArray(values.allow) ? (values.allow as string[]) : [],
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      dns,
      stdout: out.mode === 'json' ? 'stderr' : 'inherit',
      signal,
    });
    out.result({ ...report }, humanSandboxReport(report));
    if (report.attempted) return ExitCode.findings;
    if (report.interrupted) return ExitCode.interrupted;
    if (report.timedOut) return ExitCode.ok;
    // Like a shell: a command killed by a signal exits 128 + its number.
    return report.exitCode ?? 128 + (report.signal ? (constants.signals[report.signal as NodeJS.Signals] ?? 15) : 15);
  },
});
