// Which forward proxy a connection goes through, read from the environment the way curl and Go
// read it: HTTPS_PROXY for https:// targets, HTTP_PROXY for http:// ones, ALL_PROXY for either when
// its own is unset (the lower-case spelling wins over the upper-case one, as in curl; an empty value
// counts as unset), and NO_PROXY naming the hosts reached directly. Loopback is not excepted
// implicitly: a proxy that must not see 127.0.0.1 is told so in NO_PROXY, like any other host.
// Pure: no I/O; the environment is passed in.
import { UsageError } from '../core/errors.ts';
import { redactUrl } from '../core/redact.ts';

/** One of the *_PROXY variables, as found. */
export interface ProxyVariable {
  /** The variable it came from (`https_proxy`, `ALL_PROXY`), for messages. */
  variable: string;
  /** Its value, parsed; undefined when it is not a usable proxy URL (`problem` says why). */
  url?: URL | undefined;
  problem?: string | undefined;
  /** The value with any password removed, safe to print. */
  shown: string;
}

export interface ProxyConfig {
  /** For http:// targets. */
  http?: ProxyVariable | undefined;
  /** For https:// targets. */
  https?: ProxyVariable | undefined;
  /** NO_PROXY, parsed. */
  noProxy: NoProxy;
}

/** The proxy a connection goes through. */
export interface ProxyRoute {
  url: URL;
  /** `http://proxy.corp:3128` (no credentials) and where it came from: for every message. */
  shown: string;
  variable: string;
}

type NoProxyRule =
  | { kind: 'all' }
  | { kind: 'domain'; name: string; port?: string | undefined }
  | { kind: 'ip'; bytes: number[]; port?: string | undefined }
  | { kind: 'cidr'; bytes: number[]; bits: number };

export interface NoProxy {
  rules: readonly NoProxyRule[];
  /** The variable it came from, when set. */
  variable?: string | undefined;
}

/** No proxy anywhere: what a caller that wants direct connections passes. */
export const NO_PROXY_CONFIG: ProxyConfig = { noProxy: { rules: [] } };

function pick(env: NodeJS.ProcessEnv, names: readonly string[]): { variable: string; value: string } | undefined {
  for (const variable of names) {
    const value = env[variable]?.trim();
    if (value !== undefined && value !== '') return { variable, value };
  }
  return undefined;
}

/** A proxy variable's value as a URL: `proxy:3128` means http://proxy:3128, as in curl and Go. */
export function parseProxyVariable(variable: string, value: string): ProxyVariable {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { variable, shown: '<unparseable URL>', problem: 'it is not a URL (expected http://[user:password@]host:port)' };
  }
  const shown = redactUrl(url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { variable, shown, problem: `airlock speaks to HTTP proxies only (http:// or https://), not ${url.protocol.slice(0, -1)}` };
  }
  if (url.hostname === '') return { variable, shown, problem: 'it names no host' };
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '') {
    return { variable, shown, problem: 'a proxy URL is scheme://[user:password@]host[:port], with no path' };
  }
  return { variable, url, shown };
}

/** The proxy settings of an environment (default: this process's). */
export function proxyConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  const all = pick(env, ['all_proxy', 'ALL_PROXY']);
  const http = pick(env, ['http_proxy', 'HTTP_PROXY']) ?? all;
  const https = pick(env, ['https_proxy', 'HTTPS_PROXY']) ?? all;
  const no = pick(env, ['no_proxy', 'NO_PROXY']);
  return {
    http: http === undefined ? undefined : parseProxyVariable(http.variable, http.value),
    https: https === undefined ? undefined : parseProxyVariable(https.variable, https.value),
    noProxy: { rules: no === undefined ? [] : parseNoProxy(no.value), variable: no?.variable },
  };
}

