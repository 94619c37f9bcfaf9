// The sandbox namespace's nftables table (pure): every TCP/UDP packet leaving by anything but
// loopback is recorded in a set (destination . protocol . port, with a packet counter) and refused
// at once (TCP reset, ICMP admin-prohibited for the rest), so the program fails fast and nothing
// reaches even the sink link. Allowed endpoints are redirected to the helper's forwarders first.
//
// Loopback stays open: a server and its client may both run in the sandbox. But a connection to a
// loopback port nothing in the sandbox answers on is an attempt too (outside, the machine's own
// services listen there: a proxy, a database, a container engine): the kernel's refusal (a reset
// with sequence 0 answering a SYN, an ICMP port-unreachable for UDP) is recorded with the address
// and port refused. A port something in the sandbox did answer on during the run (a SYN-ACK, a UDP
// reply) is its own service, and a refusal there is a client that came early or tried ::1 before
// 127.0.0.1: parseAttempts leaves those out. Only what comes from the sandbox's own addresses
// counts: the resets and ICMP errors with which the `out` chain refuses an attempt to leave come
// back over loopback too, from the address that was refused, and are recorded there already.
import { parseIpv4, parseIpv6 } from '../ip.ts';

export const TABLE = 'airlock_sandbox';

export interface Redirect {
  /** The destination the program connects to (IPv4 or IPv6). */
  address: string;
  port: number;
  /** The forwarder's port on loopback inside the namespace. */
  to: number;
}

export function rulesetText(redirects: readonly Redirect[]): string {
  const nat = redirects.map((r) => {
    const family = parseIpv4(r.address) ? 'ip' : 'ip6';
    return `    ${family} daddr ${r.address} tcp dport ${r.port} redirect to :${r.to}`;
  });
  return `table inet ${TABLE} {
  set tcpudp4 { type ipv4_addr . inet_proto . inet_service; flags dynamic; size 65535; counter; }
  set tcpudp6 { type ipv6_addr . inet_proto . inet_service; flags dynamic; size 65535; counter; }
  set ping4 { type ipv4_addr; flags dynamic; size 65535; counter; }
  set ping6 { type ipv6_addr; flags dynamic; size 65535; counter; }
  set refused4 { type ipv4_addr . inet_proto . inet_service; flags dynamic; size 65535; counter; }
  set refused6 { type ipv6_addr . inet_proto . inet_service; flags dynamic; size 65535; counter; }
  set served4 { type ipv4_addr . inet_proto . inet_service; flags dynamic; size 65535; }
  set served6 { type ipv6_addr . inet_proto . inet_service; flags dynamic; size 65535; }
  chain loopback {
    fib saddr type != local accept
    tcp flags & (fin | syn | rst | ack) == rst | ack tcp sequence 0 meta nfproto ipv4 add @refused4 { ip saddr . meta l4proto . th sport }
    tcp flags & (fin | syn | rst | ack) == rst | ack tcp sequence 0 meta nfproto ipv6 add @refused6 { ip6 saddr . meta l4proto . th sport }
    icmp type destination-unreachable icmp code port-unreachable add @refused4 { ct original ip daddr . ct original protocol . ct original proto-dst }
    icmpv6 type destination-unreachable icmpv6 code port-unreachable add @refused6 { ct original ip6 daddr . ct original protocol . ct original proto-dst }
    tcp flags & (syn | ack) == syn | ack meta nfproto ipv4 add @served4 { ip saddr . meta l4proto . th sport }
    tcp flags & (syn | ack) == syn | ack meta nfproto ipv6 add @served6 { ip6 saddr . meta l4proto . th sport }
    meta l4proto udp ct direction reply meta nfproto ipv4 add @served4 { ip saddr . meta l4proto . th sport }
    meta l4proto udp ct direction reply meta nfproto ipv6 add @served6 { ip6 saddr . meta l4proto . th sport }
    accept
  }${nat.length === 0 ? '' : `
  chain nat_out {
    type nat hook output priority -100; policy accept;
${nat.join('\n')}
  }`}
  chain out {
    type filter hook output priority 0; policy accept;
    oifname "lo" jump loopback
    ct status dnat accept
    meta nfproto ipv4 meta l4proto { tcp, udp } add @tcpudp4 { ip daddr . meta l4proto . th dport }
    meta nfproto ipv6 meta l4proto { tcp, udp } add @tcpudp6 { ip6 daddr . meta l4proto . th dport }
    icmp type echo-request add @ping4 { ip daddr } reject with icmp type admin-prohibited
    icmpv6 type echo-request add @ping6 { ip6 daddr } reject with icmpv6 type admin-prohibited
    meta l4proto tcp reject with tcp reset
    meta l4proto udp reject with icmpx type admin-prohibited
    drop
  }
}
`;
}

