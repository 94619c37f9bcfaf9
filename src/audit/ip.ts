// IP addresses and CIDR blocks as bytes (pure): enough to say whether an address lies in a range.

export interface IpAddress {
  version: 4 | 6;
  bytes: Uint8Array;
}

export interface Cidr {
  address: IpAddress;
  prefix: number;
  /** As given, for messages and NetworkPolicy ipBlocks. */
  text: string;
}

const V4 = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;

export function parseIpv4(text: string): IpAddress | undefined {
  if (!V4.test(text)) return undefined;
  return { version: 4, bytes: Uint8Array.from(text.split('.').map(Number)) };
}

export function parseIpv6(input: string): IpAddress | undefined {
  let text = input.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  if (!/^[0-9a-f:.]{2,45}$/.test(text) || !text.includes(':')) return undefined;
  // An embedded IPv4 tail (::ffff:10.0.0.1) becomes two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIpv4(tail);
    if (!v4) return undefined;
    const b = v4.bytes;
    text = `${text.slice(0, lastColon + 1)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = all[i]!;
    if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
    const n = parseInt(g, 16);
    bytes[2 * i] = n >> 8;
    bytes[2 * i + 1] = n & 0xff;
  }
  return { version: 6, bytes };
}

export function parseIp(text: string): IpAddress | undefined {
  return parseIpv4(text) ?? parseIpv6(text.replace(/^\[|\]$/g, ''));
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128). Undefined when it is not one. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const address = parseIp(addrText);
  if (!address) return undefined;
  const max = address.version === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) return undefined;
    prefix = Number(p);
  }
  return { address, prefix, text };
}

/** The address with the host bits cleared: `10.1.2.3/8` → `10.0.0.0`. */
export function networkOf(c: Cidr): IpAddress {
  const bytes = Uint8Array.from(c.address.bytes);
  for (let bit = c.prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { version: c.address.version, bytes };
}

export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) return [...ip.bytes].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i]! << 8) | ip.bytes[i + 1]!).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 prints them.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is treated as the IPv4 address it carries. */
function unmapped(ip: IpAddress): IpAddress {
  if (ip.version === 6 && ip.bytes.slice(0, 10).every((b) => b === 0) && ip.bytes[10] === 0xff && ip.bytes[11] === 0xff) {
    return { version: 4, bytes: ip.bytes.slice(12) };
  }
  return ip;
}

export function cidrContains(c: Cidr, ipIn: IpAddress): boolean {
  const ip = unmapped(ipIn);
  const net = unmapped(c.address);
  if (ip.version !== net.version) return false;
  const prefix = net.version === 4 && c.address.version === 6 ? c.prefix - 96 : c.prefix;
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((ip.bytes[bit >> 3]! & mask) !== (net.bytes[bit >> 3]! & mask)) return false;
  }
  return true;
}
