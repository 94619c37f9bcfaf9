// The bundle format, version 1: one uncompressed tar holding an OCI image layout plus airlock's
// metadata. Entry order lets a streaming reader meet the metadata before any blob:
//
//   airlock/                 (every parent directory is an explicit entry, see write.ts)
//   airlock/bundle.json      BundleInfo: format version, tool, bundle name and version
//   airlock/inventory.json   Inventory: images, their platforms and blobs, sizes
//   airlock/airlock.lock     the lock file's exact text
//   oci-layout               {"imageLayoutVersion":"1.0.0"}
//   index.json               one descriptor per image, named by its full reference
//   blobs/ blobs/sha256/ …   every blob exactly once, sorted by digest
//
// Every JSON document is written with sorted keys and fixed formatting, every list sorted, so the
// same inputs give the same bytes on any machine.
import { IntegrityError, UsageError } from '../core/errors.ts';
import { type Digest, isDigest } from '../core/digest.ts';

export const BUNDLE_FORMAT_VERSION = 1;
export const BUNDLE_INFO_PATH = 'airlock/bundle.json';
export const INVENTORY_PATH = 'airlock/inventory.json';
export const LOCK_PATH = 'airlock/airlock.lock';
export const OCI_LAYOUT_PATH = 'oci-layout';
export const INDEX_PATH = 'index.json';
export const OCI_LAYOUT_VERSION = '1.0.0';
export const INVENTORY_SCHEMA_VERSION = 1;

/** index.json annotations that name an image: OCI (skopeo `oci-archive:f.tar:NAME`) and containerd (`ctr images import`). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

/** Metadata documents are small; more than this is not a bundle airlock wrote. */
export const MAX_METADATA_BYTES = 64 * 1024 * 1024;

/** `airlock/bundle.json` */
export interface BundleInfo {
  formatVersion: number;
  tool: { name: string; version: string };
  /** Bundle name and version from the spec (airlock.yaml). */
  name: string;
  version: string;
}

/** One platform of an image: `os/arch[/variant]` and the manifest that serves it. */
export interface InventoryPlatform {
  platform: string;
  digest: Digest;
}

export interface InventoryImage {
  /** Full reference string, e.g. `docker.io/library/nginx:1.27`; the name in index.json. */
  reference: string;
  /** The root manifest or index. */
  digest: Digest;
  mediaType: string;
  /** Size of the root manifest or index document. */
  size: number;
  /**
   * For an index: each child manifest with a platform (attestations with `unknown/unknown` left
   * out), sorted. For a single manifest: the platform its config names, if it names one.
   */
  platforms: InventoryPlatform[];
  /** Sum of the sizes of the unique blobs (manifests included) this image is made of. */
  totalSize: number;
}

export interface InventoryBlob {
  digest: Digest;
  size: number;
  /** Media type from the descriptor that references it (the smallest one if several differ). */
  mediaType: string;
  /** References of the images that use it, sorted. */
  images: string[];
}

/**
 * `airlock/inventory.json`: what the bundle holds, readable without touching a blob.
 * Lists are sorted: images by reference, platforms by platform then digest, blobs by digest.
 */
export interface Inventory {
  schemaVersion: number;
  images: InventoryImage[];
  blobs: InventoryBlob[];
  totals: {
    images: number;
    /** Number of unique blobs. */
    blobs: number;
    /** Bytes of unique blobs: about the bundle's size. */
    bytes: number;
    /** Sum of every image's totalSize: what the images would take without sharing. */
    imageBytes: number;
    /** imageBytes − bytes: saved by sharing blobs between images. */
    sharedBytes: number;
  };
}

/** JSON with keys sorted at every level, so equal values give equal bytes. */
export function canonicalJson(value: unknown, pretty: boolean): string {
  return JSON.stringify(sortKeys(value), null, pretty ? 2 : undefined) + (pretty ? '\n' : '');
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort()) if (o[k] !== undefined) out[k] = sortKeys(o[k]);
    return out;
  }
  return v;
}

/** Plain code-unit order: the same on every machine and locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Entry name of a blob inside the layout. */
export function blobPath(digest: Digest): string {
  const i = digest.indexOf(':');
  return `blobs/${digest.slice(0, i)}/${digest.slice(i + 1)}`;
}

// ---------------------------------------------------------------------------------------------
// Parsing what a bundle claims. Shape errors are IntegrityErrors naming the document.

