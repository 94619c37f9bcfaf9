// The bundle format: one uncompressed tar holding an OCI image layout plus airlock's metadata.
// Entry order lets a streaming reader meet the metadata before any blob:
//
//   airlock/                    (every parent directory is an explicit entry, see write.ts)
//   airlock/bundle.json         BundleInfo: format version, tool, bundle name and version, volumes
//   airlock/inventory.json      Inventory: images, their platforms and blobs, sizes, the lock's and
//                               index.json's digests, and for a delta its base: the bundle's identity
//                               (its digest is the "inventory digest") and the signed payload
//   airlock/inventory.json.sig  (signed bundles) the raw signature over inventory.json's exact bytes
//   airlock/signature.json      (signed bundles) SignatureInfo: algorithm and key fingerprint
//   airlock/airlock.lock        the lock file's exact text
//   airlock/tools/<os>-<arch>/  (pack --with-tools) the airlock executable and the pinned helm for
//                               each platform, mode 0755, each listed in the inventory (tools.ts)
//   oci-layout                  {"imageLayoutVersion":"1.0.0"}
//   index.json                  one descriptor per image, named by its full reference
//   blobs/ blobs/sha256/ …      every blob it carries exactly once, sorted by digest
//   airlock/volumes.json        (split bundles) the last entry: per-volume checksums (volumes.ts)
//
// A delta (`pack --since`) carries every manifest but only the other blobs its base lacks; the
// inventory lists those it relies on under `delta`. Every JSON document is written with sorted keys
// and fixed formatting, every list sorted, so the same inputs give the same bytes on any machine.
//
// A bundle that carries tools is format version 2: an airlock that reads only version 1 refuses it
// as newer than it reads, where its verify would otherwise report every tool entry as damage (an
// intact bundle called tampered); every other bundle stays version 1, byte for byte. A bundle that
// carries files (`files:`, as OCI artifacts listed under the inventory's `files`) is version 3, for
// the same reason: an older verify would call its inventory tampered.
import { IntegrityError, UsageError } from '../core/errors.ts';
import { type Digest, isDigest } from '../core/digest.ts';

/** The newest format this airlock reads and writes. */
export const BUNDLE_FORMAT_VERSION = 3;
/** What a bundle without tools is: unchanged since the first format. */
export const PLAIN_FORMAT_VERSION = 1;
/** A bundle that carries tools (airlock/tools/). */
export const TOOLS_FORMAT_VERSION = 2;
/** A bundle that carries files (the inventory lists `files`), with or without tools. */
export const FILES_FORMAT_VERSION = 3;
export const BUNDLE_INFO_PATH = 'airlock/bundle.json';
export const INVENTORY_PATH = 'airlock/inventory.json';
export const LOCK_PATH = 'airlock/airlock.lock';
export const OCI_LAYOUT_PATH = 'oci-layout';
export const INDEX_PATH = 'index.json';
export const SIGNATURE_PATH = 'airlock/inventory.json.sig';
export const SIGNATURE_INFO_PATH = 'airlock/signature.json';
export const VOLUMES_PATH = 'airlock/volumes.json';
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
  /** Split bundles only: how the tar is cut into volumes (see volumes.ts). */
  volumes?: VolumeLayout;
}

/** `b.tar.001` … `b.tar.NNN`: every volume `size` bytes but the last; `parity` recovery volumes beside them. */
export interface VolumeLayout {
  /** Bytes of every volume but the last. */
  size: number;
  count: number;
  /** Bytes of the whole tar (the sum of the volumes). */
  totalSize: number;
  /** Recovery volumes written with them (`b.tar.par01` …). */
  parity: number;
}

/**
 * `airlock/signature.json`: how inventory.json was signed — a claim anyone can copy from another
 * bundle. Only a key the user gives establishes the signer, and signature.json must then name it.
 */
