// What a bundle holds, from its metadata alone: the headers are scanned only up to
// airlock/inventory.json (the second entry), so this is instant on a bundle of any size — and for a
// split bundle it reads only the first volume.
import { digestOf, type Digest } from '../core/digest.ts';
import { MediaType } from '../core/media-types.ts';
import { parseReference } from '../core/reference.ts';
import { BUNDLE_INFO_PATH, INVENTORY_PATH, MAX_METADATA_BYTES, parseJsonDocument, parseSignatureInfo, SIGNATURE_INFO_PATH, SIGNATURE_PATH, type InventoryDelta, type VolumeLayout } from './format.ts';
import { entryTable, openSource, readMetadata, readSmallEntry } from './read.ts';
import type { ByteSource } from './source.ts';
import { scanTar } from './tar.ts';
import { locateBundle } from './volumes.ts';

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
  /** Bytes of the tar (for a split bundle, of all its data volumes). */
  fileSize: number;
  /** sha256 of airlock/inventory.json: the bundle's identity. */
  inventoryDigest: Digest;
  /** A delta: its base, and the blobs and bytes it relies on from there. */
  delta?: { base: InventoryDelta['base']; blobs: number; bytes: number };
  /** A signed bundle: how, and by which key (checked only by verify --key). */
  signature?: { algorithm: string; key: string };
  /** A split bundle: its layout and volume files. */
  volumes?: VolumeLayout & { files: string[] };
}

export async function inspectBundle(spec: string | readonly string[]): Promise<BundleSummary> {
  const opened = await openSource(await locateBundle(spec), false);
  const src = opened.source;
  const abs = opened.path;
  try {
    const size = src.size;
    const wanted = new Set([BUNDLE_INFO_PATH, INVENTORY_PATH]);
    const { entries } = await scanTar(src, size, abs, { until: (e) => wanted.delete(e.name) && wanted.size === 0 });
    const { bundleInfo, inventory, inventoryBytes } = await readMetadata(src, abs, entryTable(entries), false);
    const signature = await readSignatureInfo(src, abs);
    // A chart is told by its config's media type, which the inventory records: no blob is read.
    const charts = new Set<string>();
    for (const b of [...inventory.blobs, ...(inventory.delta?.blobs ?? [])]) if (b.mediaType === MediaType.helmConfig) for (const r of b.images) charts.add(r);
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
      inventoryDigest: digestOf(inventoryBytes),
      ...(inventory.delta ? { delta: { base: inventory.delta.base, blobs: inventory.delta.blobs.length, bytes: inventory.delta.blobs.reduce((a, b) => a + b.size, 0) } } : {}),
      ...(signature ? { signature } : {}),
      ...(opened.volumes ? { volumes: { ...opened.volumes.layout, files: opened.volumes.files } } : {}),
    };
  } finally {
    await src.close();
  }
}

/** The signature entries follow the inventory; a bundle cut short right after it still inspects. */
async function readSignatureInfo(src: ByteSource, abs: string): Promise<{ algorithm: string; key: string } | undefined> {
  try {
    let seen = false;
    const { entries } = await scanTar(src, src.size, abs, {
      until: (e) => {
        if (e.name === SIGNATURE_INFO_PATH) return true;
        if (seen && e.name !== SIGNATURE_PATH) return true;
        seen ||= e.name === INVENTORY_PATH;
        return false;
      },
    });
    const e = entries.at(-1);
    if (e?.name !== SIGNATURE_INFO_PATH) return undefined;
    const what = `${abs}: ${SIGNATURE_INFO_PATH}`;
    const info = parseSignatureInfo(parseJsonDocument(await readSmallEntry(src, e, MAX_METADATA_BYTES, what), what), what);
    return { algorithm: info.algorithm, key: info.key };
  } catch {
    return undefined;
  }
}
