// The sandbox namespace's nftables table (pure): every TCP/UDP packet leaving by anything but
// loopback is recorded in a set (destination . protocol . port, with a packet counter) and refused
// at once (TCP reset, ICMP admin-prohibited for the rest), so the program fails fast and nothing
// reaches even the sink link. Allowed endpoints are redirected to the helper's forwarders first.
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
  set ping6 { type ipv6_addr; flags dynamic; size 65535; counter; }${nat.length === 0 ? '' : `
  chain nat_out {
    type nat hook output priority -100; policy accept;
${nat.join('\n')}
  }`}
  chain out {
    type filter hook output priority 0; policy accept;
    oifname "lo" accept
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

/** The attempts recorded in the table (`nft -j list table inet airlock_sandbox`). */
export function parseAttempts(json: string): Attempt[] {
  const doc = JSON.parse(json) as { nftables?: Record<string, unknown>[] };
  const out: Attempt[] = [];
  for (const item of doc.nftables ?? []) {
    const set = item.set as { name?: string; elem?: unknown[] } | undefined;
    if (!set || !Array.isArray(set.elem)) continue;
    for (const raw of set.elem) {
      // With counters an element is {elem: {val, counter}}; without, the value itself.
      const wrapped = (raw as { elem?: { val?: unknown; counter?: { packets?: number } } }).elem;
      const val = wrapped ? wrapped.val : raw;
      const packets = wrapped?.counter?.packets ?? 1;
      if (set.name === 'ping4' || set.name === 'ping6') {
        if (typeof val === 'string') out.push({ proto: 'icmp', dest: val, packets });
        continue;
      }
      const concat = (val as { concat?: unknown[] } | undefined)?.concat;
      if (!Array.isArray(concat) || concat.length !== 3) continue;
      const [dest, proto, port] = concat;
      const p = PROTO[String(proto)];
      if (typeof dest !== 'string' || p === undefined || typeof port !== 'number') continue;
      if (!parseIpv4(dest) && !parseIpv6(dest)) continue;
      out.push({ proto: p, dest, port, packets });
    }
  }
  return out.sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : (a.port ?? 0) - (b.port ?? 0) || (a.proto < b.proto ? -1 : 1)));
}
