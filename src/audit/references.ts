// Links and names meant for people, not egress (pure). A monitoring stack names hundreds of hosts
// nothing in it ever connects to: every alert's runbook_url, every dashboard's links, docs sites in
// descriptions, the app's own external URL, the hosts of pinned SSH keys. They are `reference`
// findings: kept, shown on request, never failing an audit. Each rule here says why.
import type { ConfigEntry } from './config-formats.ts';
import { normaliseKey } from './rules.ts';

export interface ReferenceRule {
  id: string;
  hint: string;
}

export const REFERENCE_RULES = {
  link: { id: 'reference-link', hint: 'a link for people (runbook, documentation, dashboard, homepage): nothing in the app connects to it' },
  dashboard: { id: 'dashboard-text', hint: 'part of a Grafana dashboard (links, titles, descriptions, text panels): shown to people in their browser, not fetched by the app' },
  alertRule: { id: 'alert-rule-text', hint: 'text of an alerting or recording rule (annotations, labels, query): shown to people or matched against series, never connected to' },
  prose: { id: 'prose', hint: 'a name in descriptive text (a description, help or summary), not a setting' },
  ownAddress: { id: 'own-address', hint: "the app's own address (its external URL or Ingress host), used to build links for people; add it with --internal-domain if it is internal" },
  ingressHost: { id: 'ingress-host', hint: 'an inbound hostname: clients reach the app by it, the app does not connect to it; add it with --internal-domain if it is internal' },
  knownHost: { id: 'ssh-known-host', hint: 'a pinned SSH host key: it lets a connection be verified and makes none; whatever would connect to this host is configured elsewhere' },
  template: { id: 'notification-template', hint: 'text of a notification template ({{ define }}): links for the people who read the alert, not a connection' },
  detectionRule: { id: 'detection-rule', hint: 'part of a detection rule set (Falco-style rules, macros and lists): names the rules match on, never connected to' },
  license: { id: 'license-link', hint: 'a license or schema identifier: nothing connects to it' },
  displayName: { id: 'display-name', hint: "a name shown to people (a login connector's or an item's label), not an address: nothing connects to it" },
  docAnnotation: { id: 'doc-annotation', hint: 'an annotation that documents the resource (docs, repository, runbook, links for a UI), read by people and dashboards, not by the app' },
} as const satisfies Record<string, ReferenceRule>;

/** Keys whose values are links for people: `runbook_url`, `dashboard`, `documentation`, `homepage`, `links`. */
const LINK_KEY = /(^|_)(title|author|footer|external|doc|docs|help|more_info|dashboard|runbook|playbook|wiki|info|source|homepage|status_page|support|issue)_links?$|^(runbook|playbook|dashboard|grafana_dashboard|doc|docs|documentation|help|wiki|homepage|home_page|website|web_site|info|more_info|learn_more|support|about|changelog|release_notes|source_code|issue_tracker|bug_tracker|bugs|chat|icon|logo|favicon|avatar|screenshot|thumbnail|external_link|href)(_url|_link|_uri|_urls|_links)?$|^links?$/;

/** Keys whose values are prose: descriptions, help and messages for people. */
const PROSE_KEY = /^(description|descriptions|summary|message|msg|help|help_text|usage|title|subtitle|text|comment|comments|note|notes|details|about|tooltip|placeholder|display_name|caption|label_text|long_description|short_description|annotation_text)$/;

/**
 * Keys that name things for people (`name: GitLab.com` on a login connector, an item's `label`):
 * a bare host-like value under them is a label, not an address. A value with a scheme, port or path
 * is still judged as one.
 */
const DISPLAY_KEY = /^(name|label|display_?name|title|description|friendly_?name|pretty_?name|nick_?name|caption)$/;

/** Does a setting's key name it for people (see DISPLAY_KEY)? */
export function isDisplayNameKey(keyPath: string, key: string | undefined): boolean {
  return DISPLAY_KEY.test(lastKey(keyPath, key));
}

