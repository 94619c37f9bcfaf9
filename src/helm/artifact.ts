// A chart as a Helm OCI artifact, exactly the shape `helm push` gives it: an OCI image manifest
// (no mediaType field) whose config is the chart metadata as JSON and whose one layer is the .tgz,
// with helm's annotations. The creation time comes from the archive (when Chart.yaml was
// packaged), not the clock, so the same archive always gives the same manifest digest.
import { digestOf } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import { MediaType } from '../core/media-types.ts';
import { helmConfigJson, helmManifestAnnotations, type ChartMetadata } from './chart-metadata.ts';
import { goJson } from './go-json.ts';

export { ARTIFACT_ANNOTATION, CHART_ARTIFACT } from './artifact-mark.ts';

export interface ChartArtifact {
  manifest: { descriptor: Descriptor; bytes: Buffer };
  config: { descriptor: Descriptor; bytes: Buffer };
  layer: Descriptor;
}

/** RFC 3339 in UTC, seconds precision, as Go's time.RFC3339 prints it. */
export function rfc3339(epochSeconds: number): string {
  const ms = Number.isFinite(epochSeconds) ? epochSeconds * 1000 : 0;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function buildChartArtifact(archive: Buffer, meta: ChartMetadata, packagedAt: number): ChartArtifact {
  const configBytes = Buffer.from(helmConfigJson(meta), 'utf8');
  const config: Descriptor = { mediaType: MediaType.helmConfig, digest: digestOf(configBytes), size: configBytes.length };
  const layer: Descriptor = { mediaType: MediaType.helmChart, digest: digestOf(archive), size: archive.length };
  const annotations = helmManifestAnnotations(meta, rfc3339(packagedAt));
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
  };
  if (Object.keys(annotations).length > 0) doc.annotations = annotations;
  const bytes = Buffer.from(goJson(doc), 'utf8');
  return {
    manifest: { descriptor: { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.length }, bytes },
    config: { descriptor: config, bytes: configBytes },
    layer,
  };
}
