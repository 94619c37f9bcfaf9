// Every value in rendered objects that could name an endpoint or switch phoning home (pure), each
// with where it stands. What is read: container args/command (shell scripts too), env, ConfigMap
// data and the config files inside it, annotations that configure behaviour, Service externalName,
// Ingress hosts (inbound), and every field of custom resources (a ClusterIssuer's ACME server).
// Secrets are read too (alerting configs live there: kube-prometheus-stack's Alertmanager), but
// their occurrences are marked secret and no value from them is ever shown, only the host and where.
// What is not: schemas (CRDs), RBAC, labels and
// selectors, names, and fields that only identify things.
import { declaredFormat, parseConfig, sniffFormat, type ConfigEntry, type Scalar } from './config-formats.ts';
import { joinPath } from '../discover/values-path.ts';
import { DOC_ANNOTATION, isDashboard, isDetectionRules, isNotificationTemplate, isRuleText, REFERENCE_RULES, type ReferenceRule } from './references.ts';
import type { Manifest } from '../discover/types.ts';

type Obj = Record<string, unknown>;

export type OccurrenceRole = 'text' | 'host' | 'inbound';

export interface Occurrence {
  resource: string;
  kind: string;
  origin?: string;
  path: string;
  /** Key path for rules: `spec.acme.server`, `GF_ANALYTICS_REPORTING_ENABLED`, `analytics.reporting_enabled`. */
  keyPath: string;
  /** The key the value stands under (env name, field, config key), a hint that it is a host. */
  key?: string;
  value: Scalar;
  /** What a finding shows: the value, or the one line it came from. */
  display: string;
  /** How a switch reads when shown (`GF_ANALYTICS_REPORTING_ENABLED=true`, `reporting_enabled = true`). */
  setting?: string;
  role: OccurrenceRole;
  /** Set when the structure around the value says it is meant for people (a dashboard, an alert's annotations). */
  human?: ReferenceRule;
  /** The value stands in a Secret: it may be shown by host and place only. */
  secret?: boolean;
  /**
   * An env var filled from a ConfigMap (`valueFrom.configMapKeyRef`): the key it was read from.
   * The value is judged as a setting under the env var's name; its addresses are reported where
   * they stand, in the ConfigMap.
   */
  fromConfigMapKey?: string;
}

export interface ScanProblem {
  rule: 'unparseable-config';
  resource: string;
  origin?: string;
  path: string;
  message: string;
}

export interface ScanResult {
  occurrences: Occurrence[];
  problems: ScanProblem[];
  /** Objects whose path matched something implicit (see IMPLICIT_RULES), for the caller. */
  objects: { resource: string; kind: string; origin?: string; path: string; dotPath: string }[];
}

/** Kinds whose strings describe the cluster or identify things, never where an app connects. */
const SKIP_KINDS = new Set([
  'CustomResourceDefinition', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding', 'NetworkPolicy', 'Namespace',
  'ServiceAccount', 'LimitRange', 'ResourceQuota', 'PriorityClass', 'StorageClass', 'PodDisruptionBudget', 'Lease',
  'APIService', 'CSIDriver', 'RuntimeClass', 'IngressClass', 'PodSecurityPolicy', 'SecurityContextConstraints',
  'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'FlowSchema', 'PriorityLevelConfiguration',
  'HorizontalPodAutoscaler', 'VerticalPodAutoscaler', 'PersistentVolumeClaim', 'VolumeSnapshotClass',
]);

export const CLUSTER_SCOPED = new Set([
  'Namespace', 'Node', 'PersistentVolume', 'StorageClass', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition',
  'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'APIService', 'PriorityClass', 'IngressClass',
  'RuntimeClass', 'CSIDriver', 'CSINode', 'VolumeSnapshotClass', 'PodSecurityPolicy', 'ClusterIssuer', 'GatewayClass',
  'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'FlowSchema', 'PriorityLevelConfiguration',
  'SecurityContextConstraints', 'ClusterPolicy', 'ClusterSecretStore', 'ClusterTask',
]);

