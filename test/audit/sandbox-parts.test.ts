// The sandbox's pure parts: DNS messages, what the sink answers, reading nftables' record,
// --allow, the command line, and the message when the machine lacks what the sandbox needs.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseAllow } from '../../src/audit/sandbox/allow.ts';
import { HELPER_CAPABILITIES, KEPT_CAPABILITIES, setprivArgs } from '../../src/audit/sandbox/confine.ts';
import { buildQuery, buildResponse, parseQuery, typeName } from '../../src/audit/sandbox/dns-wire.ts';
import { parseAttempts, rulesetText } from '../../src/audit/sandbox/nft.ts';
import { checkPrerequisites } from '../../src/audit/sandbox/prerequisites.ts';
import { allowAddress, SinkAnswers, sinkAddress } from '../../src/audit/sandbox/sink-answers.ts';
import { preprocessSandboxArgs } from '../../src/cli/commands/sandbox.ts';
import { isAirlockError } from '../../src/core/errors.ts';

describe('DNS wire format', () => {
  it('reads the question of a query and answers it with an A record, NODATA or NXDOMAIN', () => {
    const q = parseQuery(buildQuery(0xbeef, 'Phone-Home.Example.COM', 1))!;
    assert.deepEqual({ id: q.id, name: q.name, qtype: q.qtype, qclass: q.qclass, rd: q.rd }, { id: 0xbeef, name: 'phone-home.example.com', qtype: 1, qclass: 1, rd: true });
    const a = Buffer.from(buildResponse(q, { a: '198.18.0.7' }));
    assert.equal(a.readUInt16BE(0), 0xbeef);
    assert.equal(a.readUInt16BE(2) & 0x800f, 0x8000, 'a response, rcode 0');
    assert.equal(a.readUInt16BE(6), 1, 'one answer');
    assert.deepEqual([...a.subarray(a.length - 4)], [198, 18, 0, 7]);
    const nx = Buffer.from(buildResponse(q, 'nxdomain'));
    assert.equal(nx.readUInt16BE(2) & 0x000f, 3);
    assert.equal(nx.readUInt16BE(6), 0);
    const aaaa = parseQuery(buildQuery(1, 'x.example', 28))!;
    const nodata = Buffer.from(buildResponse(aaaa, { a: '198.18.0.1' }));
    assert.equal(nodata.readUInt16BE(2) & 0x000f, 0);
    assert.equal(nodata.readUInt16BE(6), 0, 'no A record for an AAAA question');
    assert.equal(typeName(28), 'AAAA');
    assert.equal(typeName(999), 'TYPE999');
  });

  it('never throws on garbage (property), and refuses responses and truncated messages', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => void parseQuery(bytes)), { numRuns: 1000 });
    const q = Buffer.from(buildQuery(1, 'a.example', 1));
    assert.equal(parseQuery(q.subarray(0, q.length - 2)), undefined);
    q[2]! |= 0x80;
    assert.equal(parseQuery(q), undefined);
  });
});

describe('sink answers', () => {
  it('gives each name an address of its own, the same one every time; allowed names their allowed address', () => {
    const sink = new SinkAnswers('sink', new Map([['registry.corp.example', allowAddress(0)]]));
    const ask = (name: string, qtype = 1) => sink.decide(parseQuery(buildQuery(1, name, qtype))!);
    assert.deepEqual(ask('a.example'), { answer: { a: '198.18.0.1' }, address: '198.18.0.1', allowed: false });
    assert.deepEqual(ask('b.example'), { answer: { a: '198.18.0.2' }, address: '198.18.0.2', allowed: false });
    assert.equal(ask('a.example').address, '198.18.0.1');
    assert.deepEqual(ask('a.example', 28), { answer: 'nodata', allowed: false });
    assert.deepEqual(ask('registry.corp.example'), { answer: { a: '198.19.0.1' }, address: '198.19.0.1', allowed: true });
    assert.deepEqual(new SinkAnswers('nxdomain', new Map()).decide(parseQuery(buildQuery(1, 'c.example', 1))!), { answer: 'nxdomain', allowed: false });
    assert.equal(sinkAddress(256), '198.18.1.0');
    assert.equal(sinkAddress(65_534), '198.18.255.254');
  });
});