/** Keys whose value is the app's own address, used to build links (`externalUrl`, `root_url`, `--web.external-url`). */
const SELF_KEY = /(^|_)(cookie_?domains?|whitelist_?domains?|allowed_?redirect_?domains?|ext_endpoint|kc_hostname(_url)?|keycloak_hostname|keycloak_frontend_url|url_prefix|trusted_domains?|jenkins_url|minio_server_url|minio_browser_redirect_url|redirect_?ur[il]s?|post_logout_redirect_ur[il]s?|callback_?ur[il]s?|external_?url|external_?uri|root_url|public_?url|public_?uri|public_?base_?url|site_?url|external_?address|public_?address|external_?hostname|public_?hostname|server_domain|web_external_url|web_route_prefix_url)$/;

/** Keys naming the origins browsers come from (CORS, CSRF): clients of the app, not places it connects to. */
const ORIGIN_KEY = /(^|_)(allowed_?origins?|allow_?origins?|cors_?origins?|cors_allowed_origins?|access_control_allow_origin|csrf_trusted_origins|trusted_origins|web_cors_origin)$/;

/** Annotations that document a resource (a8r.io, Argo CD links, `…/docs`, `…/runbook`). */
export const DOC_ANNOTATION =
  /^(a8r\.io\/|link\.argocd\.argoproj\.io\/|artifacthub\.io\/|org\.opencontainers\.image\.|kubernetes\.io\/description$|openshift\.io\/|backstage\.io\/)|(^|\/)(description|docs|documentation|source|sources|repository|repo|homepage|home|icon|maintainers?|links?|licenses?|vendor|title|summary|owner|team|contact|url|website|changelog|readme|runbook|runbook-url|bugs|chat|support|incidents|uptime|performance|dependencies|logs|dashboard|slack|email)$/i;

function lastKey(keyPath: string, key: string | undefined): string {
  const k = key ?? keyPath.slice(keyPath.lastIndexOf('.') + 1);
  return normaliseKey(k);
}

/** Well-known own-URL settings under a plain key: Argo CD's `url` in `argocd-cm`. */
const OWN_URL_SETTING = /^ConfigMap\/[^/]+\/argocd-cm\u0000url$/;

/** Web server directives naming the server's own names (nginx `server_name`, Apache `ServerName`/`ServerAlias`). */
const OWN_NAME_DIRECTIVE = /^(server_name|ServerName|ServerAlias)\s/;

/** A script line that prints a message for people (`echo "docs at https://…"`), not one that writes a file or feeds a pipe. */
const PRINTED = /^(?:>&2\s+)?(echo|printf|log|info|warn|error|die|fail)\s+(?!.*(?:>|\|))/;

/** The reference rule a setting puts its value under because of where it stands, if any. */
export function referenceBySetting(resource: string, keyPath: string, line: string): ReferenceRule | undefined {
  if (OWN_URL_SETTING.test(`${resource}\u0000${keyPath}`)) return REFERENCE_RULES.ownAddress;
  if (OWN_NAME_DIRECTIVE.test(line.trim())) return REFERENCE_RULES.ownAddress;
  if (PRINTED.test(line.trim())) return REFERENCE_RULES.prose;
  return undefined;
}

/** The reference rule a setting's key puts it under, if any (links, prose, the app's own address). */
export function referenceByKey(keyPath: string, key: string | undefined): ReferenceRule | undefined {
  const k = lastKey(keyPath, key);
  if (k === '') return undefined;
  if (SELF_KEY.test(k) || SELF_KEY.test(normaliseKey(keyPath))) return REFERENCE_RULES.ownAddress;
  if (ORIGIN_KEY.test(k) || ORIGIN_KEY.test(normaliseKey(keyPath))) return REFERENCE_RULES.ingressHost;
  if (k === 'server_name') return REFERENCE_RULES.ownAddress;
  if (LINK_KEY.test(k)) return REFERENCE_RULES.link;
  // `links[0].url`, `links.0.url`: anything inside a list of links.
  if (/(^|\.)links?(\.|$)/i.test(keyPath.replace(/\[[0-9]+\]/g, ''))) return REFERENCE_RULES.link;
  if (PROSE_KEY.test(k)) return REFERENCE_RULES.prose;
  return undefined;
}

