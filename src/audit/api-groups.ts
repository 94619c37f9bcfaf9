// Kubernetes API group names (pure). `discovery.k8s.io`, `cert-manager.io` and
// `monitoring.coreos.com` look like host names and stand everywhere in rendered charts (RBAC
// resource lists, apiVersion, CRD names `prometheusrules.monitoring.coreos.com`, finalizers, label
// and annotation keys, kube-state-metrics and Argo CD configs), yet nothing connects to them. The
// groups the input itself uses are learnt from it, so a chart's own CRDs need no list entry.
import type { Manifest } from '../discover/types.ts';

type Obj = Record<string, unknown>;

/**
 * Domains under which names are API groups (or label prefixes) of well-known projects. Hosts
 * under them that really serve something are exceptions below.
 */
const GROUP_DOMAIN =
  /(^|\.)(k8s\.io|x-k8s\.io|kubernetes\.io|coreos\.com|cert-manager\.io|istio\.io|linkerd\.io|cilium\.io|projectcalico\.org|tigera\.io|argoproj\.io|fluxcd\.io|traefik\.io|traefik\.containo\.us|kyverno\.io|keda\.sh|knative\.dev|tekton\.dev|crossplane\.io|jaegertracing\.io|opentelemetry\.io|banzaicloud\.io|rook\.io|longhorn\.io|velero\.io|kubevirt\.io|strimzi\.io|external-secrets\.io|gatekeeper\.sh|openshift\.io|helm\.sh|prometheus\.io|grafana\.integreatly\.org|k8s\.elastic\.co|cnpg\.io|zalan\.do|k8s\.aws|gke\.io|kiali\.io|kubeflow\.org|ray\.io|kuma\.io|k8s\.nginx\.org|configuration\.konghq\.com|apisix\.apache\.org|kubeblocks\.io|chaos-mesh\.org|litmuschaos\.io|kubevela\.io|oam\.dev|dapr\.io|karpenter\.sh|metallb\.io|spiffe\.io|monitoring\.grafana\.com|loki\.grafana\.com|tempo\.grafana\.com|operator\.victoriametrics\.com|getambassador\.io|emissary-ingress\.dev)$/;

/** Names under those domains that are real services (registries, downloads, docs hosts people fetch from). */
const REAL_HOSTS = new Set([
  'registry.k8s.io', 'k8s.gcr.io', 'dl.k8s.io', 'cdn.dl.k8s.io', 'storage.googleapis.com', 'get.helm.sh', 'charts.helm.sh',
  'packages.cloud.google.com', 'apt.kubernetes.io', 'pkgs.k8s.io', 'prod-cdn.packages.k8s.io', 'quay.io',
  'charts.jetstack.io', 'charts.bitnami.com', 'helm.cilium.io', 'prometheus-community.github.io', 'grafana.github.io',
  'kubernetes-sigs.github.io', 'argoproj.github.io', 'fluxcd-community.github.io', 'istio-release.storage.googleapis.com',
  'collect.traefik.io', 'update.traefik.io', 'plugins.traefik.io', 'app.getambassador.io', 'api.getambassador.io',
]);

/** Shapes of names that serve downloads, charts or images even under a group domain. */
const SERVICE_SHAPE = /^(charts|helm|dl|download|downloads|get|releases|registry|cdn|pkgs?|packages|repo|artifacts|mirror|api|app|hub|ghcr|storage)\./;

/** The group of an `apiVersion` (`monitoring.coreos.com/v1` → `monitoring.coreos.com`; `v1` → none). */
function groupOf(apiVersion: unknown): string | undefined {
  if (typeof apiVersion !== 'string') return undefined;
  const slash = apiVersion.indexOf('/');
  if (slash <= 0) return undefined;
  const g = apiVersion.slice(0, slash).toLowerCase();
  return g.includes('.') ? g : undefined;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function collect(node: unknown, into: Set<string>, depth: number): void {
  if (depth > 32) return;
  if (Array.isArray(node)) {
    for (const n of node) collect(n, into, depth + 1);
    return;
  }
  if (!isObj(node)) return;
  for (const [k, v] of Object.entries(node)) {
    if (k === 'apiVersion') {
      const g = groupOf(v);
      if (g !== undefined) into.add(g);
    } else if ((k === 'apiGroups' || k === 'apiGroup') && (Array.isArray(v) || typeof v === 'string')) {
      for (const g of Array.isArray(v) ? v : [v]) if (typeof g === 'string' && g.includes('.')) into.add(g.toLowerCase());
    } else collect(v, into, depth + 1);
  }
}

/** Every API group the objects name: their apiVersions, CRD groups, RBAC and webhook apiGroups. */
export function apiGroupsOf(manifests: readonly Manifest[]): Set<string> {
  const groups = new Set<string>();
  for (const m of manifests) {
    collect(m.object, groups, 0);
    const o = m.object as { kind?: unknown; spec?: { group?: unknown } };
    if ((o?.kind === 'CustomResourceDefinition' || o?.kind === 'APIService') && typeof o.spec?.group === 'string') groups.add(o.spec.group.toLowerCase());
  }
  return groups;
}

/**
 * Is `host` (lowercase, no port) an API group name rather than an endpoint: a group the input
 * uses, `<plural>.<group>` (a CRD or resource name), or a name under a well-known group domain?
 */
export function isApiGroupName(host: string, groups: ReadonlySet<string>): boolean {
  if (REAL_HOSTS.has(host)) return false;
  if (groups.has(host)) return true;
  if (SERVICE_SHAPE.test(host)) return false;
  const dot = host.indexOf('.');
  if (dot > 0 && groups.has(host.slice(dot + 1))) return true;
  return GROUP_DOMAIN.test(host);
}
