// What discovery finds: each image with every reason it is needed.

/** Where an image reference was seen. */
export type ReasonSource = 'pod-spec' | 'cr-image-field' | 'args' | 'env' | 'configmap' | 'chart-annotation' | 'values';

export const REASON_SOURCES: readonly ReasonSource[] = ['pod-spec', 'cr-image-field', 'args', 'env', 'configmap', 'chart-annotation', 'values'];

export interface Reason {
  source: ReasonSource;
  /** `Kind/namespace/name` for rendered resources, `Chart/name` for chart annotations and values. */
  resource: string;
  /** Where inside the resource: a YAML path like `spec.template.spec.initContainers[0].image`, or a values path. */
  path: string;
  /** The chart the resource was rendered from (or whose values/annotations list it). */
  chart?: string;
  /** The template (`shop/charts/db/templates/job.yaml`) or manifest file it came from. */
  origin?: string;
}

export interface OptionalInfo {
  /** The values path that would switch the image on (`metrics.enabled`), or where the image is set ('' when not known). */
  valuesPath: string;
  /** Every values key that must be on for it, outermost first (`persistence.enabled`, `volumePermissions.enabled`); valuesPath is the first. */
  switches?: string[];
  hint: string;
}

export interface Finding {
  /** Fully qualified, normalised: `docker.io/library/busybox:latest`. */
  reference: string;
  reasons: Reason[];
  /** Present when no rendered resource uses the image with the current values. */
  optional?: OptionalInfo;
}

/** One parsed YAML document and where it came from. */
export interface Manifest {
  object: unknown;
  /** Template path (from helm's `# Source:` comment) or file path. */
  origin?: string;
}

export interface ExtractContext {
  /** Chart the manifests were rendered from. */
  chart?: string;
  /** Namespace for resources that name none (helm's --namespace; `default` when not given). */
  namespace?: string;
}

export interface ExtractResult {
  findings: Finding[];
  /** Things that looked like images in image fields but did not parse (a broken chart value, a typo). */
  warnings: string[];
}