/** Go template definitions (`{{ define "slack.title" }}`): notification text, as Alertmanager and Grafana alerting use. */
export function isNotificationTemplate(text: string): boolean {
  return /\{\{-?\s*define\s+"/.test(text);
}

/** Rule text inside `groups[].rules[]` (Prometheus, Loki, Thanos, VictoriaMetrics rules). */
export function isRuleText(dotPath: string): boolean {
  return /(^|\.)groups\.rules\.(annotations|labels|expr|alert|record)(\.|$)/.test(dotPath.replace(/\.[0-9]+(?=\.|$)/g, ''));
}

/** A Falco-style rules file: a list of `rule`/`macro`/`list` items with conditions and lists of names to match. */
export function isDetectionRules(entries: readonly ConfigEntry[]): boolean {
  let items = 0;
  for (const e of entries) {
    const [a, b] = e.path;
    if (typeof a !== 'number') return false;
    if (b === 'rule' || b === 'macro' || b === 'list') items++;
  }
  return items > 0;
}

/** Does a parsed JSON/YAML document look like a Grafana dashboard (bare, or wrapped as `{dashboard: …}`)? */
export function isDashboard(entries: readonly ConfigEntry[]): boolean {
  const top = new Set<string>();
  for (const e of entries) {
    const [a, b] = e.path;
    if (typeof a === 'string') top.add(a);
    if (a === 'dashboard' && typeof b === 'string') top.add(b);
  }
  return (top.has('panels') || top.has('rows')) && (top.has('schemaVersion') || top.has('__inputs') || top.has('uid') || top.has('templating') || top.has('title'));
}

const KNOWN_HOSTS_LINE =
  /^(?:@(?:cert-authority|revoked)\s+)?(\S{1,1000})\s+(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com|ssh-(?:rsa|ed25519)-cert-v01@openssh\.com)\s+AAAA[0-9A-Za-z+/]{8,}/;

/** The host names of an SSH known_hosts line (`[h]:port`, `h1,h2`, hashed `|1|…` give none), or undefined. */
export function knownHostsHosts(line: string): string[] | undefined {
  const m = KNOWN_HOSTS_LINE.exec(line.trim());
  if (!m) return undefined;
  const out: string[] = [];
  for (const pattern of m[1]!.split(',')) {
    if (pattern.startsWith('|') || /[*?!]/.test(pattern)) continue;
    const host = pattern.replace(/^\[([^\]]{1,255})\](?::[0-9]{1,5})?$/, '$1').toLowerCase();
    if (host !== '') out.push(host);
  }
  return out;
}

/**
 * Prose rather than a setting or a command: five words or more, most of them plain words, no
 * flags or assignments. A bare name in such text (`see cert-manager.io`) is mentioned, not used.
 */
export function looksLikeProse(text: string): boolean {
  const words = text.trim().split(/\s+/);
  if (words.length < 5 || /(^|\s)-{1,2}[A-Za-z]|=|\||&&|\$\(|`/.test(text)) return false;
  const plain = words.filter((w) => /^[("'“]?[A-Za-z][A-Za-z'’-]{0,30}[.,;:!?)"'”]*$/.test(w)).length;
  return plain / words.length >= 0.6;
}

/** A URL or host that documents or identifies rather than serves: docs sites, runbooks, licenses, XML/JSON schemas. */
export function referenceByUrl(host: string, urlPath: string | undefined): ReferenceRule | undefined {
  if (/^(docs?|documentation|wiki|runbooks?|kb|blog|learn|handbook|developer-docs|help-center)\./.test(host)) return REFERENCE_RULES.link;
  if (urlPath !== undefined && /^\/licenses?\/|^\/licenses\/LICENSE/i.test(urlPath)) return REFERENCE_RULES.license;
  return undefined;
}

/** Hosts that only ever appear as identifiers (XML namespaces, JSON schema ids), never as endpoints. */
export const IDENTIFIER_HOST = /^(www\.)?(w3\.org|json-schema\.org|xmlns\.com|purl\.org|schemas\.xmlsoap\.org|schemas\.microsoft\.com|schemas\.openxmlformats\.org|java\.sun\.com|xmlns\.jcp\.org|xmlns\.oracle\.com|ns\.adobe\.com)$/;

/** Documentation and placeholder names (RFC 2606/6761 and the usual stand-ins): an Ingress on them is a chart default. */
export function isPlaceholderHost(host: string): boolean {
  return /(^|\.)(example\.(com|org|net|edu)|example|test|invalid|localhost|local|domain\.com|mydomain\.com|yourdomain\.com|your-domain\.com|my-domain\.com|domain\.tld|example\.tld|foo\.bar|foo\.com|chart-example\.local)$/.test(host);
}
