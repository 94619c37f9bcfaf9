// The index.json annotation that marks a bundle entry as a Helm chart. Its own module, importing
// nothing, so push can tell charts from images without loading artifact.ts (yaml and semver:
// ~40 ms of start-up).

/** index.json annotation that marks a bundle entry as a Helm chart (value CHART_ARTIFACT). */
export const ARTIFACT_ANNOTATION = 'dev.airlock.artifact';
export const CHART_ARTIFACT = 'chart';
