// The namespaces an app uses (pure): where its namespaced objects go, and the Namespaces it creates.
import type { Manifest } from '../discover/types.ts';
import { CLUSTER_SCOPED } from './scan.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function visit(object: unknown, defaultNamespace: string, into: Set<string>, depth = 0): void {
  if (!isObj(object) || depth > 8) return;
  const kind = typeof object.kind === 'string' ? object.kind : '';
  if (/List$/.test(kind) && Array.isArray(object.items)) {
    for (const i of object.items) visit(i, defaultNamespace, into, depth + 1);
    return;
  }
  if (kind === '') return;
  const meta = isObj(object.metadata) ? object.metadata : {};
  if (kind === 'Namespace') {
    if (typeof meta.name === 'string') into.add(meta.name);
    return;
  }
  if (CLUSTER_SCOPED.has(kind) || /^Cluster[A-Z]/.test(kind)) return;
  into.add(typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : defaultNamespace);
}

/** Every namespace the objects live in or create; `defaultNamespace` for namespaced objects naming none. */
export function namespacesOf(manifests: readonly Manifest[], defaultNamespace = 'default'): Set<string> {
  const out = new Set<string>();
  for (const m of manifests) visit(m.object, defaultNamespace, out);
  return out;
}