export interface SignatureInfo {
  algorithm: string;
  /** `sha256:<hex>` of the signing key's public key (SPKI DER). */
  key: string;
  /** The signed payload's entry (always airlock/inventory.json). */
  payload: string;
  /** The entry with the raw signature bytes. */
  signature: string;
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
  /**
   * Present when `digest` is an index reduced to the spec's platforms: the upstream index it was
   * cut from (same media type), carried as a blob so a pin to its digest still resolves (serve,
   * export; push offers it first). Never walked: the platforms it lists beyond the reduced
   * index's are absent. Its size counts in totalSize.
   */
  original?: InventoryOriginal;
  /**
   * Present when the entry is not an image but refers to one (a signature, attestation, SBOM, or the
   * referrers tag schema's index): what it refers to and what it is. From index.json's annotations.
   */
  referrer?: InventoryReferrer;
}

/** What a carried referrer refers to (an image's root, a platform manifest, or another referrer) and what it is. */
export interface InventoryReferrer {
  subject: Digest;
  /** signature, attestation, sbom, artifact, or referrers-index. */
  kind: string;
  /** Its OCI artifactType, when the lock knew it. */
  artifactType?: string;
}

/** The upstream index of an image whose index the bundle carries reduced. */
export interface InventoryOriginal {
  digest: Digest;
  size: number;
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
  /** The blobs the bundle carries (for a delta: not the ones it relies on). */
  blobs: InventoryBlob[];
  totals: {
    images: number;
    /** Number of unique blobs carried. */
    blobs: number;
    /** Bytes of unique blobs carried: about the bundle's size. */
    bytes: number;
    /** Sum of every image's totalSize: what the images would take without sharing. */
    imageBytes: number;
    /** imageBytes − bytes (− the delta's relied-on bytes): saved by sharing blobs between images. */
    sharedBytes: number;
  };
  /** The lock the bundle was packed from (its exact text is airlock/airlock.lock). */
  lock?: { name: string; version: string; digest: Digest; size: number };
  /** index.json's digest and size, so a signature over the inventory pins it too. */
  index?: { digest: Digest; size: number };
  /** Present in a delta bundle: the base it was packed against and the blobs it takes from there. */
  delta?: InventoryDelta;
  /** Present when the bundle carries tools (pack --with-tools): each executable, sorted by path. */
  tools?: InventoryTool[];
  /** Present when the bundle carries files (`files:` in airlock.yaml): each one, sorted by name. */
  files?: InventoryFile[];
}

/**
 * A file the bundle carries as an OCI artifact (src/files/artifact.ts): its layer is the file's
 * bytes. Derived from the artifact's manifest, so verify derives it again.
 */
export interface InventoryFile {
  /** Its name: what `extract --files` writes and `serve` offers at /files/<name>. */
  name: string;
  /** The artifact's name in index.json: `localhost/files/<repository>:<tag>`. */
  reference: string;
  /** sha256 of the file's bytes (its layer's digest). */
  digest: Digest;
  size: number;
  /** Permission bits, four octal digits: `0755`. */
  mode: string;
  /** The spec's version, when it gave one (the tag). */
  version?: string;
}

/** An executable the bundle carries at `path`: the airlock executable or the pinned helm of a platform. */
export interface InventoryTool {
  /** `os/arch`, e.g. `linux/amd64`. */
  platform: string;
  /** `airlock` or `helm`: the file's name under its platform's folder. */
  name: string;
  /** The tar entry: `airlock/tools/<os>-<arch>/<name>`. */
  path: string;
  /** sha256 of its bytes (what `sha256sum` prints, with `sha256:` before it). */
  digest: Digest;
  size: number;
}