/** Fields that identify, select or describe things: their values are not endpoints. */
const SKIP_KEYS = new Set([
  'description', 'summary', 'email', 'emails', 'emailAddresses', 'dnsNames', 'commonName', 'uris', 'ipAddresses',
  'hostname', 'subdomain', 'hostAliases', 'nodeName', 'serviceAccountName', 'serviceAccount', 'name', 'namespace',
  'apiVersion', 'apiGroup', 'apiGroups', 'group', 'kind', 'labels', 'matchLabels', 'matchExpressions', 'selector',
  'nodeSelector', 'affinity', 'tolerations', 'clusterIP', 'clusterIPs', 'externalIPs', 'loadBalancerIP',
  'loadBalancerSourceRanges', 'podCIDR', 'podCIDRs', 'mountPath', 'subPath', 'image', 'imagePullPolicy',
  'imagePullSecrets', 'securityContext', 'resources', 'volumeMounts', 'secretName', 'secretKeyRef', 'configMapKeyRef',
  'fieldRef', 'resourceFieldRef', 'finalizers', 'ownerReferences', 'managedFields', 'conditions', 'storageClassName',
  'priorityClassName', 'schedulerName', 'runtimeClassName', 'topologyKey', 'topologySpreadConstraints', 'hostnames',
  'status', 'privateKeySecretRef', 'secretRef', 'caBundle', 'mountPropagation', 'path', 'hostPath', 'emailAddress',
  'owner', 'owners', 'maintainers', 'homepage', 'icon', 'documentation', 'docs', 'title', 'help',
]);

/** Annotations that track things or name the resource's own names: neither endpoints nor links. */
const SKIP_ANNOTATION = /^(kubectl\.kubernetes\.io\/last-applied-configuration|checksum\/|meta\.helm\.sh\/|helm\.sh\/|deployment\.kubernetes\.io\/|external-dns\.alpha\.kubernetes\.io\/|cert-manager\.io\/(common-name|alt-names|ip-sans|uri-sans|email-sans|inject-ca-from|issuer|cluster-issuer))/i;

const MAX_DEPTH = 64;
const MAX_LINES = 20_000;

/** Config-file directives whose arguments are server addresses. */
const DIRECTIVE = /^(forward|nameserver|resolver|upstream_servers?|proxy_pass|grpc_pass|fastcgi_pass|uwsgi_pass|server)\s+(.{1,2000})$/;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function resourceId(object: Obj, defaultNamespace: string): string {
  const kind = typeof object.kind === 'string' ? object.kind : '?';
  const meta = isObj(object.metadata) ? object.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '?';
  if (CLUSTER_SCOPED.has(kind)) return `${kind}/${name}`;
  const ns = typeof meta.namespace === 'string' ? meta.namespace : defaultNamespace;
  return `${kind}/${ns}/${name}`;
}

interface Where {
  resource: string;
  kind: string;
  origin?: string | undefined;
  secret?: boolean;
  namespace?: string;
}

/** Secret types that hold keys, tokens and registry logins, never configuration. */
const CREDENTIAL_SECRET = /^(kubernetes\.io\/(tls|service-account-token|dockercfg|dockerconfigjson|basic-auth|ssh-auth)|bootstrap\.kubernetes\.io\/token|helm\.sh\/release\.v1)$/;

/** A Secret's `data` value as text, when it is text (certificates and binaries are not configuration). */
function decodeSecret(v: string): string | undefined {
  if (!/^[A-Za-z0-9+/=\s]{0,8000000}$/.test(v)) return undefined;
  const text = Buffer.from(v, 'base64').toString('utf8');
  if (/[\uFFFD\u0000-\u0008\u000E-\u001F]/.test(text) || /-----BEGIN [A-Z ]*(KEY|CERTIFICATE)-----/.test(text)) return undefined;
  return text;
}

