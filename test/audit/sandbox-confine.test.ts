// A hostile command inside `airlock sandbox` (Linux, root): it runs as root, yet cannot erase or
// stop the recorder, leave its namespaces, or go around nftables; attempts at loopback ports
// nothing in the sandbox answers on are recorded; ordinary commands still work. Probes aim only at
// names (the DNS sink answers them), at loopback inside the sandbox, or at this machine's loopback
// through --allow.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { airlock, resultOf, testEnv, type CliResult } from '../helpers/cli.ts';
import { stopChild } from '../helpers/registry.ts';
import { within } from '../helpers/wait.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const NODE = process.execPath;
const isRoot = process.getuid?.() === 0;

interface Report {
  namespace: string;
  exitCode: number | null;
  dns: { name: string; type: string; answer: string; allowed: boolean }[];
  connections: { proto: string; dest: string; port?: number; name?: string; allowed: boolean; count: number }[];
  attempted: boolean;
}

const sandbox = (args: string[]): Promise<CliResult> => airlock(['sandbox', '--json', ...args], { timeoutMs: 60_000 });
const reportOf = (r: CliResult): Report => resultOf(r.stdout) as unknown as Report;

/** A lookup and a connection the report must show: the recorder still works. */
const PHONE_HOME = (name: string): string =>
  `${NODE} -e "fetch('http://${name}:8080/').then(() => process.exit(0), (e) => { console.log('${name}:', e.cause?.code); process.exit(0); })"`;

function assertPhoneHomeRecorded(rep: Report, name: string): void {
  assert.ok(rep.dns.some((d) => d.name === name && d.type === 'A'), `the lookup of ${name} is recorded: ${JSON.stringify(rep.dns)}`);
  assert.ok(rep.connections.some((c) => c.name === name && c.port === 8080 && !c.allowed), `the connection to ${name}:8080 is recorded: ${JSON.stringify(rep.connections)}`);
}

