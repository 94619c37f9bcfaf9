// The archive a chart is carried as: its upstream .tgz untouched when every dependency is already
// in its charts/ folder; otherwise rebuilt with each missing dependency's .tgz added to charts/
// as `helm dependency build` would put it there (recursively: a dependency that itself lacks
// dependencies is rebuilt the same way first). Rebuilt archives are deterministic.
import type { LoadedChart } from './chart-load.ts';
import { writeChartTgz } from './chart-tgz.ts';

export interface ArchiveNode {
  /** The archive as published (or as airlock packaged a folder). */
  bytes: Buffer;
  chart: LoadedChart;
  deps: ArchiveDep[];
}

export interface ArchiveDep {
  name: string;
  version: string;
  /** Absent when the dependency is vendored in the parent's charts/ already. */
  node?: ArchiveNode;
}

/** File name helm dependency build gives a downloaded dependency. */
export function vendoredFileName(name: string, version: string): string {
  return `charts/${name}-${version}.tgz`;
}

export function materialize(node: ArchiveNode): Buffer {
  const missing = node.deps.filter((d) => d.node !== undefined);
  if (missing.length === 0) return node.bytes;
  const files = new Map<string, Uint8Array>(node.chart.files.map((f) => [f.path, f.data]));
  for (const d of missing) files.set(vendoredFileName(d.name, d.version), materialize(d.node!));
  return writeChartTgz(node.chart.root, [...files].map(([path, data]) => ({ path, data })));
}