class Scanner {
  readonly occurrences: Occurrence[] = [];
  readonly problems: ScanProblem[] = [];
  readonly objects: ScanResult['objects'] = [];
  /** ConfigMaps' `data` by `namespace/name`, for env vars that read a key of one. */
  readonly configMaps: Map<string, Obj>;

  constructor(configMaps: Map<string, Obj> = new Map()) {
    this.configMaps = configMaps;
  }

  occ(w: Where, o: Omit<Occurrence, 'resource' | 'kind' | 'origin'>): void {
    const base: Occurrence = { resource: w.resource, kind: w.kind, ...o };
    if (w.origin !== undefined) base.origin = w.origin;
    if (w.secret === true) base.secret = true;
    this.occurrences.push(base);
  }

  document(object: unknown, origin: string | undefined, namespace: string, depth = 0): void {
    if (!isObj(object) || depth > 8) return;
    const kind = typeof object.kind === 'string' ? object.kind : '';
    if (/List$/.test(kind) && Array.isArray(object.items)) {
      for (const item of object.items) this.document(item, origin, namespace, depth + 1);
      return;
    }
    if (kind === '' || SKIP_KINDS.has(kind)) return;
    const meta = isObj(object.metadata) ? object.metadata : {};
    const w: Where = { resource: resourceId(object, namespace), kind, origin, namespace: typeof meta.namespace === 'string' ? meta.namespace : namespace };
    if (isObj(meta.annotations)) {
      for (const [k, v] of Object.entries(meta.annotations)) {
        if (typeof v !== 'string' || SKIP_ANNOTATION.test(k)) continue;
        this.string(w, v, joinPath('metadata.annotations', k), k, k, undefined, DOC_ANNOTATION.test(k) ? REFERENCE_RULES.docAnnotation : undefined);
      }
    }
    if (kind === 'Secret') {
      if (typeof object.type === 'string' && CREDENTIAL_SECRET.test(object.type)) return;
      const sw: Where = { ...w, secret: true };
      for (const field of ['stringData', 'data'] as const) {
        const data = object[field];
        if (!isObj(data)) continue;
        for (const [k, v] of Object.entries(data)) {
          const text = typeof v !== 'string' ? undefined : field === 'data' ? decodeSecret(v) : v;
          if (text !== undefined) this.string(sw, text, joinPath(field, k), k, k, declaredFormat(k));
        }
      }
      return;
    }
    if (kind === 'ConfigMap') {
      for (const field of ['data'] as const) {
        const data = object[field];
        if (!isObj(data)) continue;
        for (const [k, v] of Object.entries(data)) {
          if (typeof v === 'string') this.string(w, v, joinPath(field, k), k, k, declaredFormat(k));
        }
      }
      return;
    }
    const spec = isObj(object.spec) ? object.spec : {};
    if (kind === 'Service') {
      if (typeof spec.externalName === 'string') this.occ(w, { path: 'spec.externalName', keyPath: 'spec.externalName', key: 'externalName', value: spec.externalName, display: spec.externalName, role: 'host' });
      return;
    }
    if (kind === 'Ingress') {
      const rules = Array.isArray(spec.rules) ? spec.rules : [];
      rules.forEach((r, i) => {
        if (isObj(r) && typeof r.host === 'string') this.occ(w, { path: `spec.rules[${i}].host`, keyPath: 'spec.rules.host', key: 'host', value: r.host, display: r.host, role: 'inbound' });
      });
      const tls = Array.isArray(spec.tls) ? spec.tls : [];
      tls.forEach((t, i) => {
        if (!isObj(t) || !Array.isArray(t.hosts)) return;
        t.hosts.forEach((h, j) => {
          if (typeof h === 'string') this.occ(w, { path: `spec.tls[${i}].hosts[${j}]`, keyPath: 'spec.tls.hosts', key: 'host', value: h, display: h, role: 'inbound' });
        });
      });
      return;
    }
    for (const [k, v] of Object.entries(object)) {
      if (k === 'metadata' || k === 'status' || k === 'apiVersion' || k === 'kind') continue;
      this.walk(w, v, k, k, [k], 1);
    }
  }

