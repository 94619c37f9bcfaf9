// Endpoints in one string (pure): URLs of any scheme (`https://`, `postgres://u:p@h:5432/db`,
// `jdbc:mysql://`, `mongodb://h1,h2/db`, Sentry DSNs), `host:port` pairs, `host=` DSN fields, and
// bare host names where the key they stand under says "host" (or the name ends in a public TLD).
// A value is judged by where it stands: `--server api.example.com`, `API_HOST=10.1.2.3` and
// `endpoint: collector.example.com` are endpoints; `config.yaml`, `app.kubernetes.io/name`,
// `admin@example.com` and `1.2.3.4` under a version key are not.
//
// Every quantifier is bounded: unbounded ones backtrack on long tokens.
import { parseIp } from './ip.ts';

export type EndpointHow = 'url' | 'host-port' | 'host';

export interface EndpointHit {
  /** Lowercase, no brackets, no trailing dot. */
  host: string;
  port?: number;
  /** The URL as written, when there is one. */
  url?: string;
  scheme?: string;
  how: EndpointHow;
  /** The key, flag or env name the value stood under, when there was one. */
  key?: string;
}

/** Keys, flags and env names whose values are addresses of something. */
export const HOST_KEY = /host|server|endpoint|url|uri|addr|domain|dsn|broker|bootstrap|registry|mirror|proxy|upstream|remote|target|api|webhook|issuer|origin|collector|sink|gateway|fqdn|site|peer|seed|backend|connect|dest|dns|ingest|tracker|reporter|smtp|ldap|oidc|oauth|acme|forward|resolver|_pass$/i;

/** Keys whose values name hosts that are not endpoints (proxy bypass lists). */
const NOT_ENDPOINT_KEY = /^-{0,2}(no_?proxy|non_?proxy_?hosts|http\.nonproxyhosts|bypass)|^-{0,2}(\$schema|\$id|xmlns|api_?groups?|api_?versions?|groups?|kinds?|resources?|finalizers?|verbs|group_?version_?kind|crd_?names?|resource_?names?|domain[-_.]?filters?|exclude[-_.]?domains?|regex[-_.]?domain[-_.]?filter|zone[-_.]?id[-_.]?filter|txt[-_.]?owner[-_.]?id|email[-_.]?domains?)$/i;

/**
 * Public top-level domains a bare name may end in to count without a key saying "host". File
 * extensions that are also TLDs (sh, py, pl, md, rs, so, ts) are left out: `install.sh` is a file.
 */
const PUBLIC_TLDS = new Set([
  'com', 'net', 'org', 'io', 'co', 'ai', 'app', 'dev', 'cloud', 'info', 'biz', 'me', 'us', 'uk', 'eu', 'de', 'fr', 'nl',
  'be', 'ch', 'at', 'se', 'no', 'dk', 'fi', 'es', 'it', 'ru', 'cn', 'jp', 'kr', 'in', 'br', 'au', 'ca', 'nz', 'tv', 'cc',
  'xyz', 'tech', 'online', 'site', 'gov', 'edu', 'mil', 'int', 'ly', 'gg', 'is', 'page', 'run', 'services', 'systems',
  'network', 'tools', 'software', 'digital', 'ie', 'pt', 'cz', 'hu', 'gr', 'ro', 'za', 'mx', 'ar', 'cl', 'tw', 'hk', 'sg',
  'il', 'tr', 'ua', 'vn', 'id', 'th', 'my', 'ph', 'pk', 'ng', 'ke', 'eg', 'sa', 'ae', 'ir', 'lt', 'lv', 'ee', 'sk', 'si',
  'hr', 'rs', 'bg', 'lu', 'li', 'mt', 'cy', 'pro', 'name', 'mobi', 'asia', 'global', 'company', 'solutions', 'host',
  'link', 'click', 'email', 'store', 'shop', 'live', 'world', 'today', 'news', 'media', 'studio', 'works', 'zone',
]);
PUBLIC_TLDS.delete('rs');