export interface InventoryDelta {
  /** The base bundle: the digest of its airlock/inventory.json, its name and version. */
  base: { inventory: Digest; name: string; version: string };
  /** Blobs the images need that the bundle does not carry (the base has them), sorted by digest. Never manifests. */
  blobs: InventoryBlob[];
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

/** Where tools are carried: one folder per platform. */
export const TOOLS_DIR = 'airlock/tools';
/** `os/arch` of a carried tool: lowercase letters and digits, no variant. */
export const TOOL_PLATFORM_FORM = /^[a-z0-9]+\/[a-z0-9]+$/;
/** A carried tool's file name. */
export const TOOL_NAME_FORM = /^[a-z0-9][a-z0-9._-]*$/;

/** The folder of a platform's tools: `airlock/tools/linux-amd64`. */
export function toolDir(platform: string): string {
  return `${TOOLS_DIR}/${platform.replace('/', '-')}`;
}

/** Entry name of a carried tool: `airlock/tools/linux-amd64/airlock`. */
export function toolPath(platform: string, name: string): string {
  return `${toolDir(platform)}/${name}`;
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
  if (doc.formatVersion !== PLAIN_FORMAT_VERSION && doc.formatVersion !== TOOLS_FORMAT_VERSION && doc.formatVersion !== FILES_FORMAT_VERSION) throw fail(what, `unknown formatVersion ${String(doc.formatVersion)}`);
  const tool = doc.tool;
  if (!isObject(tool) || typeof tool.name !== 'string' || typeof tool.version !== 'string') throw fail(what, 'no tool {name, version}');
  if (typeof doc.name !== 'string' || typeof doc.version !== 'string') throw fail(what, 'no bundle name or version');
  const info: BundleInfo = { formatVersion: doc.formatVersion, tool: { name: tool.name, version: tool.version }, name: doc.name, version: doc.version };
  if (doc.volumes !== undefined) {
    const v = doc.volumes;
    if (!isObject(v) || !isSize(v.size) || !isSize(v.count) || !isSize(v.totalSize) || !isSize(v.parity) || v.size === 0 || v.count === 0) {
      throw fail(what, 'volumes needs size, count, totalSize and parity');
    }
    info.volumes = { size: v.size, count: v.count, totalSize: v.totalSize, parity: v.parity };
  }
  return info;
}

export function parseSignatureInfo(doc: unknown, what: string): SignatureInfo {
  if (!isObject(doc) || typeof doc.algorithm !== 'string' || typeof doc.key !== 'string' || typeof doc.payload !== 'string' || typeof doc.signature !== 'string') {
    throw fail(what, 'needs algorithm, key, payload and signature');
  }
  return { algorithm: doc.algorithm, key: doc.key, payload: doc.payload, signature: doc.signature };
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
    if (img.original !== undefined) {
      const o = img.original;
      if (!isObject(o) || typeof o.digest !== 'string' || !isDigest(o.digest) || !isSize(o.size)) throw fail(what, `${w}.original needs digest and size`);
    }
    if (img.referrer !== undefined) {
      const r = img.referrer;
      if (!isObject(r) || typeof r.subject !== 'string' || !isDigest(r.subject) || typeof r.kind !== 'string' || (r.artifactType !== undefined && typeof r.artifactType !== 'string')) {
        throw fail(what, `${w}.referrer needs subject (a digest) and kind`);
      }
    }
    img.platforms.forEach((p: unknown, j) => {
      if (!isObject(p) || typeof p.platform !== 'string' || typeof p.digest !== 'string' || !isDigest(p.digest)) {
        throw fail(what, `${w}.platforms[${j}] needs platform and digest`);
      }
    });
  });
  const checkBlobs = (list: unknown[], where: string): void =>
    list.forEach((b: unknown, i) => {
      const w = `${where}[${i}]`;
      if (!isObject(b)) throw fail(what, `${w} is not an object`);
      if (typeof b.digest !== 'string' || !isDigest(b.digest)) throw fail(what, `${w} has no valid digest`);
      if (!isSize(b.size)) throw fail(what, `${w} has no valid size`);
      if (typeof b.mediaType !== 'string') throw fail(what, `${w} has no mediaType`);
      if (!Array.isArray(b.images) || !b.images.every((r) => typeof r === 'string')) throw fail(what, `${w} has no images list`);
    });
  checkBlobs(doc.blobs, 'blobs');
  if (doc.lock !== undefined) {
    const l = doc.lock;
    if (!isObject(l) || typeof l.name !== 'string' || typeof l.version !== 'string' || typeof l.digest !== 'string' || !isDigest(l.digest) || !isSize(l.size)) {
      throw fail(what, 'lock needs name, version, digest and size');
    }
  }
  if (doc.index !== undefined) {
    const x = doc.index;
    if (!isObject(x) || typeof x.digest !== 'string' || !isDigest(x.digest) || !isSize(x.size)) throw fail(what, 'index needs digest and size');
  }
  if (doc.delta !== undefined) {
    const d = doc.delta;
    if (!isObject(d) || !isObject(d.base) || !Array.isArray(d.blobs)) throw fail(what, 'delta needs base and blobs');
    const b = d.base;
    if (typeof b.inventory !== 'string' || !isDigest(b.inventory) || typeof b.name !== 'string' || typeof b.version !== 'string') {
      throw fail(what, 'delta.base needs inventory (a digest), name and version');
    }
    checkBlobs(d.blobs, 'delta.blobs');
  }
  if (doc.tools !== undefined) {
    if (!Array.isArray(doc.tools)) throw fail(what, 'tools must be a list');
    doc.tools.forEach((t: unknown, i) => {
      const w = `tools[${i}]`;
      if (!isObject(t) || typeof t.platform !== 'string' || typeof t.name !== 'string' || typeof t.path !== 'string') throw fail(what, `${w} needs platform, name and path`);
      if (!TOOL_PLATFORM_FORM.test(t.platform)) throw fail(what, `${w}.platform "${t.platform.slice(0, 40)}" is not os/arch`);
      if (!TOOL_NAME_FORM.test(t.name)) throw fail(what, `${w}.name "${t.name.slice(0, 40)}" is not a file name airlock writes`);
      if (t.path !== toolPath(t.platform, t.name)) throw fail(what, `${w}.path must be ${toolPath(t.platform, t.name)}`);
      if (typeof t.digest !== 'string' || !isDigest(t.digest) || !t.digest.startsWith('sha256:')) throw fail(what, `${w} has no valid sha256 digest`);
      if (!isSize(t.size)) throw fail(what, `${w} has no valid size`);
    });
  }
  if (doc.files !== undefined) {
    if (!Array.isArray(doc.files)) throw fail(what, 'files must be a list');
    doc.files.forEach((f: unknown, i) => {
      const w = `files[${i}]`;
      if (!isObject(f) || typeof f.name !== 'string' || typeof f.reference !== 'string' || typeof f.mode !== 'string') throw fail(what, `${w} needs name, reference and mode`);
      if (typeof f.digest !== 'string' || !isDigest(f.digest) || !f.digest.startsWith('sha256:')) throw fail(what, `${w} has no valid sha256 digest`);
      if (!isSize(f.size)) throw fail(what, `${w} has no valid size`);
      if (f.version !== undefined && typeof f.version !== 'string') throw fail(what, `${w}.version must be a string`);
    });
  }
  const t = doc.totals;
  for (const k of ['images', 'blobs', 'bytes', 'imageBytes', 'sharedBytes']) if (!isSize(t[k])) throw fail(what, `totals.${k} is missing or invalid`);
  return doc as unknown as Inventory;
}

/** The totals an inventory's lists imply; verify compares them with what it claims. */
export function computeTotals(images: Pick<InventoryImage, 'totalSize'>[], blobs: Pick<InventoryBlob, 'size'>[], relied: Pick<InventoryBlob, 'size'>[] = []): Inventory['totals'] {
  const bytes = blobs.reduce((a, b) => a + b.size, 0);
  const reliedBytes = relied.reduce((a, b) => a + b.size, 0);
  const imageBytes = images.reduce((a, i) => a + i.totalSize, 0);
  return { images: images.length, blobs: blobs.length, bytes, imageBytes, sharedBytes: imageBytes - bytes - reliedBytes };
}

/** Every blob the images are made of: carried, plus (for a delta) relied on from the base. */
export function allBlobs(inv: Inventory): InventoryBlob[] {
  return inv.delta ? [...inv.blobs, ...inv.delta.blobs] : inv.blobs;
}
