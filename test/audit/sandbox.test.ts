// `airlock sandbox` for real (Linux, root): network namespaces, nftables and the DNS sink.
// Probes aim only at names (the sink answers them) or at the sandbox's own sink address
// (169.254.0.2, the far end of its only link, inside a namespace the run created): nothing here
// sends a packet anywhere else. Every run must leave no namespace, no /etc/netns entry and no
// process behind.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { airlock, resultOf, type CliResult } from '../helpers/cli.ts';
import { stopChild } from '../helpers/registry.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const NODE = process.execPath;
const isRoot = process.getuid?.() === 0;

const sandbox = (args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult> => airlock(['sandbox', ...args], { timeoutMs: 60_000, ...(env ? { env } : {}) });

interface Report {
  namespace: string;
  exitCode: number | null;
  timedOut: boolean;
  interrupted: boolean;
  dns: { name: string; type: string; count: number; answer: string; allowed: boolean }[];
  connections: { proto: string; dest: string; port?: number; name?: string; allowed: boolean; count: number }[];
  attempted: boolean;
}

/** PIDs (in this machine's PID namespace) of running processes whose command line is `argv`. */
function processesRunning(argv: string[]): number[] {
  const want = `${argv.join('\0')}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8') === want && !/^\S+ \(.*\) [ZX] /s.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

function assertCleanedUp(ns: string): void {
  const list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!list.includes(ns), `namespace ${ns} removed`);
  assert.ok(!list.includes(ns.replace('-sb-', '-sk-')), 'sink namespace removed');
  assert.ok(!existsSync(`/etc/netns/${ns}`), `/etc/netns/${ns} removed`);
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  assert.ok(!links.includes(ns.slice('airlock-sb-'.length)), 'no veth left in the host namespace');
}


describe('airlock sandbox', { concurrency: true, skip: isRoot ? false : 'needs root (network namespaces, nftables)' }, () => {
  let host: Server;
  let hostPort = 0;
  before(async () => {
    // A service on this machine's loopback, for --allow.
    host = createServer((req, res) => res.end(`host says hi to ${req.url}`));
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', () => r()));
    hostPort = (host.address() as { port: number }).port;
  });
  after(async () => {
    host.closeAllConnections();
    await new Promise<void>((r) => host.close(() => r()));
  });

  it('catches a program that looks up one name and fetches from another: both names, the port, a non-zero exit', async () => {
    const probe = `(async () => {
      await require('node:dns').promises.lookup('lookup-only.example');
      await fetch('http://fetch-target.example:8080/update').catch((e) => console.log('fetch refused:', e.cause?.code));
      await new Promise((r) => require('node:dgram').createSocket('udp4').send('x', 123, '169.254.0.2', (e) => { console.log('udp:', e?.code); r(); }));
      process.exit(0);
    })()`;
    const r = await sandbox(['--json', '--', NODE, '-e', probe]);
    assert.equal(r.code, 7, r.stderr);
    const rep = resultOf(r.stdout) as unknown as Report;
    assert.equal(rep.attempted, true);
    assert.equal(rep.exitCode, 0);
    const names = rep.dns.filter((d) => d.type === 'A').map((d) => d.name);
    assert.deepEqual(names.sort(), ['fetch-target.example', 'lookup-only.example']);
    const fetched = rep.connections.find((c) => c.name === 'fetch-target.example');
    assert.ok(fetched, JSON.stringify(rep.connections));
    assert.deepEqual({ proto: fetched.proto, port: fetched.port, allowed: fetched.allowed }, { proto: 'tcp', port: 8080, allowed: false });
    assert.ok(rep.connections.some((c) => c.proto === 'udp' && c.dest === '169.254.0.2' && c.port === 123 && !c.allowed));
    assert.ok(!rep.connections.some((c) => c.name === 'lookup-only.example'), 'looked up, never connected');
    // The program saw its attempts refused at once, not hanging.
    assert.match(r.stderr, /fetch refused: ECONNREFUSED/);
    assert.match(r.stderr, /udp: EPERM/);
    assertCleanedUp(rep.namespace);
  });

  it('passes a quiet program: exit 0, nothing recorded, its output untouched', async () => {
    const r = await sandbox(['--', NODE, '-e', 'const s = require("node:net").createServer((c) => c.end("local ok")).listen(0, "127.0.0.1", () => require("node:net").connect(s.address().port, "127.0.0.1").on("data", (d) => { console.log(String(d)); s.close(); }))']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^local ok$/m, 'loopback works inside');
    assert.match(r.stdout, /DNS queries: none\nconnection attempts: none\nnothing attempted/);
    const ns = /sandbox (airlock-sb-[0-9a-f]+):/.exec(r.stdout)![1]!;
    assertCleanedUp(ns);
  });

  it('--dns nxdomain: the lookup fails and is still recorded; the command\'s own exit code comes through', async () => {
    const r = await sandbox(['--dns', 'nxdomain', '--json', '--', NODE, '-e', 'require("node:dns").lookup("nowhere.example", (e) => { console.log(e.code); process.exit(e ? 0 : 1); })']);
    assert.equal(r.code, 7);
    const rep = resultOf(r.stdout) as unknown as Report;
    assert.match(r.stderr, /ENOTFOUND/);
    assert.deepEqual(rep.dns.map((d) => [d.name, d.answer]), [['nowhere.example', 'NXDOMAIN'], ['nowhere.example', 'NXDOMAIN']]);
    assert.deepEqual(rep.connections, []);
    const quiet = await sandbox(['--', NODE, '-e', 'process.exit(3)']);
    assert.equal(quiet.code, 3);
  });

  it('the DNS sink answers over TCP too, and records the query', async () => {
    // A raw DNS-over-TCP query for tcp-query.example (type A) to the namespace's resolver.
    const probe = `
      const q = Buffer.from('abcd01000001000000000000' + '09' + Buffer.from('tcp-query').toString('hex') + '07' + Buffer.from('example').toString('hex') + '0000010001', 'hex');
      const s = require('node:net').connect(53, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from([0, q.length]), q])));
      s.on('data', (d) => { console.log('rcode=' + (d[5] & 15) + ' answers=' + d.readUInt16BE(8) + ' a=' + [...d.subarray(d.length - 4)].join('.')); s.end(); });`;
    const r = await sandbox(['--json', '--', NODE, '-e', probe]);
    assert.equal(r.code, 7);
    assert.match(r.stderr, /rcode=0 answers=1 a=198\.18\.0\.1/);
    const rep = resultOf(r.stdout) as unknown as Report;
    assert.deepEqual(rep.dns.map((d) => [d.name, d.type, d.answer]), [['tcp-query.example', 'A', '198.18.0.1']]);
  });

  it('--allow HOST:PORT reaches a service on this machine; the connection is reported as allowed', async () => {
    const probe = `(async () => {
      for (const u of ['http://127.0.0.1:${hostPort}/a', 'http://localhost:${hostPort}/b']) console.log(await (await fetch(u)).text());
    })().catch((e) => { console.log('failed', e); process.exit(1); })`;
    const r = await sandbox(['--allow', `127.0.0.1:${hostPort}`, '--allow', `localhost:${hostPort}`, '--json', '--', NODE, '-e', probe]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /host says hi to \/a\nhost says hi to \/b/);
    const rep = resultOf(r.stdout) as unknown as Report;
    assert.equal(rep.attempted, false);
    assert.deepEqual(rep.connections.map((c) => [c.dest, c.port, c.allowed]).sort(), [['127.0.0.1', hostPort, true], ['localhost', hostPort, true]]);
    // Without --allow the same service is out of reach: inside, 127.0.0.1 is the sandbox's own,
    // where nothing answers on that port; the attempt is recorded.
    const denied = await sandbox(['--json', '--', NODE, '-e', `fetch('http://127.0.0.1:${hostPort}/').then(() => process.exit(0), () => process.exit(9))`]);
    assert.equal(denied.code, 7, denied.stderr);
    const deniedRep = resultOf(denied.stdout) as unknown as Report;
    assert.equal(deniedRep.exitCode, 9);
    assert.deepEqual(deniedRep.connections.map((c) => [c.proto, c.dest, c.port, c.allowed]), [['tcp', '127.0.0.1', hostPort, false]]);
  });

  it('--timeout ends a soak: the command and everything it left running are stopped, exit 0', async () => {
    // The command would run 200 s: the report saying timedOut, and exit 0, show the soak ended it.
    // The background sleep is found by its unique duration: inside, its PID is not the host's.
    const mark = `300.${process.pid}${Date.now() % 100_000}`;
    const r = await sandbox(['--timeout', '1', '--json', '--', 'sh', '-c', `sleep ${mark} & echo "bg=$!"; exec sleep 200`]);
    assert.equal(r.code, 0, r.stderr);
    const rep = resultOf(r.stdout) as unknown as Report;
    assert.equal(rep.timedOut, true);
    assert.match(r.stderr, /bg=[0-9]+/, 'the background process was started');
    assert.deepEqual(processesRunning(['sleep', mark]), [], 'background process stopped');
    assertCleanedUp(rep.namespace);
  });

  it('SIGTERM to airlock: the command is stopped, the report still printed, everything removed, exit 130', async () => {
    const child = spawn(NODE, [MAIN, 'sandbox', '--json', '--', 'sh', '-c', 'echo ready; exec sleep 300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not ready: ${stderr}`)), 30_000);
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      process.kill(child.pid!, 'SIGTERM');
      assert.equal(await exited, 130);
      const rep = resultOf(stdout) as unknown as Report;
      assert.equal(rep.interrupted, true);
      assertCleanedUp(rep.namespace);
    } finally {
      await stopChild(child);
    }
  });

  it('explains what is missing: nft, root; and a command that does not exist', async () => {
    const noNft = await sandbox(['--', 'true'], { AIRLOCK_NFT: '/nonexistent/nft' });
    assert.equal(noNft.code, 3);
    assert.match(noNft.stderr, /needs nft \(package nftables\) at \/nonexistent\/nft from \$AIRLOCK_NFT, not found/);
    assert.match(noNft.stderr, /hint: install nftables/);

    const asNobody = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', NODE, MAIN, 'sandbox', '--', 'true'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HOME: '/tmp' } });
      let err = '';
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.once('close', (code) => resolve({ code, stderr: err }));
    });
    assert.equal(asNobody.code, 4, asNobody.stderr);
    assert.match(asNobody.stderr, /must run as root/);

    const missing = await sandbox(['--', 'no-such-command-here']);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /command "no-such-command-here" not found/);
  });
});
