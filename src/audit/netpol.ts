// NetworkPolicies that lock egress down (pure, plus one function that renders the inputs first):
// in every namespace the app uses, deny all egress, then allow DNS to kube-dns, traffic to pods in
// the same namespace and in the rest of the cluster, and the CIDR blocks (and ports) given.
// Policies are additive in Kubernetes, so each allowance is its own small, readable policy.
import { stringify } from 'yaml';
import { UsageError } from '../core/errors.ts';
import { formatIp, networkOf, parseCidr } from './ip.ts';
import { loadManifests, type LoadProblem, type RenderInputOptions } from './load.ts';
import { namespacesOf } from './namespaces.ts';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface AllowCidr {
  /** Canonical CIDR (`10.20.0.0/16`, `fd00::/8`). */
  cidr: string;
  /** No port: every port and protocol. */
  port?: { protocol: Protocol; port: number; endPort?: number };
}

export interface NetworkPolicy {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: { podSelector: Record<string, never>; policyTypes: ['Egress']; egress?: unknown[] };
}

/** Namespaces where a default-deny would cut the cluster's own DNS and control plane. */
export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'];

const LABELS = { 'app.kubernetes.io/managed-by': 'airlock' };

function bad(text: string, why: string): UsageError {
  return new UsageError(`allowed CIDR ${JSON.stringify(text)}: ${why}`, {
    code: 'CIDR_INVALID',
    hint: 'write CIDR[:PORT[-END]][/tcp|/udp|/sctp], e.g. 10.20.0.0/16, 10.20.0.0/16:5432, 10.0.0.10/32:8000-8100, [fd00::1]:443, fd00::/8:443',
  });
}

/** `10.0.0.0/8`, `10.0.0.0/8:5432`, `10.0.0.10:443/udp`, `[fd00::1]:443`, `fd00::/8:8000-8100`. */
export function parseAllowCidr(text: string): AllowCidr {
  const t = text.trim();
  let addr: string;
  let rest = '';
  const bracket = /^\[([^\]]+)\](\/[0-9]{1,3})?(.*)$/.exec(t);
  if (bracket) {
    addr = `${bracket[1]!}${bracket[2] ?? ''}`;
    rest = bracket[3]!;
  } else if (t.includes('/') && /^\/[0-9]{1,3}/.test(t.slice(t.indexOf('/')))) {
    const m = /^([^/]+\/[0-9]{1,3})(.*)$/.exec(t)!;
    addr = m[1]!;
    rest = m[2]!;
  } else if ((t.match(/:/g) ?? []).length === 1) {
    // IPv4 with a port and no prefix length
    addr = t.slice(0, t.indexOf(':'));
    rest = t.slice(t.indexOf(':'));
  } else {
    // IPv4 alone, or IPv6 alone (a port on a bare IPv6 address needs brackets)
    const proto = /\/(tcp|udp|sctp)$/i.exec(t);
    addr = proto ? t.slice(0, -proto[0].length) : t;
    rest = proto ? proto[0] : '';
  }
  const cidr = parseCidr(addr);
  if (!cidr) throw bad(text, `${addr} is not an IP address or CIDR block`);
  const net = networkOf(cidr);
  const canonical = `${formatIp(net)}/${cidr.prefix}`;
  if (formatIp(net) !== formatIp(cidr.address)) throw bad(text, `${addr} has host bits set; the block is ${canonical}`);
  if (rest === '') return { cidr: canonical };
  const m = /^(?::([0-9]{1,5})(?:-([0-9]{1,5}))?)?(?:\/(tcp|udp|sctp))?$/i.exec(rest);
  if (!m || (m[1] === undefined && m[3] === undefined)) throw bad(text, `"${rest}" is not :PORT, :PORT-END or /PROTOCOL`);
  const protocol = (m[3]?.toUpperCase() ?? 'TCP') as Protocol;
  if (m[1] === undefined) throw bad(text, 'a protocol needs a port: CIDR:PORT/udp');
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw bad(text, `port ${port} is outside 1-65535`);
  if (m[2] !== undefined) {
    const end = Number(m[2]);
    if (end < port || end > 65535) throw bad(text, `port range ${port}-${end} is not ascending within 1-65535`);
    return { cidr: canonical, port: { protocol, port, endPort: end } };
  }
  return { cidr: canonical, port: { protocol, port } };
}

function policy(namespace: string, name: string, egress: unknown[] | undefined): NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace, labels: { ...LABELS } },
    spec: { podSelector: {}, policyTypes: ['Egress'], ...(egress ? { egress } : {}) },
  };
}

/** The policies for each namespace, in a stable order. */
export function networkPolicies(namespaces: Iterable<string>, allow: readonly AllowCidr[]): NetworkPolicy[] {
  const out: NetworkPolicy[] = [];
  for (const ns of [...new Set(namespaces)].sort()) {
    out.push(policy(ns, 'airlock-default-deny-egress', undefined));
    out.push(
      policy(ns, 'airlock-allow-dns', [
        {
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ]),
    );
    out.push(policy(ns, 'airlock-allow-same-namespace', [{ to: [{ podSelector: {} }] }]));
    out.push(policy(ns, 'airlock-allow-cluster', [{ to: [{ namespaceSelector: {} }] }]));
    if (allow.length > 0) {
      out.push(
        policy(
          ns,
          'airlock-allow-cidrs',
          allow.map((a) => ({
            to: [{ ipBlock: { cidr: a.cidr } }],
            ...(a.port ? { ports: [{ protocol: a.port.protocol, port: a.port.port, ...(a.port.endPort !== undefined ? { endPort: a.port.endPort } : {}) }] } : {}),
          })),
        ),
      );
    }
  }
  return out;
}

const HEADER = `# NetworkPolicies from \`airlock netpol\`: in each namespace the app uses, egress is denied by
# default, then allowed to kube-dns (UDP+TCP 53), to pods in the same namespace, to pods in every
# other namespace, and to the CIDR blocks given with --allow-cidr. Apply with kubectl apply -f.
# Pods that call the Kubernetes API server or node-local DNS (169.254.20.10) need those allowed
# too: --allow-cidr APISERVER_IP/32:6443 (or :443), --allow-cidr 169.254.20.10/32:53/udp.
`;

export function policiesYaml(policies: readonly NetworkPolicy[]): string {
  return HEADER + policies.map((p) => `---\n${stringify(p, { lineWidth: 0 })}`).join('');
}

export interface NetpolResult {
  namespaces: string[];
  /** System namespaces the app uses that were left out. */
  skipped: string[];
  policies: NetworkPolicy[];
  yaml: string;
  problems: LoadProblem[];
  warnings: string[];
}

/** Render or read the inputs and write the policies for the namespaces they use. */
export async function netpolForInputs(o: RenderInputOptions & { allowCidrs?: string[] }): Promise<NetpolResult> {
  const allow = (o.allowCidrs ?? []).map(parseAllowCidr);
  const loaded = await loadManifests(o, 'netpol');
  const used = namespacesOf(loaded.manifests, o.namespace ?? 'default');
  const skipped = [...used].filter((n) => SYSTEM_NAMESPACES.includes(n)).sort();
  const namespaces = [...used].filter((n) => !SYSTEM_NAMESPACES.includes(n)).sort();
  const policies = networkPolicies(namespaces, allow);
  const warnings = [...loaded.warnings];
  for (const s of skipped) warnings.push(`the app uses namespace ${s}: no policy written there, a default-deny would cut DNS and the control plane for the whole cluster`);
  return { namespaces, skipped, policies, yaml: policiesYaml(policies), problems: loaded.problems, warnings };
}