/** Two-letter labels that end file names (sources, build files, archives) more often than host names. */
const SHORT_EXT = new Set(['sh', 'py', 'pl', 'md', 'rs', 'so', 'ts', 'js', 'go', 'rb', 'db', 'gz', 'xz', 'cs', 'fs', 'vb', 'ml', 'hs', 'el', 'ex', 'jl', 'kt', 'pm', 'tf', 'mk', 'am', 'ac', 'ps', 'bz', 'lz', 'py', 'sc', 'rc']);

/** A last label that makes a bare dotted word a host: a listed generic TLD or a country code that is no file extension. */
function publicTld(tld: string): boolean {
  return PUBLIC_TLDS.has(tld) || (/^[a-z]{2}$/.test(tld) && !SHORT_EXT.has(tld));
}

/** Last labels that make a dotted word a file name, not a host. */
const FILE_EXT = new Set([
  'yaml', 'yml', 'json', 'toml', 'ini', 'conf', 'cfg', 'properties', 'xml', 'txt', 'log', 'md', 'sh', 'bash', 'py', 'js',
  'mjs', 'cjs', 'ts', 'rb', 'pl', 'php', 'java', 'class', 'jar', 'war', 'go', 'rs', 'c', 'h', 'cpp', 'so', 'dll', 'exe',
  'html', 'htm', 'css', 'png', 'jpg', 'jpeg', 'gif', 'svg', 'ico', 'pem', 'crt', 'key', 'cert', 'csr', 'p12', 'jks',
  'tar', 'gz', 'tgz', 'zip', 'bz2', 'xz', 'zst', 'sql', 'db', 'sock', 'pid', 'lock', 'env', 'tpl', 'tmpl', 'lua', 'd',
  'service', 'socket', 'timer', 'bin', 'dat', 'csv', 'ndjson', 'jsonl', 'proto', 'wasm', 'map', 'lst', 'old', 'bak',
  'tmp', 'swp', 'rules', 'policy', 'rego', 'cue', 'jsonnet', 'libsonnet', 'hcl', 'tf', 'tfvars', 'nft', 'crl', 'der',
]);

/** API-group and label domains: `app.kubernetes.io/name` is a label key, not an endpoint. */
const LABEL_DOMAIN = /(^|\.)(kubernetes\.io|k8s\.io|x-k8s\.io|helm\.sh|cert-manager\.io|istio\.io|prometheus\.io|coreos\.com|openshift\.io|linkerd\.io|cilium\.io|projectcalico\.org|argoproj\.io|fluxcd\.io|traefik\.io|traefik\.containo\.us|opentelemetry\.io|kyverno\.io|keda\.sh|knative\.dev|tekton\.dev|crossplane\.io|jaegertracing\.io|banzaicloud\.io|rook\.io|longhorn\.io|velero\.io|kubevirt\.io|strimzi\.io|external-secrets\.io|secrets-store\.csi\.k8s\.io)$/;

/** Schemes whose "URLs" name no network host. */
const LOCAL_SCHEMES = new Set(['file', 'unix', 'data', 'about', 'javascript', 'mailto', 'urn', 'npipe', 'fd', 'env', 'vault', 'secret', 'k8s', 'kubernetes', 'cid', 'blob', 'chrome', 'jar', 'classpath', 'unix+http', 'http+unix']);