describe('nftables record', () => {
  it('reads attempts from `nft -j list table`, with and without counters', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'inet', name: 'airlock_sandbox' } },
        { set: { name: 'tcpudp4', elem: [{ elem: { val: { concat: ['198.18.0.2', 'tcp', 443] }, counter: { packets: 3, bytes: 180 } } }, { concat: ['169.254.0.2', 'udp', 123] }] } },
        { set: { name: 'tcpudp6', elem: [{ elem: { val: { concat: ['fd00:a1:a1::2', 'tcp', 80] }, counter: { packets: 1, bytes: 80 } } }] } },
        { set: { name: 'ping4', elem: [{ elem: { val: '169.254.0.2', counter: { packets: 2, bytes: 168 } } }] } },
        { set: { name: 'ping6' } },
      ],
    });
    assert.deepEqual(parseAttempts(json), [
      { proto: 'icmp', dest: '169.254.0.2', packets: 2 },
      { proto: 'udp', dest: '169.254.0.2', port: 123, packets: 1 },
      { proto: 'tcp', dest: '198.18.0.2', port: 443, packets: 3 },
      { proto: 'tcp', dest: 'fd00:a1:a1::2', port: 80, packets: 1 },
    ]);
  });

  it('loopback: a refused port is an attempt, unless something in the sandbox answered on it (on 127.0.0.1 or ::1)', () => {
    const json = JSON.stringify({
      nftables: [
        { set: { name: 'refused4', elem: [
          { elem: { val: { concat: ['127.0.0.1', 'tcp', 5432] }, counter: { packets: 2, bytes: 80 } } },
          { elem: { val: { concat: ['127.0.0.1', 'tcp', 41000] }, counter: { packets: 5, bytes: 200 } } },
          { elem: { val: { concat: ['127.0.0.53', 'udp', 53] }, counter: { packets: 1, bytes: 60 } } },
        ] } },
        { set: { name: 'refused6', elem: [{ elem: { val: { concat: ['::1', 'tcp', 41001] }, counter: { packets: 1, bytes: 60 } } }] } },
        // The sandbox's own servers: a registry that came up on 41000 after its client had knocked,
        // one on 127.0.0.1:41001 whose client tried ::1 first, and the DNS sink on 127.0.0.1:53.
        { set: { name: 'served4', elem: [{ concat: ['127.0.0.1', 'tcp', 41000] }, { concat: ['127.0.0.1', 'tcp', 41001] }, { concat: ['127.0.0.1', 'udp', 53] }] } },
        { set: { name: 'served6' } },
      ],
    });
    assert.deepEqual(parseAttempts(json), [
      { proto: 'tcp', dest: '127.0.0.1', port: 5432, packets: 2 },
      { proto: 'udp', dest: '127.0.0.53', port: 53, packets: 1 },
    ]);
  });

  it('records refusals on loopback before letting loopback through, and only those from the sandbox itself', () => {
    const text = rulesetText([]);
    assert.ok(text.indexOf('oifname "lo" jump loopback') < text.indexOf('add @tcpudp4'));
    const loopback = /chain loopback \{([\s\S]*?)\n {2}\}/.exec(text)![1]!;
    // The `out` chain's own resets come back over lo from the refused address: not a second record.
    assert.ok(loopback.indexOf('fib saddr type != local accept') < loopback.indexOf('add @refused4'));
    assert.match(loopback, /tcp sequence 0 .*add @refused4 \{ ip saddr \. meta l4proto \. th sport \}/);
    assert.match(loopback, /port-unreachable add @refused6 \{ ct original ip6 daddr \. ct original protocol \. ct original proto-dst \}/);
    assert.match(loopback, /accept\s*$/);
  });

  it('redirects allowed endpoints before anything is recorded or refused', () => {
    const text = rulesetText([{ address: '127.0.0.1', port: 5000, to: 40001 }, { address: '::1', port: 5000, to: 40001 }]);
    assert.match(text, /ip daddr 127\.0\.0\.1 tcp dport 5000 redirect to :40001/);
    assert.match(text, /ip6 daddr ::1 tcp dport 5000 redirect to :40001/);
    assert.ok(text.indexOf('ct status dnat accept') < text.indexOf('add @tcpudp4'));
    assert.ok(text.indexOf('add @tcpudp4') < text.indexOf('reject with tcp reset'));
  });
});

