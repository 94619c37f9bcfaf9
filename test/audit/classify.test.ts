// Internal or external: cluster-local names, private ranges, the user's domains and CIDRs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyHost, makeClassifyContext } from '../../src/audit/classify.ts';
import { cidrContains, formatIp, parseCidr, parseIp } from '../../src/audit/ip.ts';
import { isAirlockError } from '../../src/core/errors.ts';

const ctx = makeClassifyContext({ internalDomains: ['corp.example', '.lab.example.net'], internalCidrs: ['203.0.113.0/24', '2001:db8:1::/48'], namespaces: ['shop', 'search'] });
const internal = (h: string): boolean => classifyHost(h, ctx).internal;

describe('classifyHost', () => {
  const inside = [
    'redis', 'api-gateway', 'postgres.shop', 'search.search', 'kubernetes.default', 'api.shop.svc', 'api.shop.svc.cluster.local',
    'kafka-0.kafka.shop.svc.cluster.local', '10-0-0-1.shop.pod.cluster.local', 'localhost', 'app.localhost', 'printer.local',
    'cache.internal', 'nas.home.arpa', 'corp.example', 'git.corp.example', 'GIT.CORP.EXAMPLE.', 'ci.lab.example.net',
    '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.254', '192.168.1.10', '127.0.0.1', '127.1.2.3', '169.254.169.254',
    '100.64.0.1', '0.0.0.0', '::1', '[::1]', 'fd00::5', 'fc00:1::2', 'fe80::1%eth0', '::ffff:10.1.2.3', '203.0.113.77',
    '2001:db8:1:ffff::1', 'otel-collector.monitoring', 'db.prod.lan', 'vault.corp',
  ];
  for (const h of inside) it(`${h} is internal`, () => assert.equal(internal(h), true, JSON.stringify(classifyHost(h, ctx))));

  const outside = [
    'example.com', 'api.openai.com', 'corp.example.com', 'notcorp.example', 'evil-corp.example.org', 'svc.example.com',
    'cluster.local.example.com', 'postgres.shop-other.io', 'telemetry.example', 'phone-home.test', 'static.scarf.sh', 'x.ai', 'lab.example.net.attacker.io', '8.8.8.8', '172.32.0.1', '172.15.255.255',
    '192.169.0.1', '11.0.0.1', '203.0.114.1', '2001:db8:2::1', '2606:4700::1111', '::ffff:8.8.8.8',
  ];
  for (const h of outside) it(`${h} is external`, () => assert.equal(internal(h), false));

  it('says why a host is internal', () => {
    assert.deepEqual(classifyHost('10.1.2.3', ctx), { internal: true, reason: 'private address (10.0.0.0/8)' });
    assert.deepEqual(classifyHost('git.corp.example', ctx), { internal: true, reason: 'internal domain corp.example' });
    assert.deepEqual(classifyHost('203.0.113.9', ctx), { internal: true, reason: 'internal CIDR 203.0.113.0/24' });
  });

  it('rejects bad internal CIDRs and domains with a usage error naming them', () => {
    for (const bad of [{ internalCidrs: ['10.0.0.0/33'] }, { internalCidrs: ['corp.example'] }, { internalDomains: ['http://corp.example'] }, { internalDomains: ['a..b'] }]) {
      assert.throws(
        () => makeClassifyContext(bad),
        (e: unknown) => isAirlockError(e) && e.exitCode === 2 && /^internal (CIDR|domain) "/.test(e.message),
      );
    }
  });
});

describe('ip', () => {
  it('parses and prints IPv4 and IPv6, compressing zeros', () => {
    assert.equal(formatIp(parseIp('2001:0db8:0000:0000:0000:0000:0000:0001')!), '2001:db8::1');
    assert.equal(formatIp(parseIp('::')!), '::');
    assert.equal(formatIp(parseIp('10.0.0.1')!), '10.0.0.1');
    for (const bad of ['10.0.0.256', '1.2.3', '1:2:3:4:5:6:7:8:9', '::1::', 'g::1', '01.2.3.4']) assert.equal(parseIp(bad), undefined, bad);
  });
  it('tests containment at every prefix length', () => {
    assert.equal(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('8.8.8.8')!), true);
    assert.equal(cidrContains(parseCidr('10.1.2.3/32')!, parseIp('10.1.2.3')!), true);
    assert.equal(cidrContains(parseCidr('10.1.2.3/32')!, parseIp('10.1.2.4')!), false);
    assert.equal(cidrContains(parseCidr('fd00::/8')!, parseIp('fdff::1')!), true);
    assert.equal(cidrContains(parseCidr('fd00::/8')!, parseIp('10.0.0.1')!), false);
  });
});