const DEFAULT_PORTS: Record<string, number> = {
  http: 80, https: 443, ws: 80, wss: 443, ftp: 21, sftp: 22, ssh: 22, git: 9418, ldap: 389, ldaps: 636, smtp: 25,
  smtps: 465, postgres: 5432, postgresql: 5432, mysql: 3306, redis: 6379, rediss: 6379, mongodb: 27017, amqp: 5672,
  amqps: 5671, nats: 4222, mqtt: 1883, mqtts: 8883, kafka: 9092, grpc: 443, grpcs: 443, memcached: 11211,
};

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME_RE = new RegExp(`^(?:${LABEL}\\.){1,16}(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|xn--[a-z0-9-]{1,59})$`);
const URL_RE = /(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,30}):(?:([A-Za-z][A-Za-z0-9+-]{0,30}):)?\/\/([^\s"'<>`\\|{}^]{0,2048})/g;

const SINGLE_LABEL = new RegExp(`^${LABEL}$`);

/** A DNS name with an alphabetic last label, or an IP address. */
export function isHostname(name: string): boolean {
  return name.length <= 253 && HOSTNAME_RE.test(name);
}

function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** `host`, `host:port`, `[v6]:port`, `v6`: a host and port, or undefined when it is not an address. */
function splitHostPort(text: string, allowSingleLabel = false): { host: string; port?: number; ip: boolean } | undefined {
  let host = text;
  let port: number | undefined;
  const v6 = /^\[([0-9a-fA-F:.%a-z]{2,60})\](?::([0-9]{1,5}))?$/.exec(text);
  if (v6) {
    host = v6[1]!;
    if (v6[2] !== undefined) {
      port = parsePort(v6[2]);
      if (port === undefined) return undefined;
    }
  } else if (!parseIp(text)) {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      port = parsePort(text.slice(colon + 1));
      if (port === undefined) return undefined;
      host = text.slice(0, colon);
    }
  }
  host = host.toLowerCase().replace(/\.$/, '');
  if (parseIp(host)) return port === undefined ? { host, ip: true } : { host, port, ip: true };
  if (!isHostname(host) && !(allowSingleLabel && SINGLE_LABEL.test(host))) return undefined;
  return port === undefined ? { host, ip: false } : { host, port, ip: false };
}

function lastLabel(host: string): string {
  return host.slice(host.lastIndexOf('.') + 1);
}

const TRAILING = /[.,;:)\]}'"!?>*]+$/;

interface Token {
  text: string;
  /** The key this token is the value of (from `--flag=`, `NAME=`, `key:`, `--flag value`, `key = value`). */
  key?: string;
}

