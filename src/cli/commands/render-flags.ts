// The helm flags (-f, --set, --kube-version, ...) of discover, audit, netpol and rewrite: one
// meaning everywhere, the way `helm template` takes them.
import type { RenderOptions } from '../../api/options.ts';

/** helm template flags, shared by every command that renders charts (rewrite takes one chart, no kubectl). */
export const chartFlags = {
  values: { type: 'string', short: 'f', multiple: true },
  set: { type: 'string', multiple: true },
  'set-string': { type: 'string', multiple: true },
  'kube-version': { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  'api-versions': { type: 'string', short: 'a', multiple: true },
  helm: { type: 'string' },
} as const;

export const renderOptions = { ...chartFlags, kubectl: { type: 'string' } } as const;

export const renderUsage = `Rendering (charts are rendered by helm exactly as \`airlock discover\` renders them, offline):
  -f, --values FILE         chart values (repeatable, like helm)
      --set K=V             set a chart value (repeatable)
      --set-string K=V      set a chart value as a string (repeatable)
      --kube-version V      Kubernetes version for Capabilities.KubeVersion
  -n, --namespace N         namespace to render into, and of resources naming none (default: default)
  -a, --api-versions X      extra API versions for Capabilities.APIVersions (repeatable)
      --helm PATH           the helm binary (default $AIRLOCK_HELM, else helm on PATH)
      --kubectl PATH        the kubectl binary for kustomize dirs (default $AIRLOCK_KUBECTL, else beside helm, else PATH)`;

export function strings(v: unknown): string[] {
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
}

/** The library's render options the flags give (each command adds its inputs). */
export function renderOptionsOf(values: Record<string, unknown>): RenderOptions {
  return {
    valuesFiles: strings(values.values),
    set: strings(values.set),
    setString: strings(values['set-string']),
    ...(typeof values['kube-version'] === 'string' ? { kubeVersion: values['kube-version'] } : {}),
    ...(typeof values.namespace === 'string' ? { namespace: values.namespace } : {}),
    apiVersions: strings(values['api-versions']),
    ...(typeof values.helm === 'string' ? { helm: values.helm } : {}),
    ...(typeof values.kubectl === 'string' ? { kubectl: values.kubectl } : {}),
  };
}
