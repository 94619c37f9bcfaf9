// What a bundle holds, from its metadata alone: the headers are scanned only up to
// airlock/inventory.json (the second entry), so this is instant on a bundle of any size.
import { resolve } from 'node:path';
import type { Digest } from '../core/digest.ts';
import { MediaType } from '../core/media-types.ts';
import { parseReference } from '../core/reference.ts';
import { BUNDLE_INFO_PATH, INVENTORY_PATH } from './format.ts';
import { entryTable, openFile, readMetadata } from './read.ts';
import { scanTar } from './tar.ts';

export interface BundleSummaryImage {
  reference: string;
  digest: Digest;
  mediaType: string;
  /** `os/arch[/variant]` of each platform the image carries, sorted. */
  platforms: string[];
  /** Bytes of the image's unique blobs (manifests, configs, layers). */
  size: number;
  /** Size of the root manifest or index document. */
  manifestSize: number;
}

/** A Helm chart in the bundle (an artifact whose config is a helm chart config). */
export interface BundleSummaryChart {
  reference: string;
  /** Chart name and version (the tag, with helm's "_" turned back into "+"). */
  name: string;
  version: string;
  /** The chart's OCI manifest. */
  digest: Digest;
  /** Bytes of its blobs (manifest, config, .tgz). */
  size: number;
}

export interface BundleSummary {
  path: string;
  name: string;
  version: string;
  toolVersion: string;
  formatVersion: number;
  /** Container images (charts are listed apart). */
  images: BundleSummaryImage[];
  charts: BundleSummaryChart[];
  totals: { images: number; blobs: number; bytes: number; sharedBytes: number };
  fileSize: number;
}

export async function inspectBundle(path: string): Promise<BundleSummary> {
  const abs = resolve(path);
  const fh = await openFile(abs);
  try {
    const { size } = await fh.stat();
    const wanted = new Set([BUNDLE_INFO_PATH, INVENTORY_PATH]);
    const { entries } = await scanTar(fh, size, abs, { until: (e) => wanted.delete(e.name) && wanted.size === 0 });
    const { bundleInfo, inventory } = await readMetadata(fh, abs, entryTable(entries), false);
    // A chart is told by its config's media type, which the inventory records: no blob is read.
    const charts = new Set<string>();
    for (const b of inventory.blobs) if (b.mediaType === MediaType.helmConfig) for (const r of b.images) charts.add(r);
    return {
      path: abs,
      name: bundleInfo.name,
      version: bundleInfo.version,
      toolVersion: bundleInfo.tool.version,
      formatVersion: bundleInfo.formatVersion,
      images: inventory.images.filter((i) => !charts.has(i.reference)).map((i) => ({
        reference: i.reference,
        digest: i.digest,
        mediaType: i.mediaType,
        platforms: [...new Set(i.platforms.map((p) => p.platform))],
        size: i.totalSize,
        manifestSize: i.size,
      })),
      charts: inventory.images
        .filter((i) => charts.has(i.reference))
        .map((i) => {
          const ref = parseReference(i.reference);
          return { reference: i.reference, name: ref.repository.slice(ref.repository.lastIndexOf('/') + 1), version: (ref.tag ?? '').replaceAll('_', '+'), digest: i.digest, size: i.totalSize };
        }),
      totals: { images: inventory.totals.images, blobs: inventory.totals.blobs, bytes: inventory.totals.bytes, sharedBytes: inventory.totals.sharedBytes },
      fileSize: size,
    };
  } finally {
    await fh.close();
  }
}
