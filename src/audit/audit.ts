// `airlock audit` as a library: every endpoint the rendered app would talk to, classified
// internal or external, and the phone-home switches it leaves on. Offline: charts are rendered
// by helm behind the offline seam, and nothing here opens a connection.
import { parseReference } from '../core/reference.ts';
import { extractImages } from '../discover/extract.ts';
import type { Manifest } from '../discover/types.ts';
import { splitPath, valueAt } from '../discover/values-path.ts';
import { apiGroupsOf } from './api-groups.ts';
import { makeClassifyContext } from './classify.ts';
import { extractEndpoints } from './endpoints.ts';
import { FindingSet, showValue } from './findings.ts';
import { withLines } from './locate.ts';
import { loadManifests, type LoadProblem, type RenderInputOptions } from './load.ts';
import { namespacesOf } from './namespaces.ts';
import { impliedObjectStores } from './object-stores.ts';
import { impliedReceivers } from './receivers.ts';
import { REFERENCE_RULES, referenceByKey, referenceBySetting } from './references.ts';
import { CONNECTOR_DEFAULTS, DEFAULT_ON_RULES, IMPLICIT_RULES } from './rules.ts';
import { scanManifests, type Occurrence } from './scan.ts';
import type { AuditFinding, InternalEndpoint } from './types.ts';

export interface AuditOptions extends RenderInputOptions {
  /** Domains whose names are internal (each covers the names below it). */
  internalDomains?: string[];
  /** CIDR blocks whose addresses are internal. */
  internalCidrs?: string[];
}

export interface ManifestAuditOptions {
  internalDomains?: string[];
  internalCidrs?: string[];
  /** Namespace of resources that name none (helm's --namespace; default `default`). */
  namespace?: string;
  /** Documents that did not parse, reported as findings. */
  problems?: LoadProblem[];
}

export interface AuditResult {
  /** External endpoints, phone-home switches and unparseable input, worst first. */
  findings: AuditFinding[];
  /** Links and names for people (category `reference`): not egress, never failing an audit. */
  references: AuditFinding[];
  /** Endpoints judged internal, with the reason. */
  internal: InternalEndpoint[];
  namespaces: string[];
  warnings: string[];
}

function registryOf(reference: string): string | undefined {
  try {
    return parseReference(reference).registry;
  } catch {
    return undefined;
  }
}

/**
 * Hosts the app names as its own address (`externalUrl`, Argo CD's `url` in argocd-cm, `root_url`):
 * wherever else the same host appears (a notifier's link context, a `PUBLIC_HOST` env), it is that
 * address again, built into links for people, not a place the app connects to.
 */
function ownAddressHosts(occurrences: readonly Occurrence[]): Set<string> {
  const out = new Set<string>();
  for (const o of occurrences) {
    if (o.role !== 'text' || typeof o.value !== 'string' || o.human !== undefined) continue;
    const rule = referenceBySetting(o.resource, o.keyPath, o.display) ?? referenceByKey(o.keyPath, o.key);
    if (rule !== REFERENCE_RULES.ownAddress) continue;
    for (const hit of extractEndpoints(o.value, o.key !== undefined ? { key: o.key } : {})) out.add(hit.host);
  }
  return out;
}

/** Login connectors (`connectors[].type`) that reach a public provider because no URL points them elsewhere. */
function connectorDefaults(occurrences: readonly Occurrence[]): { occ: Occurrence; host: string; hint: string }[] {
  const out: { occ: Occurrence; host: string; hint: string }[] = [];
  for (const o of occurrences) {
    if (typeof o.value !== 'string' || !/(^|\.)connectors\.type$/.test(o.keyPath)) continue;
    const rule = CONNECTOR_DEFAULTS.find((c) => c.type === o.value);
    const base = /^(.*\.connectors\[[0-9]+\])\.type$/.exec(o.path)?.[1];
    if (!rule || base === undefined) continue;
    const override = rule.override;
    if (override !== undefined && occurrences.some((x) => x.resource === o.resource && x.path === `${base}.config.${override}` && String(x.value).trim() !== '')) continue;
    const how = override !== undefined ? ` (no config.${override} points it at an internal instance)` : '';
    out.push({ occ: o, host: rule.host, hint: `this ${rule.type} login connector signs people in through ${rule.host}${how}: point it at an internal instance or use an internal identity provider (LDAP, OIDC)` });
  }
  return out;
}