describe('what the command keeps', () => {
  it('root\'s file and identity powers and low ports; nothing that reaches the network stack, namespaces or kernel', () => {
    for (const c of ['chown', 'dac_override', 'fowner', 'setuid', 'setgid', 'kill', 'net_bind_service']) assert.ok(KEPT_CAPABILITIES.includes(c), c);
    for (const c of ['net_admin', 'net_raw', 'sys_admin', 'sys_ptrace', 'sys_module', 'sys_rawio', 'bpf', 'mknod', 'setpcap', 'setfcap', 'dac_read_search']) {
      assert.ok(!KEPT_CAPABILITIES.includes(c), c);
    }
    assert.deepEqual(HELPER_CAPABILITIES, ['net_bind_service']);
  });

  it('setpriv drops the rest from every set, the bounding set included, and sets no_new_privs', () => {
    assert.deepEqual(setprivArgs(['chown', 'net_bind_service']), ['--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all,+chown,+net_bind_service', '--no-new-privs']);
  });
});

describe('sandbox command line', () => {
  it('--allow HOST:PORT in its forms', () => {
    assert.deepEqual(parseAllow('127.0.0.1:5000'), { text: '127.0.0.1:5000', host: '127.0.0.1', port: 5000, kind: 'ipv4' });
    assert.deepEqual(parseAllow('[fd00::1]:443'), { text: '[fd00::1]:443', host: 'fd00::1', port: 443, kind: 'ipv6' });
    assert.equal(parseAllow('localhost:8080').kind, 'localhost');
    assert.equal(parseAllow('Registry.Corp.Example:443').host, 'registry.corp.example');
    for (const bad of ['127.0.0.1', 'host:0', 'host:70000', 'fd00::1:443', 'a b:1', ':80']) {
      assert.throws(() => parseAllow(bad), (e: unknown) => isAirlockError(e) && e.exitCode === 2 && /--allow/.test(e.message), bad);
    }
  });

  it('everything from the first word that is not our option is the command, its own flags included', () => {
    assert.deepEqual(preprocessSandboxArgs(['--allow', '127.0.0.1:1', 'curl', '-v', '--json', 'x']), ['--allow', '127.0.0.1:1', '--', 'curl', '-v', '--json', 'x']);
    assert.deepEqual(preprocessSandboxArgs(['--json', '--', 'node', '-e', '1']), ['--json', '--', 'node', '-e', '1']);
    assert.deepEqual(preprocessSandboxArgs(['--timeout', '5', '--json']), ['--timeout', '5', '--json']);
  });
});

describe('prerequisites', () => {
  it('names what is missing and how to get it: ip, nft, root, Linux', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'airlock-empty-path-'));
    try {
      const env = { PATH: empty, AIRLOCK_IP: join(empty, 'ip'), AIRLOCK_NFT: join(empty, 'nft') };
      await assert.rejects(checkPrerequisites({ platform: 'linux', uid: 0, env }), (e: unknown) => {
        assert.ok(isAirlockError(e));
        assert.equal(e.exitCode, 3);
        assert.match(e.message, /needs ip \(package iproute2\).* and nft \(package nftables\)/);
        assert.match(e.hint ?? '', /apt-get install iproute2 nftables/);
        return true;
      });
      await assert.rejects(checkPrerequisites({ platform: 'linux', uid: 1000 }), (e: unknown) => isAirlockError(e) && e.exitCode === 4 && /must run as root/.test(e.message) && /sudo/.test(e.hint ?? ''));
      await assert.rejects(checkPrerequisites({ platform: 'darwin', uid: 0 }), (e: unknown) => isAirlockError(e) && /needs Linux network namespaces; this is darwin/.test(e.message));
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
