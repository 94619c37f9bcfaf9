// Options every verb shares.
import type { RenderInputOptions } from '../discover/sources.ts';
import type { Session } from './session.ts';

export interface BaseOptions {
  /** Stops the work: the promise rejects with AbortedError and nothing is left half-written. */
  signal?: AbortSignal | undefined;
  /** Settings, clients and the event sink to use; verbs that need one build (and close) their own without it. */
  session?: Session | undefined;
}

export interface EventOptions<E> {
  /** Progress and warnings of this call (default: the session's sink). */
  onEvent?: ((event: E) => void) | undefined;
}

/** How charts are rendered (the way `helm template` takes these). */
export interface RenderOptions {
  /** Values files, in order (like helm -f). */
  valuesFiles?: string[] | undefined;
  /** `key.path=value` (like helm --set). */
  set?: string[] | undefined;
  /** `key.path=value`, values kept as strings (like helm --set-string). */
  setString?: string[] | undefined;
  /** Kubernetes version for Capabilities.KubeVersion. */
  kubeVersion?: string | undefined;
  /** Namespace to render into, and of resources that name none (default `default`). */
  namespace?: string | undefined;
  /** Extra API versions for Capabilities.APIVersions. */
  apiVersions?: string[] | undefined;
  /** The helm binary (default $AIRLOCK_HELM, else helm on PATH). */
  helm?: string | undefined;
  /** The kubectl binary for kustomize directories (default $AIRLOCK_KUBECTL, else beside helm, else on PATH). */
  kubectl?: string | undefined;
  /** Base of relative paths, and of the paths shown in results (default: the current directory). */
  cwd?: string | undefined;
}

/** The render settings of a verb's options, for the renderer (inputs are added by each verb). */
export function renderSettings(o: RenderOptions & { signal?: AbortSignal | undefined }): Omit<RenderInputOptions, 'inputs'> {
  return {
    valuesFiles: o.valuesFiles ?? [],
    set: o.set ?? [],
    setString: o.setString ?? [],
    apiVersions: o.apiVersions ?? [],
    ...(o.kubeVersion !== undefined ? { kubeVersion: o.kubeVersion } : {}),
    ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
    ...(o.helm !== undefined ? { helm: o.helm } : {}),
    ...(o.kubectl !== undefined ? { kubectl: o.kubectl } : {}),
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    ...(o.signal !== undefined ? { signal: o.signal } : {}),
  };
}