/** Split into value tokens, each with the key it stands under when the text says so. */
function tokens(text: string, outerKey: string | undefined): Token[] {
  const raw = text.split(/[\s,;]+/).filter((t) => t !== '');
  const out: Token[] = [];
  let pending: string | undefined;
  const single = raw.length === 1;
  for (let i = 0; i < raw.length; i++) {
    // Brackets around an IPv6 address are part of it: `[fd00::1]:443`.
    let t = /^\[[0-9A-Fa-f:.]{2,45}\]/.test(raw[i]!.replace(/^["'`(]+/, ''))
      ? raw[i]!.replace(/^["'`(]+/, '').replace(/["'`)]+$/, '')
      : raw[i]!.replace(/^["'`(\[]+/, '').replace(/["'`)\]]+$/, '');
    if (t === '') continue;
    if (t === '=' || t === ':') {
      // `key = value` (INI, properties) or `key : value`
      const prev = raw[i - 1]?.replace(/^["']+|["']+$/g, '');
      pending = prev;
      continue;
    }
    const flagEq = /^(-{1,2}[A-Za-z][A-Za-z0-9_.\-]{0,80})=(.*)$/.exec(t);
    if (flagEq) {
      out.push({ text: flagEq[2]!, key: flagEq[1]! });
      pending = undefined;
      continue;
    }
    const assign = /^([A-Za-z_][A-Za-z0-9_.\-]{0,80})=(.+)$/.exec(t);
    if (assign) {
      out.push({ text: assign[2]!, key: assign[1]! });
      pending = undefined;
      continue;
    }
    const keyColon = /^"?([A-Za-z_][A-Za-z0-9_.\-]{0,80})"?:$/.exec(t);
    if (keyColon) {
      pending = keyColon[1]!;
      continue;
    }
    if (/^-{1,2}[A-Za-z][A-Za-z0-9_.\-]{0,80}$/.test(t)) {
      pending = t;
      continue;
    }
    const key = pending ?? (single ? outerKey : undefined);
    out.push(key === undefined ? { text: t } : { text: t, key });
    pending = undefined;
  }
  return out;
}

function hostKeyed(key: string | undefined): boolean {
  return key !== undefined && HOST_KEY.test(key) && !NOT_ENDPOINT_KEY.test(key);
}

/**
 * Every endpoint in `text`, each once (by host and port), in order of appearance. `key` is the key,
 * env name or flag the whole value stands under; it makes a bare `collector.corp.example` count.
 */
export function extractEndpoints(text: string, opts: { key?: string; notHost?: (host: string) => boolean } = {}): EndpointHit[] {
  if (text.length > 1024 * 1024) return [];
  if (opts.key !== undefined && NOT_ENDPOINT_KEY.test(opts.key)) return [];
  const hits: EndpointHit[] = [];
  const seen = new Set<string>();
  const add = (h: EndpointHit): void => {
    const id = `${h.host}|${h.port ?? ''}`;
    if (seen.has(id)) return;
    seen.add(id);
    hits.push(h);
  };
  // XML namespace and schema declarations name documents, they are not fetched: `xmlns="http://…"`,
  // `xsi:schemaLocation="…"`, `<!DOCTYPE … "http://….dtd">`.
  const source = /xmlns|schemaLocation|DOCTYPE/i.test(text)
    ? text.replace(/\b(?:xmlns(?::[\w.-]{1,60})?|xsi:schemaLocation|xsi:noNamespaceSchemaLocation)\s{0,5}=\s{0,5}(?:"[^"]{0,4000}"|'[^']{0,4000}')|<!DOCTYPE[^>]{0,4000}>/gi, (m) => ' '.repeat(m.length))
    : text;
  let rest = source;
  for (const m of source.matchAll(URL_RE)) {
    const scheme = (m[2] ?? m[1]!).toLowerCase();
    const outer = m[1]!.toLowerCase();
    const whole = m[0].replace(TRAILING, '');
    rest = rest.slice(0, m.index) + ' '.repeat(m[0].length) + rest.slice(m.index + m[0].length);
    if (LOCAL_SCHEMES.has(scheme) || LOCAL_SCHEMES.has(outer)) continue;
    const afterScheme = m[3]!;
    let authority = afterScheme.split(/[/?#;]/, 1)[0]!.replace(TRAILING, '');
    const at = authority.lastIndexOf('@');
    if (at >= 0) authority = authority.slice(at + 1);
    const key = opts.key;
    for (const part of authority.split(',')) {
      // In a URL a single label is a host too (`http://redis:6379`, `http://localhost/`).
      const hp = splitHostPort(part, true);
      if (!hp) continue;
      const port = hp.port ?? DEFAULT_PORTS[scheme];
      add({ host: hp.host, ...(port !== undefined ? { port } : {}), url: whole, scheme, how: 'url', ...(key !== undefined ? { key } : {}) });
    }
  }
  // Go template actions (`{{ define "slack.link" }}`, `{{ .Values.x }}`) name templates and values, not hosts.
  rest = rest.replace(/\{\{[^{}]{0,500}\}\}/g, (m) => ' '.repeat(m.length));
  const notHost = opts.notHost ?? ((): boolean => false);
  for (const tok of tokens(rest, opts.key)) {
    let value = tok.text.replace(TRAILING, '');
    if (value === '' || value.includes('@') || /[${}%<>]/.test(value)) continue;
    if (tok.key !== undefined && NOT_ENDPOINT_KEY.test(tok.key)) continue;
    const keyed = hostKeyed(tok.key);
    const key = tok.key;
    const slash = value.indexOf('/');
    const hasPath = slash > 0;
    if (hasPath) value = value.slice(0, slash);
    else if (slash === 0) continue;
    value = value.replace(/^(tcp|udp):/i, '');
    const hp = splitHostPort(value);
    if (!hp) continue;
    const base = { host: hp.host, ...(key !== undefined ? { key } : {}) };
    if (hp.port !== undefined) {
      if (!hp.ip && FILE_EXT.has(lastLabel(hp.host))) continue;
      add({ ...base, port: hp.port, how: 'host-port' });
      continue;
    }
    if (hp.ip) {
      // A dotted quad alone is as often a version as an address: only under a key that says host.
      if (keyed && !hasPath) add({ ...base, how: 'host' });
      continue;
    }
    const tld = lastLabel(hp.host);
    if (FILE_EXT.has(tld) && !PUBLIC_TLDS.has(tld)) continue;
    if (hasPath && (LABEL_DOMAIN.test(hp.host) || notHost(hp.host))) continue;
    if (!keyed && notHost(hp.host)) continue;
    if (keyed || publicTld(tld)) add({ ...base, how: 'host' });
  }
  return hits;
}