function fail(what: string, why: string): IntegrityError {
  return new IntegrityError(`${what}: ${why}`, { code: 'BUNDLE_METADATA_INVALID', hint: 'the bundle is damaged or was not written by airlock' });
}

export function parseJsonDocument(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new IntegrityError(`${what}: not valid JSON`, { code: 'BUNDLE_METADATA_INVALID', cause: e });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSize(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function parseBundleInfo(doc: unknown, what: string): BundleInfo {
  if (!isObject(doc)) throw fail(what, 'not a JSON object');
  if (typeof doc.formatVersion !== 'number') throw fail(what, 'no formatVersion');
  if (doc.formatVersion > BUNDLE_FORMAT_VERSION) {
    throw new UsageError(`${what}: bundle format version ${doc.formatVersion} is newer than this airlock reads (${BUNDLE_FORMAT_VERSION})`, {
      code: 'BUNDLE_FORMAT_UNSUPPORTED',
      hint: 'use the airlock version that wrote the bundle (see tool.version in airlock/bundle.json) or a newer one',
    });
  }
  if (doc.formatVersion !== BUNDLE_FORMAT_VERSION) throw fail(what, `unknown formatVersion ${String(doc.formatVersion)}`);
  const tool = doc.tool;
  if (!isObject(tool) || typeof tool.name !== 'string' || typeof tool.version !== 'string') throw fail(what, 'no tool {name, version}');
  if (typeof doc.name !== 'string' || typeof doc.version !== 'string') throw fail(what, 'no bundle name or version');
  return { formatVersion: doc.formatVersion, tool: { name: tool.name, version: tool.version }, name: doc.name, version: doc.version };
}

export function parseInventory(doc: unknown, what: string): Inventory {
  if (!isObject(doc)) throw fail(what, 'not a JSON object');
  if (doc.schemaVersion !== INVENTORY_SCHEMA_VERSION) throw fail(what, `unsupported schemaVersion ${String(doc.schemaVersion)}`);
  if (!Array.isArray(doc.images) || !Array.isArray(doc.blobs) || !isObject(doc.totals)) throw fail(what, 'needs images, blobs and totals');
  doc.images.forEach((img: unknown, i) => {
    const w = `images[${i}]`;
    if (!isObject(img)) throw fail(what, `${w} is not an object`);
    if (typeof img.reference !== 'string') throw fail(what, `${w} has no reference`);
    if (typeof img.digest !== 'string' || !isDigest(img.digest)) throw fail(what, `${w} has no valid digest`);
    if (typeof img.mediaType !== 'string') throw fail(what, `${w} has no mediaType`);
    if (!isSize(img.size) || !isSize(img.totalSize)) throw fail(what, `${w} has no valid size or totalSize`);
    if (!Array.isArray(img.platforms)) throw fail(what, `${w} has no platforms list`);
    img.platforms.forEach((p: unknown, j) => {
      if (!isObject(p) || typeof p.platform !== 'string' || typeof p.digest !== 'string' || !isDigest(p.digest)) {
        throw fail(what, `${w}.platforms[${j}] needs platform and digest`);
      }
    });
  });
  doc.blobs.forEach((b: unknown, i) => {
    const w = `blobs[${i}]`;
    if (!isObject(b)) throw fail(what, `${w} is not an object`);
    if (typeof b.digest !== 'string' || !isDigest(b.digest)) throw fail(what, `${w} has no valid digest`);
    if (!isSize(b.size)) throw fail(what, `${w} has no valid size`);
    if (typeof b.mediaType !== 'string') throw fail(what, `${w} has no mediaType`);
    if (!Array.isArray(b.images) || !b.images.every((r) => typeof r === 'string')) throw fail(what, `${w} has no images list`);
  });
  const t = doc.totals;
  for (const k of ['images', 'blobs', 'bytes', 'imageBytes', 'sharedBytes']) if (!isSize(t[k])) throw fail(what, `totals.${k} is missing or invalid`);
  return doc as unknown as Inventory;
}

/** The totals an inventory's lists imply; verify compares them with what it claims. */
export function computeTotals(images: Pick<InventoryImage, 'totalSize'>[], blobs: Pick<InventoryBlob, 'size'>[]): Inventory['totals'] {
  const bytes = blobs.reduce((a, b) => a + b.size, 0);
  const imageBytes = images.reduce((a, i) => a + i.totalSize, 0);
  return { images: images.length, blobs: blobs.length, bytes, imageBytes, sharedBytes: imageBytes - bytes };
}
