// From what the scan saw to findings (pure): classify every endpoint, name its category, severity
// and hint, keep one finding per place and host, and order them worst first.
import { redactSecrets } from '../core/redact.ts';
import { classifyHost, type ClassifyContext } from './classify.ts';
import { isApiGroupName } from './api-groups.ts';
import { extractEndpoints, HOST_KEY, isHostname } from './endpoints.ts';
import { parseIp } from './ip.ts';
import { CATEGORY_HINT, CATEGORY_SEVERITY, categorize, matchInstall, matchSwitch } from './rules.ts';
import { IDENTIFIER_HOST, isDisplayNameKey, isPlaceholderHost, knownHostsHosts, looksLikeProse, REFERENCE_RULES, referenceByKey, referenceBySetting, referenceByUrl, type ReferenceRule } from './references.ts';
import type { Occurrence } from './scan.ts';
import { severityRank, type AuditFinding, type Category, type InternalEndpoint, type Severity } from './types.ts';

const MAX_VALUE = 300;

/** The one line of a multi-line value that holds `needle`, trimmed; long values are cut. */
export function showValue(display: string, needle: string | undefined): string {
  let v = display;
  if (/\n/.test(v)) {
    const lines = v.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
    v = (needle !== undefined ? lines.find((l) => l.toLowerCase().includes(needle.toLowerCase())) : undefined) ?? lines[0] ?? '';
  }
  v = redactSecrets(v);
  return v.length > MAX_VALUE ? `${v.slice(0, MAX_VALUE - 1)}…` : v;
}

function urlPath(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z][A-Za-z0-9+-]*:)?\/\/[^/?#]*(.*)$/.exec(url);
  return m ? m[1] || '/' : undefined;
}

export interface FindingSetOptions {
  /** API groups the input uses (see api-groups.ts): names that look like hosts and are none. */
  apiGroups?: ReadonlySet<string>;
  /** The app's own inbound names (Ingress hosts): links to them are references, not egress. */
  ownHosts?: ReadonlySet<string>;
}

/** What a finding from a Secret may show: the setting's name, never its value. */
const SECRET_SHOWN = '(value of a Secret, not shown)';

function hideSecret(occ: Occurrence): Occurrence {
  const name = occ.key ?? occ.keyPath.slice(occ.keyPath.lastIndexOf('.') + 1);
  // A switch's value is true or false and tells nothing secret; anything else stays hidden.
  const bool = typeof occ.value === 'boolean' || (typeof occ.value === 'string' && /^(true|false|yes|no|on|off|0|1)$/i.test(occ.value.trim()));
  return { ...occ, display: bool ? `${name}: ${String(occ.value)}` : `${name}: ${SECRET_SHOWN}`, setting: bool ? `${name}: ${String(occ.value)}` : `${name}: ${SECRET_SHOWN}` };
}

/**
 * Grafana and Loki/Mimir/Tempo share the `analytics.reporting_enabled` key: the switch turns off
 * the product whose configuration it stands in (grafana.ini, GF_* or a Grafana resource; else the
 * YAML configuration of Loki, Mimir or Tempo), so one left on is still flagged beside the other.
 */
function seenAs(ruleId: string, occ: Occurrence): string {
  if (ruleId !== 'grafana-reporting') return ruleId;
  const grafana = /grafana\.ini/i.test(occ.path) || /^GF_/.test(occ.keyPath) || occ.kind === 'Grafana';
  return grafana ? ruleId : 'loki-reporting';
}

export class FindingSet {
  readonly #byPlace = new Map<string, AuditFinding>();
  readonly #references = new Map<string, AuditFinding>();
  readonly #apiGroups: ReadonlySet<string>;
  readonly #ownHosts: ReadonlySet<string>;
  readonly internal: InternalEndpoint[] = [];
  readonly #internalSeen = new Set<string>();
  /** Switch rules seen with any value, by rule id (default-on rules look here). */
  readonly switchesSeen = new Set<string>();
  readonly #ctx: ClassifyContext;