export interface Attempt {
  proto: 'tcp' | 'udp' | 'icmp';
  dest: string;
  port?: number;
  packets: number;
}

const PROTO: Record<string, 'tcp' | 'udp'> = { tcp: 'tcp', udp: 'udp', '6': 'tcp', '17': 'udp' };

interface SetElement {
  val: unknown;
  packets: number;
}

/** address . protocol . port, or undefined for anything else. */
function endpoint(val: unknown): { dest: string; proto: 'tcp' | 'udp'; port: number } | undefined {
  const concat = (val as { concat?: unknown[] } | undefined)?.concat;
  if (!Array.isArray(concat) || concat.length !== 3) return undefined;
  const [dest, proto, port] = concat;
  const p = PROTO[String(proto)];
  if (typeof dest !== 'string' || p === undefined || typeof port !== 'number') return undefined;
  if (!parseIpv4(dest) && !parseIpv6(dest)) return undefined;
  return { dest, proto: p, port };
}

// 127.0.0.1 and ::1 are one host to a client that tries both for "localhost".
function loopbackHost(address: string): string {
  return address === '::1' ? '127.0.0.1' : address;
}

/** The attempts recorded in the table (`nft -j list table inet airlock_sandbox`). */
export function parseAttempts(json: string): Attempt[] {
  const doc = JSON.parse(json) as { nftables?: Record<string, unknown>[] };
  const sets = new Map<string, SetElement[]>();
  for (const item of doc.nftables ?? []) {
    const set = item.set as { name?: string; elem?: unknown[] } | undefined;
    if (!set?.name || !Array.isArray(set.elem)) continue;
    // With counters an element is {elem: {val, counter}}; without, the value itself.
    sets.set(set.name, set.elem.map((raw) => {
      const wrapped = (raw as { elem?: { val?: unknown; counter?: { packets?: number } } }).elem;
      return wrapped ? { val: wrapped.val, packets: wrapped.counter?.packets ?? 1 } : { val: raw, packets: 1 };
    }));
  }
  const out: Attempt[] = [];
  for (const name of ['ping4', 'ping6']) {
    for (const e of sets.get(name) ?? []) if (typeof e.val === 'string') out.push({ proto: 'icmp', dest: e.val, packets: e.packets });
  }
  for (const name of ['tcpudp4', 'tcpudp6']) {
    for (const e of sets.get(name) ?? []) {
      const ep = endpoint(e.val);
      if (ep) out.push({ ...ep, packets: e.packets });
    }
  }
  const served = new Set<string>();
  for (const name of ['served4', 'served6']) {
    for (const e of sets.get(name) ?? []) {
      const ep = endpoint(e.val);
      if (ep) served.add(`${loopbackHost(ep.dest)} ${ep.proto} ${ep.port}`);
    }
  }
  for (const name of ['refused4', 'refused6']) {
    for (const e of sets.get(name) ?? []) {
      const ep = endpoint(e.val);
      if (ep && !served.has(`${loopbackHost(ep.dest)} ${ep.proto} ${ep.port}`)) out.push({ ...ep, packets: e.packets });
    }
  }
  return out.sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : (a.port ?? 0) - (b.port ?? 0) || (a.proto < b.proto ? -1 : 1)));
}