/** Audit rendered objects (pure). */
export function auditManifests(manifests: readonly Manifest[], o: ManifestAuditOptions = {}): AuditResult {
  const namespace = o.namespace ?? 'default';
  const namespaces = namespacesOf(manifests, namespace);
  const ctx = makeClassifyContext({ internalDomains: o.internalDomains, internalCidrs: o.internalCidrs, namespaces });
  const scan = scanManifests(manifests, namespace);
  const ownHosts = new Set(scan.occurrences.filter((o) => o.role === 'inbound').map((o) => String(o.value).trim().toLowerCase().replace(/\.$/, '')));
  for (const host of ownAddressHosts(scan.occurrences)) ownHosts.add(host);
  const set = new FindingSet(ctx, { apiGroups: apiGroupsOf(manifests), ownHosts });
  for (const occ of scan.occurrences) set.occurrence(occ);
  for (const c of connectorDefaults(scan.occurrences)) {
    set.add({ host: c.host, category: 'oauth-oidc', severity: 'high', rule: 'login-connector-default', resource: c.occ.resource, path: c.occ.path, value: showValue(c.occ.setting ?? c.occ.display, c.occ.key), hint: c.hint, ...(c.occ.origin !== undefined ? { origin: c.occ.origin } : {}) });
  }

  for (const p of o.problems ?? []) {
    set.add({ host: '', category: 'other', severity: 'low', rule: 'unparseable-manifest', resource: p.file, path: p.where, value: showValue(p.message, undefined), hint: 'fix the document so it parses; nothing in it was audited', origin: p.file });
  }
  for (const p of scan.problems) {
    set.add({ host: '', category: 'other', severity: 'info', rule: 'unparseable-config', resource: p.resource, path: p.path, value: showValue(p.message, undefined), hint: 'the embedded file was scanned as plain text instead; check that it is valid', ...(p.origin !== undefined ? { origin: p.origin } : {}) });
  }

  for (const s of impliedObjectStores(scan.occurrences)) {
    set.endpoint({ host: s.host, resource: s.resource, path: s.path, origin: s.origin, display: s.display, context: s.path, rule: s.rule, category: 'object-storage', severity: 'high', hint: s.hint });
  }

  for (const r of impliedReceivers(scan.occurrences)) {
    set.endpoint({ host: r.host, resource: r.resource, path: r.path, origin: r.origin, display: `${r.list}: no url, Alertmanager's default ${r.host}`, context: r.path, rule: 'alertmanager-receiver-default', category: 'other', severity: 'medium', hint: `Alertmanager sends these notifications to ${r.host} unless the entry (or the config's global section) names another URL: point it at an internal relay, or drop the receiver` });
  }

  for (const obj of scan.objects) {
    for (const r of IMPLICIT_RULES) {
      if (!r.kind.test(obj.kind) || !r.path.test(obj.dotPath)) continue;
      set.endpoint({ host: r.host, resource: obj.resource, path: obj.path, origin: obj.origin, display: obj.dotPath.slice(obj.dotPath.lastIndexOf('.') + 1), context: obj.dotPath, rule: r.id, category: r.category, severity: r.severity, hint: r.hint });
    }
  }

  // Images: the same extractor discover uses; an image from a registry outside is a finding.
  const byResource = new Map<string, unknown>();
  const images = extractImages(manifests, { namespace });
  for (const m of manifests) {
    const obj = m.object as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    if (typeof obj?.kind !== 'string') continue;
    const ns = typeof obj.metadata?.namespace === 'string' ? obj.metadata.namespace : namespace;
    byResource.set(`${obj.kind}/${ns}/${String(obj.metadata?.name ?? '?')}`, m.object);
  }
  for (const img of images.findings) {
    const registry = registryOf(img.reference);
    if (registry === undefined) continue;
    const host = registry.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '');
    for (const r of img.reasons) {
      const segments = splitPath(r.path);
      const raw = segments === undefined ? undefined : valueAt(byResource.get(r.resource), segments);
      const display = typeof raw === 'string' ? raw : img.reference;
      const port = /:([0-9]+)$/.exec(registry)?.[1];
      set.endpoint({
        host,
        ...(port !== undefined ? { port: Number(port) } : {}),
        resource: r.resource,
        path: r.path,
        origin: r.origin,
        display,
        context: r.path,
        rule: 'external-registry-image',
        category: 'registry',
        hint: `the image ${img.reference} comes from ${registry}: mirror it into the internal registry (airlock lock, pack, push) and point the reference there (airlock rewrite)`,
      });
    }
    for (const d of DEFAULT_ON_RULES) {
      if (!d.image.test(img.reference) || set.switchesSeen.has(d.switchRule)) continue;
      const r = img.reasons[0];
      if (!r) continue;
      set.add({ host: d.host, category: d.category, severity: d.severity, rule: d.id, resource: r.resource, path: r.path, value: img.reference, hint: d.hint, ...(r.origin !== undefined ? { origin: r.origin } : {}) });
    }
  }
  // Operators that run the product from a custom resource (grafana-operator's `Grafana`).
  for (const m of manifests) {
    const obj = m.object as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    if (typeof obj?.kind !== 'string' || typeof obj.apiVersion !== 'string') continue;
    const ns = typeof obj.metadata?.namespace === 'string' ? obj.metadata.namespace : namespace;
    for (const d of DEFAULT_ON_RULES) {
      if (!d.resource?.test(`${obj.apiVersion} ${obj.kind}`) || set.switchesSeen.has(d.switchRule)) continue;
      set.add({ host: d.host, category: d.category, severity: d.severity, rule: d.id, resource: `${obj.kind}/${ns}/${String(obj.metadata?.name ?? '?')}`, path: 'spec.config', value: `${obj.apiVersion} ${obj.kind}`, hint: d.hint, ...(m.origin !== undefined ? { origin: m.origin } : {}) });
    }
  }
  return { findings: set.findings(), references: set.references(), internal: set.internal, namespaces: [...namespaces].sort(), warnings: images.warnings };
}

/** Render or read the inputs and audit them. */
export async function auditInputs(o: AuditOptions): Promise<AuditResult> {
  // Bad --internal-* values fail before anything is rendered.
  makeClassifyContext({ internalDomains: o.internalDomains, internalCidrs: o.internalCidrs });
  const loaded = await loadManifests(o, 'audit');
  const result = auditManifests(loaded.manifests, {
    internalDomains: o.internalDomains,
    internalCidrs: o.internalCidrs,
    namespace: o.namespace ?? 'default',
    problems: loaded.problems,
  });
  const cwd = o.cwd ?? process.cwd();
  const [findings, references] = await Promise.all([withLines(result.findings, cwd), withLines(result.references, cwd)]);
  return { ...result, findings, references, warnings: [...loaded.warnings, ...result.warnings] };
}