  constructor(ctx: ClassifyContext, o: FindingSetOptions = {}) {
    this.#ctx = ctx;
    this.#apiGroups = o.apiGroups ?? new Set();
    this.#ownHosts = o.ownHosts ?? new Set();
  }

  /** A link or name for people: kept apart, one per place and host. */
  reference(o: { host: string; port?: number | undefined; url?: string | undefined; resource: string; path: string; origin?: string | undefined; display: string; rule: ReferenceRule }): void {
    const key = `${o.resource}\u0000${o.path}\u0000${o.host}`;
    if (this.#references.has(key)) return;
    this.#references.set(key, {
      host: o.host,
      ...(o.url !== undefined ? { url: redactSecrets(o.url) } : {}),
      ...(o.port !== undefined ? { port: o.port } : {}),
      category: 'reference',
      severity: 'info',
      rule: o.rule.id,
      resource: o.resource,
      path: o.path,
      value: showValue(o.display, o.url ?? o.host),
      hint: o.rule.hint,
      ...(o.origin !== undefined ? { origin: o.origin } : {}),
    });
  }

  add(f: AuditFinding): void {
    if (f.category === 'reference') {
      const key = `${f.resource}\u0000${f.path}\u0000${f.host}`;
      if (!this.#references.has(key)) this.#references.set(key, f);
      return;
    }
    // Switches and defaults are settings, not addresses: two of them on one image (Grafana's update
    // and plugin checks, both to grafana.com) are two things to turn off.
    const setting = f.host === '' || f.rule.startsWith('unparseable') || (f.url === undefined && f.port === undefined && !f.rule.startsWith('external-'));
    const key = `${f.resource}\u0000${f.path}\u0000${f.host}\u0000${setting ? f.rule : ''}`;
    const before = this.#byPlace.get(key);
    if (before) {
      const better =
        severityRank(f.severity) > severityRank(before.severity) ||
        (f.severity === before.severity && before.category === 'other' && f.category !== 'other') ||
        // The image finding names the image; a bare registry host at the same place says less.
        (f.severity === before.severity && f.rule === 'external-registry-image' && before.rule !== f.rule);
      if (!better) {
        if (before.url === undefined && f.url !== undefined) before.url = f.url;
        return;
      }
    }
    this.#byPlace.set(key, f);
  }

  addInternal(e: InternalEndpoint): void {
    const key = `${e.resource}\u0000${e.path}\u0000${e.host}\u0000${e.port ?? ''}`;
    if (this.#internalSeen.has(key)) return;
    this.#internalSeen.add(key);
    this.internal.push(e);
  }

  /** An endpoint found somewhere: an external one becomes a finding, an internal one is kept aside. */
  endpoint(o: {
    host: string;
    port?: number | undefined;
    url?: string | undefined;
    resource: string;
    path: string;
    origin?: string | undefined;
    display: string;
    context: string;
    rule?: string;
    category?: Category;
    severity?: Severity;
    hint?: string;
  }): void {
    const c = classifyHost(o.host, this.#ctx);
    const value = showValue(o.display, o.url ?? o.host);
    if (c.internal) {
      this.addInternal({ host: o.host, ...(o.port !== undefined ? { port: o.port } : {}), resource: o.resource, path: o.path, value, reason: c.reason });
      return;
    }
    const cat = o.category !== undefined ? { category: o.category, rule: o.rule ?? 'external-endpoint' } : categorize(o.host, urlPath(o.url), o.context);
    const f: AuditFinding = {
      host: o.host,
      ...(o.url !== undefined ? { url: redactSecrets(o.url) } : {}),
      ...(o.port !== undefined ? { port: o.port } : {}),
      category: cat.category,
      severity: o.severity ?? CATEGORY_SEVERITY[cat.category],
      rule: o.rule ?? (cat.category === 'other' ? 'external-endpoint' : `external-${cat.category}`),
      resource: o.resource,
      path: o.path,
      value,
      hint: o.hint ?? CATEGORY_HINT[cat.category],
      ...(o.origin !== undefined ? { origin: o.origin } : {}),
    };
    this.add(f);
  }

  occurrence(occIn: Occurrence): void {
    const occ = occIn.secret === true ? hideSecret(occIn) : occIn;
    const base = { resource: occ.resource, path: occ.path, origin: occ.origin, display: occ.display };
    if (occ.role === 'host' || occ.role === 'inbound') {
      const host = String(occ.value).trim().toLowerCase().replace(/\.$/, '');
      if (!isHostname(host) && !parseIp(host)) return;
      if (occ.role === 'host') {
        this.endpoint({ ...base, host, context: occ.keyPath, category: 'other', rule: 'service-external-name', hint: 'a Service of type ExternalName sends cluster traffic to this host: point it at an internal endpoint' });
        return;
      }
      const c = classifyHost(host, this.#ctx);
      if (c.internal || isPlaceholderHost(host)) {
        this.addInternal({ host, resource: occ.resource, path: occ.path, value: showValue(occ.display, host), reason: c.internal ? `${c.reason}; inbound (Ingress host)` : 'placeholder name (example/test domain); inbound (Ingress host)' });
      } else {
        this.reference({ ...base, host, rule: REFERENCE_RULES.ingressHost });
      }
      return;
    }
    if (occ.human !== undefined) {
      this.#referenceOccurrence(occ);
      return;
    }
    // An env var read from a ConfigMap key that names the setting itself was judged at the ConfigMap.
    const fromKey = occ.fromConfigMapKey;
    const sw = matchSwitch(occ.keyPath, occ.value);
    if (sw) {
      this.switchesSeen.add(seenAs(sw.rule.id, occ));
      if (sw.on && (fromKey === undefined || matchSwitch(fromKey, occ.value) === undefined)) {
        this.add({
          host: sw.rule.host ?? '',
          category: sw.rule.category,
          severity: sw.rule.severity,
          rule: sw.rule.id,
          resource: occ.resource,
          path: occ.path,
          value: showValue(occ.setting ?? occ.display, occ.key),
          hint: sw.rule.hint,
          ...(occ.origin !== undefined ? { origin: occ.origin } : {}),
        });
      }
      return;
    }
    const install = matchInstall(occ.keyPath, occ.value, occ.path);
    if (install && (fromKey === undefined || matchInstall(fromKey, occ.value) === undefined)) {
      this.add({
        host: install.host,
        category: install.category,
        severity: install.severity,
        rule: install.id,
        resource: occ.resource,
        path: occ.path,
        value: showValue(occ.setting ?? occ.display, occ.key),
        hint: install.hint,
        ...(occ.origin !== undefined ? { origin: occ.origin } : {}),
      });
    }
    // The addresses in a value read from a ConfigMap are found where they stand.
    if (fromKey !== undefined) return;
    if (typeof occ.value !== 'string' || this.#referenceOccurrence(occ)) return;
    const prose = looksLikeProse(occ.value);
    // A label names things for people; a path (`gitlab.com/group`) makes the value more than a name.
    const label = isDisplayNameKey(occ.keyPath, occ.key) && !occ.value.includes('/');
    for (const hit of this.#hits(occ)) {
      const byUrl = referenceByUrl(hit.host, urlPath(hit.url));
      if (byUrl !== undefined) {
        this.reference({ ...base, host: hit.host, port: hit.port, url: hit.url, rule: byUrl });
      } else if (this.#ownHosts.has(hit.host) && !classifyHost(hit.host, this.#ctx).internal) {
        this.reference({ ...base, host: hit.host, port: hit.port, url: hit.url, rule: REFERENCE_RULES.ownAddress });
      } else if (label && hit.how === 'host' && !(hit.key !== undefined && hit.key !== occ.key && HOST_KEY.test(hit.key))) {
        // `name: GitLab.com`: a bare name under a key that labels things for people.
        if (!classifyHost(hit.host, this.#ctx).internal) this.reference({ ...base, host: hit.host, port: hit.port, url: hit.url, rule: REFERENCE_RULES.displayName });
      } else if (prose && hit.how === 'host' && !(hit.key !== undefined && HOST_KEY.test(hit.key))) {
        this.reference({ ...base, host: hit.host, port: hit.port, url: hit.url, rule: REFERENCE_RULES.prose });
      } else {
        this.endpoint({ ...base, host: hit.host, port: hit.port, url: hit.url, context: `${occ.keyPath} ${hit.key ?? ''}` });
      }
    }
  }

  #hits(occ: Occurrence): ReturnType<typeof extractEndpoints> {
    if (typeof occ.value !== 'string') return [];
    const groups = this.#apiGroups;
    const hits = extractEndpoints(occ.value, { ...(occ.key !== undefined ? { key: occ.key } : {}), notHost: (h) => isApiGroupName(h, groups) }).filter((h) => !IDENTIFIER_HOST.test(h.host));
    // A URL read from a Secret is not kept: its path or query may be the secret (a Slack webhook).
    return occ.secret === true ? hits.map(({ url: _url, ...h }) => h) : hits;
  }

  /**
   * A value meant for people (by the structure around it, its key, or an SSH known_hosts line):
   * its hosts become references, and true is returned. Internal hosts in it are simply dropped.
   */
  #referenceOccurrence(occ: Occurrence): boolean {
    const base = { resource: occ.resource, path: occ.path, origin: occ.origin, display: occ.display };
    if (typeof occ.value === 'string') {
      const pinned = knownHostsHosts(occ.value);
      if (pinned !== undefined) {
        for (const host of pinned) if (!classifyHost(host, this.#ctx).internal) this.reference({ ...base, host, rule: REFERENCE_RULES.knownHost });
        return true;
      }
    }
    const rule = occ.human ?? referenceBySetting(occ.resource, occ.keyPath, occ.display) ?? referenceByKey(occ.keyPath, occ.key);
    if (rule === undefined) return false;
    for (const hit of this.#hits(occ)) {
      if (classifyHost(hit.host, this.#ctx).internal) continue;
      this.reference({ ...base, host: hit.host, port: hit.port, url: hit.url, rule });
    }
    return true;
  }

  /** Links and names for people, ordered like findings. */
  references(): AuditFinding[] {
    return [...this.#references.values()].sort(compareFindings);
  }

  /** Worst first; then by category, host, resource and path. */
  findings(): AuditFinding[] {
    // `image: {registry: ghcr.io, repository: …}`: the image finding covers its pieces.
    const images = [...this.#byPlace.values()].filter((f) => f.rule === 'external-registry-image');
    const partOfImage = (f: AuditFinding): boolean =>
      f.rule !== 'external-registry-image' &&
      images.some((i) => i.resource === f.resource && i.host === f.host && (f.path.startsWith(`${i.path}.`) || f.path.startsWith(`${i.path}[`)));
    return [...this.#byPlace.values()].filter((f) => !partOfImage(f)).sort(compareFindings);
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Worst first; then by category, host, resource and path. */
function compareFindings(a: AuditFinding, b: AuditFinding): number {
  return severityRank(b.severity) - severityRank(a.severity) || cmp(a.category, b.category) || cmp(a.host, b.host) || cmp(a.resource, b.resource) || cmp(a.path, b.path);
}

/** Does any finding reach `failOn`? `none` never does. */
export function reachesFailOn(findings: readonly AuditFinding[], failOn: Severity | 'none'): boolean {
  if (failOn === 'none') return false;
  return findings.some((f) => f.category !== 'reference' && severityRank(f.severity) >= severityRank(failOn));
}