  walk(w: Where, node: unknown, key: string, path: string, keys: string[], depth: number): void {
    if (depth > MAX_DEPTH || SKIP_KEYS.has(key)) return;
    if (Array.isArray(node)) {
      if ((key === 'args' || key === 'command') && node.every((s) => typeof s === 'string')) {
        this.argv(w, node as string[], path, keys);
        return;
      }
      if (node.length > 0 && node.every((e) => isObj(e) && typeof e.name === 'string' && ('value' in e || 'valueFrom' in e))) {
        this.env(w, node as Obj[], path);
        return;
      }
      node.forEach((item, i) => this.walk(w, item, key, joinPath(path, i), keys, depth + 1));
      return;
    }
    if (isObj(node)) {
      this.objects.push({ resource: w.resource, kind: w.kind, ...(w.origin !== undefined ? { origin: w.origin } : {}), path, dotPath: keys.join('.') });
      for (const [k, v] of Object.entries(node)) this.walk(w, v, k, joinPath(path, k), [...keys, k], depth + 1);
      return;
    }
    const human = isRuleText(keys.join('.')) ? REFERENCE_RULES.alertRule : undefined;
    if (typeof node === 'string') this.string(w, node, path, keys.join('.'), key, undefined, human);
    else if (typeof node === 'boolean' || typeof node === 'number') {
      this.occ(w, { path, keyPath: keys.join('.'), key, value: node, display: String(node), setting: `${key}: ${String(node)}`, role: 'text', ...(human ? { human } : {}) });
    }
  }

  /** Container args/command: each item, with `--flag value` pairs and lone boolean flags seen as settings. */
  argv(w: Where, items: string[], path: string, keys: string[]): void {
    items.forEach((item, i) => {
      const itemPath = joinPath(path, i);
      const prev = items[i - 1];
      const flagKey = prev !== undefined && /^-{1,2}[A-Za-z][A-Za-z0-9_.-]{0,80}$/.test(prev) ? prev : undefined;
      if (/^-{1,2}[A-Za-z][A-Za-z0-9_.-]{0,80}$/.test(item)) {
        const next = items[i + 1];
        // A lone flag followed by another flag (or nothing) is a boolean switched on.
        if (next === undefined || next.startsWith('-')) this.occ(w, { path: itemPath, keyPath: item, key: item, value: true, display: item, setting: item, role: 'text' });
        return;
      }
      if (flagKey !== undefined && !item.includes('\n')) {
        this.occ(w, { path: itemPath, keyPath: flagKey, key: flagKey, value: item, display: item, setting: `${flagKey} ${item}`, role: 'text' });
        return;
      }
      this.lines(w, item, itemPath, keys.join('.'), undefined);
    });
  }

