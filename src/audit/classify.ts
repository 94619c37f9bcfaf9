// Internal or external? (pure). Internal: cluster-local names (bare service names, `svc.ns`,
// `*.svc`, `*.cluster.local`), names that never resolve publicly (`localhost`, `*.local`,
// `*.internal`, `*.home.arpa`, any name under a last label that is no public top-level domain),
// the user's internal domains and CIDRs, and private, loopback, link-local and other
// non-routable address ranges. Everything else is external.
import { cidrContains, parseCidr, parseIp, type Cidr } from './ip.ts';
import { UsageError } from '../core/errors.ts';
import { isPublicTld } from './tlds.ts';

export interface ClassifyContext {
  /** `corp.example`: the domain and every name below it. */
  internalDomains: string[];
  internalCidrs: Cidr[];
  /** Namespaces the app uses: `svc.ns` two-label names are cluster-local. */
  namespaces: Set<string>;
}

export type Classification = { internal: true; reason: string } | { internal: false };

const PRIVATE_RANGES: [string, string][] = [
  ['0.0.0.0/8', 'unspecified address'],
  ['10.0.0.0/8', 'private address'],
  ['100.64.0.0/10', 'shared (CGNAT) address'],
  ['127.0.0.0/8', 'loopback address'],
  ['169.254.0.0/16', 'link-local address'],
  ['172.16.0.0/12', 'private address'],
  ['192.168.0.0/16', 'private address'],
  ['198.18.0.0/15', 'benchmarking address'],
  ['224.0.0.0/4', 'multicast address'],
  ['240.0.0.0/4', 'reserved address'],
  ['::/128', 'unspecified address'],
  ['::1/128', 'loopback address'],
  ['fc00::/7', 'unique local address'],
  ['fe80::/10', 'link-local address'],
  ['ff00::/8', 'multicast address'],
];
const PRIVATE = PRIVATE_RANGES.map(([c, why]) => ({ cidr: parseCidr(c)!, why }));

/** Special-use and private-use names: they never resolve on the public internet. */
const LOCAL_SUFFIXES = ['localhost', 'local', 'internal', 'home.arpa'];
/** Kubernetes cluster DNS: `svc`, `svc.cluster.local`, `pod.cluster.local`, and the cluster domain. */
const CLUSTER_SUFFIXES = ['svc', 'cluster.local'];
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export function normaliseDomain(d: string): string {
  return d.trim().toLowerCase().replace(/^\*?\.+/, '').replace(/\.+$/, '');
}

function under(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

export function makeClassifyContext(o: { internalDomains?: string[]; internalCidrs?: string[]; namespaces?: Iterable<string> } = {}): ClassifyContext {
  const internalCidrs: Cidr[] = [];
  for (const c of o.internalCidrs ?? []) {
    const parsed = parseCidr(c.trim());
    if (!parsed) throw new UsageError(`internal CIDR ${JSON.stringify(c)} is not a CIDR block`, { code: 'CIDR_INVALID', hint: 'e.g. 10.20.0.0/16 or fd00:1::/64' });
    internalCidrs.push(parsed);
  }
  const internalDomains: string[] = [];
  for (const d of o.internalDomains ?? []) {
    const n = normaliseDomain(d);
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(n)) {
      throw new UsageError(`internal domain ${JSON.stringify(d)} is not a domain name`, { code: 'DOMAIN_INVALID', hint: 'e.g. corp.example (covers every name below it)' });
    }
    internalDomains.push(n);
  }
  return { internalDomains, internalCidrs, namespaces: new Set([...SYSTEM_NAMESPACES, ...(o.namespaces ?? [])]) };
}

/** Classify a host (a name or an IP address, without port; IPv6 with or without brackets). */
export function classifyHost(hostIn: string, ctx: ClassifyContext): Classification {
  const host = hostIn.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const ip = parseIp(host);
  if (ip) {
    for (const c of ctx.internalCidrs) if (cidrContains(c, ip)) return { internal: true, reason: `internal CIDR ${c.text}` };
    for (const p of PRIVATE) if (cidrContains(p.cidr, ip)) return { internal: true, reason: `${p.why} (${p.cidr.text})` };
    return { internal: false };
  }
  for (const d of ctx.internalDomains) if (under(host, d)) return { internal: true, reason: `internal domain ${d}` };
  if (host === 'localhost' || host.endsWith('.localhost')) return { internal: true, reason: 'loopback name (localhost)' };
  if (!host.includes('.')) return { internal: true, reason: 'cluster-local name (bare service name)' };
  for (const s of CLUSTER_SUFFIXES) if (under(host, s)) return { internal: true, reason: 'cluster-local name' };
  for (const s of LOCAL_SUFFIXES) if (under(host, s)) return { internal: true, reason: `local-only name (.${s})` };
  const labels = host.split('.');
  // `svc.namespace` (two labels) resolves through the pod's DNS search path.
  if (labels.length === 2 && ctx.namespaces.has(labels[1]!)) return { internal: true, reason: `cluster-local name (service.namespace, namespace ${labels[1]})` };
  const tld = labels[labels.length - 1]!;
  if (!isPublicTld(tld)) {
    return { internal: true, reason: labels.length === 2 ? `cluster-local name (service.namespace: .${tld} is no public top-level domain)` : `private name (.${tld} is no public top-level domain)` };
  }
  return { internal: false };
}