/** IPv4 as 4 bytes, IPv6 as 16 (an IPv4-mapped IPv6 address as its IPv4); undefined for a name. */
function ipBytes(text: string): number[] | undefined {
  const s = text.replace(/^\[|\]$/g, '');
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4 !== null) {
    const b = v4.slice(1).map(Number);
    return b.every((n) => n <= 255) ? b : undefined;
  }
  if (!s.includes(':')) return undefined;
  let url: URL;
  try {
    // The URL parser normalises every IPv6 spelling (::, embedded IPv4) to one form.
    url = new URL(`http://[${s}]/`);
  } catch {
    return undefined;
  }
  const parts = url.hostname.slice(1, -1).split(':');
  const gap = parts.indexOf('');
  const groups: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === '' && i === gap) {
      const present = parts.filter((p) => p !== '').length;
      for (let k = 0; k < 8 - present; k++) groups.push('0');
    } else if (parts[i] !== '') groups.push(parts[i]!);
  }
  const bytes = groups.flatMap((g) => {
    const n = Number.parseInt(g, 16);
    return [n >> 8, n & 255];
  });
  if (bytes.length !== 16) return undefined;
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255;
  return mapped ? bytes.slice(12) : bytes;
}

/** `host`, `host:port`, `[v6]:port` → name and port (port undefined when absent). */
function splitHostPort(entry: string): { host: string; port?: string | undefined } {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracket !== null) return { host: bracket[1]!, port: bracket[2] };
  const colons = entry.split(':').length - 1;
  // A bare IPv6 address has several colons and no port.
  if (colons === 1) {
    const [host, port] = entry.split(':') as [string, string];
    if (/^\d+$/.test(port)) return { host, port };
  }
  return { host: entry };
}

/**
 * NO_PROXY's entries (comma or space separated): `*`; a domain, which matches itself and every
 * name under it, with or without a leading `.` or `*.` (as curl reads it); an IP address; a CIDR
 * range; any of the names and addresses with `:port` to match that port only. Entries that fit
 * none of these are ignored, as curl and Go ignore them.
 */
export function parseNoProxy(value: string): NoProxyRule[] {
  const rules: NoProxyRule[] = [];
  for (const raw of value.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') {
      rules.push({ kind: 'all' });
      continue;
    }
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (cidr !== null) {
      const bytes = ipBytes(cidr[1]!);
      const bits = Number(cidr[2]);
      if (bytes !== undefined && bits <= bytes.length * 8) rules.push({ kind: 'cidr', bytes, bits });
      continue;
    }
    const { host, port } = splitHostPort(entry);
    const bytes = ipBytes(host);
    if (bytes !== undefined) {
      rules.push({ kind: 'ip', bytes, port });
      continue;
    }
    const name = host.replace(/^\*?\./, '').replace(/\.$/, '');
    if (/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(name)) rules.push({ kind: 'domain', name, port });
  }
  return rules;
}

function sameBytes(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function inRange(ip: number[], net: number[], bits: number): boolean {
  if (ip.length !== net.length) return false;
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i % 8);
    if ((ip[i >> 3]! & mask) !== (net[i >> 3]! & mask)) return false;
  }
  return true;
}

/** Does NO_PROXY send `url` straight to its host? */
export function bypassesProxy(url: URL, noProxy: NoProxy): boolean {
  if (noProxy.rules.length === 0) return false;
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const ip = ipBytes(host);
  return noProxy.rules.some((r) => {
    switch (r.kind) {
      case 'all':
        return true;
      case 'cidr':
        return ip !== undefined && inRange(ip, r.bytes, r.bits);
      case 'ip':
        return ip !== undefined && sameBytes(ip, r.bytes) && (r.port === undefined || r.port === port);
      case 'domain':
        return ip === undefined && (host === r.name || host.endsWith(`.${r.name}`)) && (r.port === undefined || r.port === port);
    }
  });
}

/**
 * The proxy for a connection to `url` (its scheme and host count), or undefined for a direct one.
 * A proxy variable that applies but cannot be used is a usage error naming it: silently going
 * direct would look, from inside a corporate network, like the registry being down.
 */
export function proxyFor(url: URL, config: ProxyConfig): ProxyRoute | undefined {
  const v = url.protocol === 'https:' ? config.https : url.protocol === 'http:' ? config.http : undefined;
  if (v === undefined || bypassesProxy(url, config.noProxy)) return undefined;
  if (v.url === undefined) {
    throw new UsageError(`the proxy in ${v.variable} (${v.shown}) cannot be used: ${v.problem ?? 'it is not a proxy URL'}`, {
      code: 'PROXY_INVALID',
      hint: `set ${v.variable} to http://[user:password@]host:port, or unset it; hosts reached directly go in NO_PROXY`,
    });
  }
  return { url: v.url, shown: v.shown, variable: v.variable };
}