  env(w: Where, list: Obj[], path: string): void {
    list.forEach((e, i) => {
      const name = e.name as string;
      const ref = isObj(e.valueFrom) && isObj(e.valueFrom.configMapKeyRef) ? e.valueFrom.configMapKeyRef : undefined;
      if (ref !== undefined && typeof ref.name === 'string' && typeof ref.key === 'string') {
        const data = this.configMaps.get(`${w.namespace ?? ''}/${ref.name}`);
        const v = data?.[ref.key];
        if (typeof v === 'string' && !v.includes('\n')) {
          const shown = `${name}=${v} (ConfigMap ${ref.name}, key ${ref.key})`;
          this.occ(w, { path: `${joinPath(path, i)}.valueFrom.configMapKeyRef`, keyPath: name, key: name, value: v, display: shown, setting: shown, role: 'text', fromConfigMapKey: ref.key });
        }
        return;
      }
      if (typeof e.value !== 'string') return;
      const p = `${joinPath(path, i)}.value`;
      if (e.value.includes('\n') || /^\s*[{[]/.test(e.value)) this.string(w, e.value, p, name, name, undefined);
      else this.occ(w, { path: p, keyPath: name, key: name, value: e.value, display: e.value, setting: `${name}=${e.value}`, role: 'text' });
    });
  }

  /** A string value: a config document when it is one, its lines when it is a script, else itself. */
  string(w: Where, value: string, path: string, keyPath: string, key: string, declared: ReturnType<typeof declaredFormat>, humanIn?: ReferenceRule): void {
    const multi = /\n/.test(value.trim());
    const human = humanIn ?? (isNotificationTemplate(value) ? REFERENCE_RULES.template : undefined);
    const h = human ? { human } : {};
    if (!multi && declared === undefined && !/^\s*[{[]/.test(value)) {
      this.occ(w, { path, keyPath, key, value, display: value, setting: `${key}: ${value}`, role: 'text', ...h });
      return;
    }
    const format = declared ?? sniffFormat(value);
    if (format === 'text') {
      if (multi) this.lines(w, value, path, keyPath, key, human);
      else this.occ(w, { path, keyPath, key, value, display: value, setting: `${key}: ${value}`, role: 'text', ...h });
      return;
    }
    const parsed = parseConfig(format, value);
    if ('error' in parsed) {
      // A parser's message may quote the text: from a Secret, only that it does not parse.
      const why = w.secret === true ? '(details not shown: the file is in a Secret)' : parsed.error;
      this.problems.push({ rule: 'unparseable-config', resource: w.resource, ...(w.origin !== undefined ? { origin: w.origin } : {}), path, message: `${format.toUpperCase()} does not parse: ${why}` });
      this.lines(w, value, path, keyPath, key, human);
      return;
    }
    const structured = format === 'json' || format === 'yaml';
    const dashboard = structured && isDashboard(parsed.entries) ? REFERENCE_RULES.dashboard : structured && isDetectionRules(parsed.entries) ? REFERENCE_RULES.detectionRule : human;
    for (const entry of parsed.entries) this.entry(w, entry, path, dashboard);
  }

  entry(w: Where, e: ConfigEntry, base: string, humanIn?: ReferenceRule): void {
    let path = base;
    const keys: string[] = [];
    for (const seg of e.path) {
      path = joinPath(path, seg);
      if (typeof seg === 'string') keys.push(seg);
    }
    const key = keys[keys.length - 1] ?? '';
    const display = e.raw ?? (e.value === null ? 'null' : String(e.value));
    const human = humanIn ?? (isRuleText(keys.join('.')) ? REFERENCE_RULES.alertRule : undefined);
    if (typeof e.value === 'string' && /\n/.test(e.value.trim())) {
      this.lines(w, e.value, path, keys.join('.'), key, human);
      return;
    }
    if (e.value === null) return;
    this.occ(w, { path, keyPath: keys.join('.'), key, value: e.value, display, setting: e.raw ?? `${keys.join('.')}: ${display}`, role: 'text', ...(human ? { human } : {}) });
  }

  /** Text line by line (scripts, configs of unknown shape); comment lines are not configuration. */
  lines(w: Where, text: string, path: string, keyPath: string, key: string | undefined, human?: ReferenceRule): void {
    const h = human ? { human } : {};
    const lines = text.split(/\r?\n/);
    const single = lines.filter((l) => l.trim() !== '').length <= 1;
    // Inside an XML `<!-- -->` or C `/* */` block comment (license headers with their URLs).
    let comment: '-->' | '*/' | undefined;
    lines.slice(0, MAX_LINES).forEach((line, i) => {
      let t = line.trim();
      if (comment !== undefined) {
        const end = t.indexOf(comment);
        if (end < 0) return;
        t = t.slice(end + comment.length).trim();
        comment = undefined;
      }
      for (const [open, close] of [['<!--', '-->'], ['/*', '*/']] as const) {
        const at = t.indexOf(open);
        if (at >= 0 && t.indexOf(close, at + open.length) < 0 && (at === 0 || open === '<!--')) {
          comment = close;
          t = t.slice(0, at).trim();
        }
      }
      if (t === '' || /^(#|\/\/|;|--\s|\*|<!--)/.test(t)) return;
      const p = single ? path : `${path} (line ${i + 1})`;
      // Settings written as NAME=value, --flag=value or `key = value` on the line.
      const assign = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]{0,100})(?:\s*=\s*|:\s+)(.+)$/.exec(t);
      const occKey = assign ? assign[1]! : key;
      this.occ(w, { path: p, keyPath: assign ? `${keyPath}.${assign[1]!}` : keyPath, ...(occKey !== undefined ? { key: occKey } : {}), value: assign ? assign[2]!.trim() : t, display: t, setting: t, role: 'text', ...h });
      if (!assign) {
        // Flags and assignments inside a command line: `app --telemetry=true`, `env DO_NOT_TRACK=0 app`.
        for (const m of t.matchAll(/(?:^|\s)(-{1,2}[A-Za-z][A-Za-z0-9_.-]{0,80}|[A-Za-z_][A-Za-z0-9_]{0,80})=("[^"]{0,200}"|'[^']{0,200}'|[^\s"';&|]{1,200})/g)) {
          this.occ(w, { path: p, keyPath: m[1]!, key: m[1]!, value: m[2]!.replace(/^["']|["']$/g, ''), display: t, setting: `${m[1]!}=${m[2]!}`, role: 'text', ...h });
        }
        const flags = [...t.matchAll(/(?:^|\s)(--[A-Za-z][A-Za-z0-9_.-]{0,80})(?=\s+-|\s*$)/g)];
        for (const m of flags) this.occ(w, { path: p, keyPath: m[1]!, key: m[1]!, value: true, display: t, setting: m[1]!, role: 'text', ...h });
        // Directives whose arguments are servers (CoreDNS `forward . 8.8.8.8`, resolv.conf, nginx
        // `proxy_pass`/`server`): each argument stands under the directive, so a bare address counts.
        const directive = DIRECTIVE.exec(t);
        if (directive) {
          for (const arg of directive[2]!.split(/\s+/).slice(0, 32)) {
            const v = arg.replace(/;$/, '');
            if (v !== '' && v !== '.' && !v.startsWith('{')) this.occ(w, { path: p, keyPath: directive[1]!, key: directive[1]!, value: v, display: t, setting: t, role: 'text', ...h });
          }
        }
      }
    });
  }
}

/** Scan rendered objects. `namespace` names resources that carry none (helm's --namespace). */
export function scanManifests(docs: readonly Manifest[], namespace = 'default'): ScanResult {
  const configMaps = new Map<string, Obj>();
  const index = (o: unknown, depth = 0): void => {
    if (!isObj(o) || depth > 8) return;
    if (typeof o.kind === 'string' && /List$/.test(o.kind) && Array.isArray(o.items)) {
      for (const item of o.items) index(item, depth + 1);
      return;
    }
    if (o.kind !== 'ConfigMap' || !isObj(o.data)) return;
    const meta = isObj(o.metadata) ? o.metadata : {};
    if (typeof meta.name !== 'string') return;
    configMaps.set(`${typeof meta.namespace === 'string' ? meta.namespace : namespace}/${meta.name}`, o.data);
  };
  for (const d of docs) index(d.object);
  const s = new Scanner(configMaps);
  for (const d of docs) s.document(d.object, d.origin, namespace);
  return { occurrences: s.occurrences, problems: s.problems, objects: s.objects };
}