describe('airlock sandbox shuts the command in', { concurrency: true, skip: isRoot ? false : 'needs root (network namespaces, nftables)' }, () => {
  let host: Server;
  let hostPort = 0;
  before(async () => {
    host = createServer((req, res) => res.end(`host says hi to ${req.url}`));
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', () => r()));
    hostPort = (host.address() as { port: number }).port;
  });
  after(async () => {
    host.closeAllConnections();
    await new Promise<void>((r) => host.close(() => r()));
  });

  it('nft flush ruleset is refused, and what the command tries afterwards is still recorded (exit 7)', async () => {
    const r = await sandbox(['--', 'sh', '-c', `nft flush ruleset; echo "nft exit $?"; ${PHONE_HOME('after-flush.example')}`]);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /Operation not permitted/);
    assert.match(r.stderr, /nft exit [1-9]/);
    assert.match(r.stderr, /after-flush\.example: ECONNREFUSED/);
    assertPhoneHomeRecorded(reportOf(r), 'after-flush.example');
  });

  it('the ways out of the namespace fail: links, unshare, nsenter, sysctls, raw and packet sockets', async () => {
    // Each line says "ok" when the way out worked. core_pattern gets its own value back: were the
    // write to work, nothing on this machine would change.
    const script = [
      'try() { name=$1; shift; if "$@" 2>/dev/null; then echo "$name: ok"; else echo "$name: refused"; fi; }',
      'try unshare unshare -n true',
      'try nsenter nsenter -t 1 -n true',
      'try ip_forward sh -c "echo 1 > /proc/sys/net/ipv4/ip_forward"',
      'try core_pattern sh -c \'p=$(cat /proc/sys/kernel/core_pattern) && printf "%s\\n" "$p" > /proc/sys/kernel/core_pattern\'',
      'try raw_socket perl -e "socket(S, 2, 3, 1) or exit 1"',
      'try packet_socket perl -e "socket(S, 17, 3, 0) or exit 1"',
      'try lo_down ip link set lo down',
      PHONE_HOME('after-escape.example'),
    ].join('\n');
    const r = await sandbox(['--', 'sh', '-c', script]);
    assert.equal(r.code, 7, r.stderr);
    const outcomes = Object.fromEntries([...r.stderr.matchAll(/^(\w+): (ok|refused)$/gm)].map((m) => [m[1], m[2]]));
    assert.deepEqual(outcomes, { unshare: 'refused', nsenter: 'refused', ip_forward: 'refused', core_pattern: 'refused', raw_socket: 'refused', packet_socket: 'refused', lo_down: 'refused' }, r.stderr);
    assertPhoneHomeRecorded(reportOf(r), 'after-escape.example');
  });

  it('the command cannot see or signal the DNS sink or airlock: the sink keeps recording', async () => {
    // The probe says which network namespace it is in and waits for PIDs on stdin; this test finds
    // the sink in that namespace from outside and hands its PID and airlock's over.
    const probe = `
      const { readlinkSync } = require('node:fs');
      console.log('netns=' + readlinkSync('/proc/self/ns/net'));
      let input = '';
      process.stdin.on('data', (d) => {
        input += d;
        if (!input.includes('\\n')) return;
        const [sink, airlock] = input.trim().split(' ').map(Number);
        const tryKill = (pid, sig) => { try { process.kill(pid, sig); return 'ok'; } catch (e) { return e.code; } };
        console.log('kill sink: ' + tryKill(sink, 'SIGKILL'));
        console.log('signal airlock: ' + tryKill(airlock, 0));
        process.stdin.destroy();
        require('node:dns').promises.lookup('after-kill.example').then(() => console.log('looked up'), (e) => console.log('lookup failed', e.code));
      });`;
    const child = spawn(NODE, [MAIN, 'sandbox', '--json', '--', NODE, '-e', probe], { stdio: ['pipe', 'pipe', 'pipe'], env: testEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    try {
      const netns = await within(new Promise<string>((resolve) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /netns=(net:\[[0-9]+\])/.exec(stderr);
          if (m) resolve(m[1]!);
        });
      }), 30_000, 'the probe says where it is');
      const sink = processesIn(netns).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ns-helper'));
      assert.equal(sink.length, 1, `one DNS sink in ${netns}`);
      child.stdin.end(`${sink[0]} ${child.pid}\n`);
      const code = await within(new Promise<number | null>((r) => child.once('close', (c) => r(c))), 30_000, 'airlock sandbox ends');
      assert.match(stderr, /kill sink: ESRCH/);
      assert.match(stderr, /signal airlock: ESRCH/);
      assert.match(stderr, /looked up/);
      assert.equal(code, 7, stderr);
      const rep = resultOf(stdout) as unknown as Report;
      assert.ok(rep.dns.some((d) => d.name === 'after-kill.example'), JSON.stringify(rep.dns));
    } finally {
      await stopChild(child);
    }
  });

  it('a loopback port nothing in the sandbox answers on is an attempt (exit 7); an allowed one and its own server are not', async () => {
    const probe = `(async () => {
      const net = require('node:net');
      const connect = (port, host) => new Promise((r) => net.connect(port, host).on('connect', function () { this.destroy(); r('connected'); }).on('error', (e) => r(e.code)));
      console.log('allowed: ' + (await (await fetch('http://127.0.0.1:${hostPort}/a')).text()));
      console.log('5433: ' + await connect(5433, '127.0.0.1'));
      const udp = require('node:dgram').createSocket('udp4');
      await new Promise((r) => udp.send('x', 9, '127.0.0.1', r));
      udp.close();
      // Its own server: a client that comes before the server listens, and one that tries ::1 first.
      const port = await new Promise((r) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
      console.log('early: ' + await connect(port, '127.0.0.1'));
      const server = net.createServer((c) => c.end()).listen(port, '127.0.0.1');
      await new Promise((r) => server.on('listening', r));
      console.log('ipv6 first: ' + await connect(port, '::1'));
      console.log('own server: ' + await connect(port, '127.0.0.1'));
      server.close();
    })()`;
    const r = await sandbox(['--allow', `127.0.0.1:${hostPort}`, '--', NODE, '-e', probe]);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /allowed: host says hi to \/a/);
    assert.match(r.stderr, /5433: ECONNREFUSED/);
    assert.match(r.stderr, /early: ECONNREFUSED/);
    assert.match(r.stderr, /ipv6 first: ECONNREFUSED/);
    assert.match(r.stderr, /own server: connected/);
    const rep = reportOf(r);
    assert.deepEqual(rep.connections.map((c) => [c.proto, c.dest, c.port, c.allowed]), [
      ['udp', '127.0.0.1', 9, false],
      ['tcp', '127.0.0.1', 5433, false],
      ['tcp', '127.0.0.1', hostPort, true],
    ]);
    assert.deepEqual(rep.dns, []);
  });

  it('the user\'s NODE_OPTIONS reach the command, not airlock\'s node processes in the namespace', async () => {
    // An --inspect there would open a debugger, and with it their powers, to the command; a
    // --require that notes who loaded it shows who took the options.
    const dir = await mkdtemp(join(tmpdir(), 'airlock-node-options-'));
    try {
      const preload = join(dir, 'preload.cjs');
      const seen = join(dir, 'seen');
      await writeFile(preload, `require('node:fs').appendFileSync(${JSON.stringify(seen)}, (process.argv[1] ?? 'eval') + '\\n');\n`);
      const r = await airlock(['sandbox', '--json', '--', NODE, '-e', 'console.log("options: " + process.env.NODE_OPTIONS)'], { timeoutMs: 60_000, env: { NODE_OPTIONS: `--require ${preload}` } });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stderr.includes(`options: --require ${preload}\n`), r.stderr);
      const loaders = (await readFile(seen, 'utf8')).trim().split('\n').sort();
      assert.deepEqual(loaders, ['eval', MAIN].sort(), 'airlock itself and the command, nothing else');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('ordinary commands still run as root and exit 0 when they attempt nothing', async () => {
    for (const command of [['true'], ['sh', '-c', 'echo ok']]) {
      const r = await sandbox(['--', ...command]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual({ dns: reportOf(r).dns, connections: reportOf(r).connections }, { dns: [], connections: [] });
    }
    // Root's own powers: a file only root may read, handed to another owner; a port below 1024.
    const script = `
      const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-root-'));
      const file = path.join(dir, 'secret');
      fs.writeFileSync(file, 'only root');
      fs.chmodSync(file, 0o000);
      fs.chownSync(file, 65534, 65534);
      const text = fs.readFileSync(file, 'utf8');
      fs.rmSync(dir, { recursive: true });
      const net = require('node:net');
      const server = net.createServer((c) => c.end(text)).listen(80, '127.0.0.1', () => {
        net.connect(80, '127.0.0.1').on('data', (d) => { console.log('read: ' + d); server.close(); });
      });`;
    const r = await sandbox(['--', NODE, '-e', script]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /read: only root/);
    assert.deepEqual({ dns: reportOf(r).dns, connections: reportOf(r).connections }, { dns: [], connections: [] });
  });
});

/** PIDs of the processes in network namespace `netns` (as readlink /proc/PID/ns/net says it). */
function processesIn(netns: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === netns) out.push(Number(entry));
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return out;
}
