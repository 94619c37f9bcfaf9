// `airlock netpol`: the YAML a user applies. No API server can run here, so the structure is
// checked by parsing it: default-deny egress per namespace, DNS to kube-dns, the namespace, the
// cluster and the --allow-cidr blocks; nothing for kube-system.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { airlock, resultOf } from '../helpers/cli.ts';
import { networkPolicies, parseAllowCidr } from '../../src/audit/netpol.ts';
import { isAirlockError } from '../../src/core/errors.ts';

const FIX = fileURLToPath(new URL('../fixtures/audit/', import.meta.url));
type Obj = Record<string, any>;

function policiesOf(yaml: string): Obj[] {
  const docs = parseAllDocuments(yaml);
  const list = Array.isArray(docs) ? docs : [docs];
  for (const d of list) assert.deepEqual(d.errors, [], 'valid YAML');
  return list.map((d) => d.toJS() as Obj).filter((o) => o !== null);
}

describe('airlock netpol', { concurrency: true }, () => {
  it('writes ready-to-apply policies: default-deny egress, DNS to kube-dns, namespace, cluster, and the CIDRs given', async () => {
    const r = await airlock(['netpol', 'external', '--allow-cidr', '10.20.0.0/16:5432', '--allow-cidr', '[fd00::1]:443', '--allow-cidr', '10.0.0.0/8:8000-8100/udp', '--allow-cidr', '192.168.7.0/24'], { cwd: FIX, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# NetworkPolicies from `airlock netpol`/);
    const policies = policiesOf(r.stdout);
    assert.deepEqual(policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`), [
      'shop/airlock-default-deny-egress',
      'shop/airlock-allow-dns',
      'shop/airlock-allow-same-namespace',
      'shop/airlock-allow-cluster',
      'shop/airlock-allow-cidrs',
    ]);
    for (const p of policies) {
      assert.equal(p.apiVersion, 'networking.k8s.io/v1');
      assert.equal(p.kind, 'NetworkPolicy');
      assert.deepEqual(p.spec.podSelector, {}, 'every pod of the namespace');
      assert.deepEqual(p.spec.policyTypes, ['Egress'], 'egress only: ingress is left alone');
      assert.equal(p.metadata.labels['app.kubernetes.io/managed-by'], 'airlock');
    }
    const [deny, dns, same, cluster, cidrs] = policies as [Obj, Obj, Obj, Obj, Obj];
    assert.equal(deny.spec.egress, undefined, 'no egress rule at all: deny');
    assert.deepEqual(dns.spec.egress, [
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
        ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
      },
    ]);
    assert.deepEqual(same.spec.egress, [{ to: [{ podSelector: {} }] }]);
    assert.deepEqual(cluster.spec.egress, [{ to: [{ namespaceSelector: {} }] }]);
    assert.deepEqual(cidrs.spec.egress, [
      { to: [{ ipBlock: { cidr: '10.20.0.0/16' } }], ports: [{ protocol: 'TCP', port: 5432 }] },
      { to: [{ ipBlock: { cidr: 'fd00::1/128' } }], ports: [{ protocol: 'TCP', port: 443 }] },
      { to: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ protocol: 'UDP', port: 8000, endPort: 8100 }] },
      { to: [{ ipBlock: { cidr: '192.168.7.0/24' } }] },
    ]);
  });

  it('covers every namespace a chart renders into; leaves kube-system out with a warning; --json and -o', async () => {
    const r = await airlock(['netpol', 'internal', 'chart', '--helm', fileURLToPath(new URL('../../.tools/bin/helm', import.meta.url)), '-n', 'monitoring', '--json'], { cwd: FIX, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stdout);
    assert.deepEqual(res.namespaces, ['monitoring', 'shop']);
    assert.equal(res.policies.length, 8, 'four per namespace without --allow-cidr');

    const dir = await mkdtemp(join(tmpdir(), 'airlock-netpol-'));
    try {
      await writeFile(join(dir, 'm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: kube-system}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n');
      const w = await airlock(['netpol', 'm.yaml', '-n', 'apps', '-o', 'policies.yaml'], { cwd: dir });
      assert.equal(w.code, 0, w.stderr);
      assert.equal(w.stdout, '');
      assert.match(w.stderr, /the app uses namespace kube-system: no policy written there/);
      assert.match(w.stderr, /wrote 4 NetworkPolicies for apps to policies\.yaml/);
      assert.deepEqual([...new Set(policiesOf(await readFile(join(dir, 'policies.yaml'), 'utf8')).map((p) => p.metadata.namespace))], ['apps']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    assert.equal(networkPolicies(['b', 'a', 'a'], []).length, 8, 'one set per namespace');
  });

  it('rejects --allow-cidr values that are not blocks, with the fix in the message', async () => {
    for (const [bad, why] of [
      ['10.20.0.1/16', /host bits set; the block is 10\.20\.0\.0\/16/],
      ['10.0.0.0/33', /not an IP address or CIDR block/],
      ['example.com', /not an IP address or CIDR block/],
      ['10.0.0.0/8:70000', /outside 1-65535/],
      ['10.0.0.0/8:9000-8000', /not ascending/],
      ['10.0.0.0/8/udp', /a protocol needs a port/],
      ['10.0.0.0/8:http', /is not :PORT/],
    ] as const) {
      assert.throws(() => parseAllowCidr(bad), (e: unknown) => isAirlockError(e) && e.exitCode === 2 && why.test(e.message), bad);
    }
    const r = await airlock(['netpol', 'external', '--allow-cidr', '10.20.0.1/16'], { cwd: FIX });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--allow-cidr "10\.20\.0\.1\/16"/);
  });

  it('parses the forms of --allow-cidr', () => {
    assert.deepEqual(parseAllowCidr('10.0.0.5'), { cidr: '10.0.0.5/32' });
    assert.deepEqual(parseAllowCidr('10.0.0.5:443'), { cidr: '10.0.0.5/32', port: { protocol: 'TCP', port: 443 } });
    assert.deepEqual(parseAllowCidr('10.0.0.5:53/udp'), { cidr: '10.0.0.5/32', port: { protocol: 'UDP', port: 53 } });
    assert.deepEqual(parseAllowCidr('fd00::/8:443'), { cidr: 'fd00::/8', port: { protocol: 'TCP', port: 443 } });
    assert.deepEqual(parseAllowCidr('2001:db8::/32'), { cidr: '2001:db8::/32' });
  });
});
