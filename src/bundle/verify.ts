// Verifying a bundle: every blob's size and digest (streamed, in parallel, on worker threads for
// big bundles), every manifest's children present, and the inventory, index.json and the tar's
// entries telling the same story. Problems are collected into a report that names each bad blob and
// the images using it; only a tar too damaged or unsafe to read throws (IntegrityError).
//
// Beyond the content: the tar must be in the exact form airlock writes (every header, padding and
// the end-of-archive blocks as encoded, every JSON document canonical, the lock and index.json
// matching the digests the inventory pins), so that with a signature over the inventory no byte of
// the bundle can change unnoticed — only airlock/bundle.json's tool version is informational.
//
// A delta (pack --since) verifies on its own structurally: what it relies on from its base is
// reported, not counted missing. `base` checks it against its base bundle(s) — the identity and that
// every relied-on blob is there; `complete` demands a self-sufficient bundle (a delta fails).
// Split bundles are checked volume by volume first (volume-check.ts), then as one tar.
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { isDigest, digestAlgorithm, digestOf, type Digest } from '../core/digest.ts';
import { AirlockError, throwIfAborted } from '../core/errors.ts';
import { isManifestDescriptor, MAX_MANIFEST_BYTES, type Descriptor } from '../core/manifest.ts';
import { mapLimit } from '../util/limiter.ts';
import { ManifestCache, walkGraph } from '../content/graph.ts';
import { loadVerifyingKey, verifyPayload, type VerifyingKey } from '../sign/keys.ts';
import {
  BUNDLE_INFO_PATH,
  blobPath,
  canonicalJson,
  compareStrings,
  computeTotals,
  CONTAINERD_NAME_ANNOTATION,
  INDEX_PATH,
  INVENTORY_PATH,
  LOCK_PATH,
  OCI_LAYOUT_PATH,
  OCI_LAYOUT_VERSION,
  REF_NAME_ANNOTATION,
  SIGNATURE_INFO_PATH,
  SIGNATURE_PATH,
  VOLUMES_PATH,
  type Inventory,
  type InventoryDelta,
} from './format.ts';
import { hasherFor } from './hash-pool.ts';
import { PARITY_MAGIC } from './parity.ts';
import { openBundle, type Bundle, type BundleEntry } from './read.ts';
import type { PositionedReader } from './source.ts';
import { BLOCK, END_OF_ARCHIVE, encodeHeader, paddingFor } from './tar.ts';
import { checkVolumes, describeVolumeProblems, type VolumeSetReport } from './volume-check.ts';
import { locateBundle, parseVolumeTable, sameLayout, tableLayout, trailerPlace, type BundleFiles } from './volumes.ts';

export interface VerifyProblem {
  digest?: string;
  entry?: string;
  /** Split bundles: the volume file(s) the problem is in. */
  volume?: string;
  /** References of the images affected, sorted. */
  images: string[];
  message: string;
}

export interface VerifyDeltaReport {
  /** The base the delta names. */
  base: InventoryDelta['base'];
  /** Blobs and bytes it relies on from the base. */
  blobs: number;
  bytes: number;
  /** The base bundle(s) it was checked against; absent when none was given. */
  checkedAgainst?: string[];
}

export interface VerifySignatureReport {
  signed: boolean;
  algorithm?: string;
  /** Fingerprint of the key the bundle says signed it. */
  key?: string;
  /** True only when checked with a key given by the user, and it holds. */
  verified: boolean;
}

export interface VerifyReport {
  ok: boolean;
  /** Blobs hashed. */
  blobs: number;
  /** Bytes hashed. */
  bytes: number;
  problems: VerifyProblem[];
  /** A delta bundle: what it relies on, and whether that was checked. */
  delta?: VerifyDeltaReport;
  /** A signed bundle, or a key given. */
  signature?: VerifySignatureReport;
  /** A split bundle: the state of each volume and recovery volume. */
  volumes?: VolumeSetReport;
}

export interface VerifyBundleOptions {
  /** Blobs hashed at once (default: the number of cores). */
  concurrency?: number;
  /**
   * Worker threads for hashing: 0 hashes on the main thread; default 'auto' uses one per core
   * (up to `concurrency`) when the blobs add up to 64 MiB or more.
   */
  threads?: number | 'auto';
  signal?: AbortSignal | undefined;
  /** Bytes hashed so far of the total (volumes first for a split bundle, then blobs). */
  onProgress?: ((e: { done: number; total: number; phase?: 'volumes' | 'blobs' }) => void) | undefined;
  /** The base bundle(s) of a delta: its base, and for a chain of deltas the bases' bases. */
  base?: readonly (string | readonly string[])[] | undefined;
  /** Demand a self-sufficient bundle: a delta fails. */
  complete?: boolean | undefined;
  /** The public key (a path, or loaded) the bundle must be signed with. */
  key?: string | VerifyingKey | undefined;
}

const PROGRESS_STEP = 4 * 1024 * 1024;
const METADATA = new Set([BUNDLE_INFO_PATH, INVENTORY_PATH, LOCK_PATH, OCI_LAYOUT_PATH, INDEX_PATH, SIGNATURE_PATH, SIGNATURE_INFO_PATH, VOLUMES_PATH]);
const BLOB_ENTRY = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/;

/**
 * Verify a bundle: its file, or for a split bundle its shared name, any volume, or all of them.
 * A plain bundle too damaged to read throws IntegrityError; a split one reports which volumes.
 */
export async function verifyBundle(spec: string | readonly string[], opts: VerifyBundleOptions = {}): Promise<VerifyReport> {
  const key = typeof opts.key === 'string' ? await loadVerifyingKey(opts.key) : opts.key;
  const o = { ...opts, key };
  const files = await locateBundle(spec);
  if (files.kind === 'file') {
    const bundle = await openBundle(files, { signal: opts.signal });
    try {
      return await verifyOpen(bundle, o);
    } finally {
      await bundle.close();
    }
  }
  return await verifyVolumes(files, o);
}

async function verifyVolumes(files: Extract<BundleFiles, { kind: 'volumes' }>, opts: VerifyBundleOptions & { key?: VerifyingKey | undefined }): Promise<VerifyReport> {
  const check = await checkVolumes(files, { ...opts, onProgress: opts.onProgress ? (p) => opts.onProgress!({ ...p, phase: 'volumes' }) : undefined });
  const volumeProblems: VerifyProblem[] = describeVolumeProblems(check.report).map((p) => ({ entry: basename(p.file), volume: p.file, images: [], message: p.message }));
  let inner: VerifyReport = { ok: true, blobs: 0, bytes: 0, problems: [] };
  if (check.report.readable) {
    try {
      const bundle = await openBundle(files, { signal: opts.signal });
      try {
        inner = await verifyOpen(bundle, opts);
      } finally {
        await bundle.close();
      }
    } catch (e) {
      throwIfAborted(opts.signal);
      if (!(e instanceof AirlockError)) throw e;
      inner.problems.push({ entry: basename(files.base), images: [], message: `the tar cannot be read across the volumes: ${e.message}` });
    }
  } else {
    inner.problems.push({ entry: basename(files.base), images: [], message: 'the content was not checked: volumes are missing or cut short' });
  }
  const problems = [...volumeProblems, ...inner.problems];
  return { ...inner, ok: problems.length === 0, problems, volumes: check.report };
}

async function verifyOpen(bundle: Bundle, opts: VerifyBundleOptions & { key?: VerifyingKey | undefined }): Promise<VerifyReport> {
  const { signal } = opts;
  const problems: VerifyProblem[] = [];
  const inv = bundle.inventory;
  const relied = new Map((inv.delta?.blobs ?? []).map((b) => [b.digest as string, b]));

  const blobEntries = tarBlobEntries(bundle, problems);
  const signature = await checkMetadata(bundle, opts.key, problems);
  const invBlobs = checkInventoryBlobs(inv, blobEntries, relied, problems);
  checkInventoryTotals(inv, problems);
  const roots = checkIndex(bundle, problems);

  // Image graphs: every manifest's children present.
  const graph = await walkImages(bundle, roots, blobEntries, relied, signal);
  checkGraph(graph, inv, blobEntries, relied, problems);
  checkReliedManifests(relied, problems);
  const delta = inv.delta ? await checkDelta(inv.delta, opts, problems, signal) : undefined;

  const imagesOf = (d: string): string[] => [...new Set([...(graph.usedBy.get(d) ?? []), ...(invBlobs.get(d)?.images ?? [])])].sort(compareStrings);
  const hashed = await hashBlobs(bundle, blobEntries, opts);
  checkBlobDigests(hashed.results, imagesOf, problems);

  nameImagesAndVolumes(bundle, problems, imagesOf);
  problems.sort((a, b) => compareStrings(a.entry ?? a.digest ?? '', b.entry ?? b.digest ?? '') || compareStrings(a.message, b.message));
  throwIfAborted(signal);
  return {
    ok: problems.length === 0,
    blobs: hashed.results.size,
    bytes: hashed.bytes,
    problems,
    ...(delta ? { delta } : {}),
    ...(signature ? { signature } : {}),
  };
}

/** The tar's blob entries by digest; any other entry that is not airlock metadata is a problem. */
function tarBlobEntries(bundle: Bundle, problems: VerifyProblem[]): Map<Digest, BundleEntry> {
  const blobEntries = new Map<Digest, BundleEntry>();
  for (const [name, e] of bundle.entries) {
    if (METADATA.has(name)) continue;
    const m = BLOB_ENTRY.exec(name);
    const d = m ? `${m[1]}:${m[2]}` : '';
    if (isDigest(d)) blobEntries.set(d, e);
    else problems.push({ entry: name, images: [], message: 'unexpected entry: neither a blob of the OCI layout nor airlock metadata' });
  }
  return blobEntries;
}

/** Metadata that must be there and say what the inventory pins, in the form airlock writes; the signature. */
async function checkMetadata(bundle: Bundle, key: VerifyingKey | undefined, problems: VerifyProblem[]): Promise<VerifySignatureReport | undefined> {
  if (bundle.lockText === undefined) {
    problems.push({ entry: LOCK_PATH, images: [], message: `missing: the bundle has no ${LOCK_PATH}, so what it holds cannot be traced to a lock` });
  }
  await checkOciLayout(bundle, problems);
  await checkPins(bundle, problems);
  await checkCanonical(bundle, problems);
  return checkSignature(bundle, key, problems);
}

/** Inventory ⇔ tar entries: each listed blob carried once with its size, each carried blob listed. */
function checkInventoryBlobs(
  inv: Inventory,
  blobEntries: ReadonlyMap<Digest, BundleEntry>,
  relied: ReadonlyMap<string, unknown>,
  problems: VerifyProblem[],
): Map<string, { size: number; images: string[] }> {
  const invBlobs = new Map<string, { size: number; images: string[] }>();
  for (const b of inv.blobs) {
    if (invBlobs.has(b.digest)) problems.push({ digest: b.digest, entry: INVENTORY_PATH, images: b.images, message: 'listed twice in the inventory' });
    invBlobs.set(b.digest, b);
    const e = blobEntries.get(b.digest);
    if (!e) problems.push({ digest: b.digest, entry: blobPath(b.digest), images: b.images, message: 'missing: listed in the inventory but not in the bundle' });
    else if (e.size !== b.size) problems.push({ digest: b.digest, entry: blobPath(b.digest), images: b.images, message: `size mismatch: ${e.size} bytes in the bundle, the inventory says ${b.size}` });
  }
  for (const d of blobEntries.keys()) {
    if (relied.has(d)) problems.push({ digest: d, entry: blobPath(d), images: [], message: 'carried, but the inventory lists it as relied on from the base' });
    else if (!invBlobs.has(d)) problems.push({ digest: d, entry: blobPath(d), images: [], message: 'not listed in the inventory' });
  }
  return invBlobs;
}

function checkInventoryTotals(inv: Inventory, problems: VerifyProblem[]): void {
  const totals = computeTotals(inv.images, inv.blobs, inv.delta?.blobs);
  for (const k of Object.keys(totals) as (keyof typeof totals)[]) {
    if (totals[k] !== inv.totals[k]) problems.push({ entry: INVENTORY_PATH, images: [], message: `totals.${k} is ${inv.totals[k]}, its lists add up to ${totals[k]}` });
  }
}

/** index.json ⇔ inventory: each image named once, alike for OCI tools and containerd, as the inventory pins it. Its roots. */
function checkIndex(bundle: Bundle, problems: VerifyProblem[]): { reference: string; root: Descriptor }[] {
  const inv = bundle.inventory;
  const invImages = new Map(inv.images.map((i) => [i.reference, i]));
  const indexRefs = new Set<string>();
  const roots: { reference: string; root: Descriptor }[] = [];
  bundle.index.manifests.forEach((d, i) => {
    const ctrName = d.annotations?.[CONTAINERD_NAME_ANNOTATION];
    const refName = d.annotations?.[REF_NAME_ANNOTATION];
    const name = ctrName ?? refName;
    if (name === undefined) {
      problems.push({ digest: d.digest, entry: INDEX_PATH, images: [], message: `manifests[${i}] has no image name (${REF_NAME_ANNOTATION} / ${CONTAINERD_NAME_ANNOTATION})` });
      return;
    }
    if (ctrName !== refName) {
      problems.push({ digest: d.digest, entry: INDEX_PATH, images: [name], message: `manifests[${i}] names the image "${String(refName)}" for OCI tools but "${String(ctrName)}" for containerd` });
    }
    if (indexRefs.has(name)) problems.push({ digest: d.digest, entry: INDEX_PATH, images: [name], message: `the image ${name} is listed twice` });
    indexRefs.add(name);
    roots.push({ reference: name, root: d });
    const img = invImages.get(name);
    if (!img) problems.push({ digest: d.digest, entry: INDEX_PATH, images: [name], message: 'the image is in index.json but not in the inventory' });
    else if (img.digest !== d.digest || img.size !== d.size) {
      problems.push({ digest: d.digest, entry: INDEX_PATH, images: [name], message: `index.json says ${d.digest} (${d.size} bytes), the inventory says ${img.digest} (${img.size} bytes)` });
    }
  });
  for (const img of inv.images) {
    if (!indexRefs.has(img.reference)) problems.push({ digest: img.digest, entry: INVENTORY_PATH, images: [img.reference], message: 'the image is in the inventory but not in index.json' });
  }
  return roots;
}

/**
 * What the walk found, and against the inventory: each image's size; when every manifest could be
 * read, every carried blob used and every relied-on blob used.
 */
function checkGraph(
  graph: GraphResult,
  inv: Inventory,
  blobEntries: ReadonlyMap<Digest, BundleEntry>,
  relied: ReadonlyMap<string, { digest: string; images: string[] }>,
  problems: VerifyProblem[],
): void {
  problems.push(...graph.problems);
  const invImages = new Map(inv.images.map((i) => [i.reference, i]));
  for (const [ref, size] of graph.totalSizes) {
    const img = invImages.get(ref);
    if (img && !graph.incomplete && img.totalSize !== size) {
      problems.push({ digest: img.digest, entry: INVENTORY_PATH, images: [ref], message: `the inventory says the image has ${img.totalSize} bytes, its manifests add up to ${size}` });
    }
  }
  if (graph.incomplete) return;
  for (const d of blobEntries.keys()) {
    if (!graph.usedBy.has(d)) problems.push({ digest: d, entry: blobPath(d), images: [], message: 'not referenced by any image in index.json' });
  }
  for (const r of relied.values()) {
    if (!graph.usedBy.has(r.digest)) problems.push({ digest: r.digest, entry: INVENTORY_PATH, images: r.images, message: 'listed as relied on from the base, but no image uses it' });
  }
}

function checkReliedManifests(relied: ReadonlyMap<string, { digest: string; mediaType: string; images: string[] }>, problems: VerifyProblem[]): void {
  for (const r of relied.values()) {
    if (isManifestDescriptor({ mediaType: r.mediaType })) {
      problems.push({ digest: r.digest, entry: INVENTORY_PATH, images: r.images, message: 'a manifest listed as relied on from the base: a delta carries every manifest' });
    }
  }
}

/** Every blob's bytes: the digest it hashes to, or why it cannot be read. */
function checkBlobDigests(results: ReadonlyMap<string, string>, imagesOf: (d: string) => string[], problems: VerifyProblem[]): void {
  for (const [d, result] of results) {
    if (result === d) continue;
    problems.push({
      digest: d,
      entry: blobPath(d as Digest),
      images: imagesOf(d),
      message: result.startsWith('error:') ? `unreadable: ${result.slice(6)}` : `digest mismatch: the content hashes to ${result}`,
    });
  }
}

/** Problems found by several checks about the same blob keep every image named; a split bundle's name the volume(s). */
function nameImagesAndVolumes(bundle: Bundle, problems: VerifyProblem[], imagesOf: (d: string) => string[]): void {
  for (const p of problems) if (p.digest && p.images.length === 0) p.images = imagesOf(p.digest);
  if (!bundle.volumes) return;
  for (const p of problems) {
    const e = p.entry !== undefined ? bundle.entries.get(p.entry) : undefined;
    if (e) p.volume = bundle.describe(e.offset, e.size);
  }
}

/** The signature, checked only against a key the user gives; problems when that fails or is impossible. */
function checkSignature(bundle: Bundle, key: VerifyingKey | undefined, problems: VerifyProblem[]): VerifySignatureReport | undefined {
  const sig = bundle.signature;
  if (!sig && !key) return undefined;
  if (!sig) {
    problems.push({ entry: SIGNATURE_PATH, images: [], message: `missing: the bundle is not signed, and the key given (${key!.path}) demands a signature` });
    return { signed: false, verified: false };
  }
  const report: VerifySignatureReport = { signed: true, algorithm: sig.info.algorithm, key: sig.info.key, verified: false };
  if (sig.info.payload !== INVENTORY_PATH || sig.info.signature !== SIGNATURE_PATH) {
    problems.push({ entry: SIGNATURE_INFO_PATH, images: [], message: `names the payload ${sig.info.payload} and signature ${sig.info.signature}; airlock signs ${INVENTORY_PATH} into ${SIGNATURE_PATH}` });
  }
  if (!key) return report;
  if (verifyPayload(key, bundle.inventoryBytes, sig.bytes)) {
    report.verified = true;
    return report;
  }
  problems.push({
    entry: SIGNATURE_PATH,
    images: [],
    message:
      sig.info.key !== key.fingerprint
        ? `signed by another key: ${sig.info.key}; the key given (${key.path}) is ${key.fingerprint}`
        : `the signature does not match ${INVENTORY_PATH}: the inventory or the signature was changed after signing`,
  });
  return report;
}

/** The lock, index.json and bundle name the inventory pins, and the volume table of a split bundle. */
async function checkPins(bundle: Bundle, problems: VerifyProblem[]): Promise<void> {
  const inv = bundle.inventory;
  if (inv.lock && bundle.lockText !== undefined) {
    const bytes = Buffer.from(bundle.lockText, 'utf8');
    if (digestOf(bytes) !== inv.lock.digest || bytes.length !== inv.lock.size) {
      problems.push({ entry: LOCK_PATH, images: [], message: `changed: the inventory pins the lock as ${inv.lock.digest} (${inv.lock.size} bytes), it is ${digestOf(bytes)} (${bytes.length} bytes)` });
    }
  }
  if (inv.lock && (inv.lock.name !== bundle.bundleInfo.name || inv.lock.version !== bundle.bundleInfo.version)) {
    problems.push({ entry: BUNDLE_INFO_PATH, images: [], message: `names the bundle ${bundle.bundleInfo.name} ${bundle.bundleInfo.version}; the inventory says ${inv.lock.name} ${inv.lock.version}` });
  }
  if (bundle.bundleInfo.tool.name !== 'airlock') problems.push({ entry: BUNDLE_INFO_PATH, images: [], message: `tool.name is "${bundle.bundleInfo.tool.name}", not "airlock"` });
  if (inv.index) {
    const bytes = await bundle.readEntry(INDEX_PATH, 64 * 1024 * 1024);
    if (digestOf(bytes) !== inv.index.digest || bytes.length !== inv.index.size) {
      problems.push({ entry: INDEX_PATH, images: [], message: `changed: the inventory pins it as ${inv.index.digest} (${inv.index.size} bytes), it is ${digestOf(bytes)} (${bytes.length} bytes)` });
    }
  }
  await checkVolumeTable(bundle, problems);
}

/** A split bundle's volume table: there exactly when the bundle says it was split, where and as its layout says. */
async function checkVolumeTable(bundle: Bundle, problems: VerifyProblem[]): Promise<void> {
  const layout = bundle.bundleInfo.volumes;
  const trailer = bundle.entries.get(VOLUMES_PATH);
  if (layout && !trailer) problems.push({ entry: VOLUMES_PATH, images: [], message: `missing: ${BUNDLE_INFO_PATH} says the bundle was split into ${layout.count} volumes` });
  if (!layout && trailer) problems.push({ entry: VOLUMES_PATH, images: [], message: `present, but ${BUNDLE_INFO_PATH} says the bundle was not split` });
  if (layout && trailer) {
    try {
      const place = trailerPlace(bundle.inventoryDigest, layout);
      if (trailer.offset !== place.offset || trailer.size !== place.length) throw new Error(`it is not where the layout in ${BUNDLE_INFO_PATH} puts it`);
      const table = parseVolumeTable(await bundle.readEntry(VOLUMES_PATH, 16 * 1024 * 1024), VOLUMES_PATH);
      if (table.bundle !== bundle.inventoryDigest) throw new Error(`it is the table of another bundle (${table.bundle})`);
      if (!sameLayout(tableLayout(table), layout)) throw new Error(`it disagrees with the layout in ${BUNDLE_INFO_PATH}`);
    } catch (e) {
      problems.push({ entry: VOLUMES_PATH, images: [], message: (e as Error).message.replace(`${VOLUMES_PATH} is `, '') });
    }
  }
}

/**
 * Every byte outside the blobs as airlock writes it: headers re-encoded from name and size, zero
 * padding, two zero end blocks, canonical JSON metadata. A split bundle joined back with `cat`
 * may carry its recovery volumes after the end: they are recognised and left alone.
 */
async function checkCanonical(bundle: Bundle, problems: VerifyProblem[]): Promise<void> {
  await checkTarFraming(bundle, problems);
  await checkCanonicalJson(bundle, problems);
}

/** Headers, padding and the end of the archive byte for byte as airlock writes them. */
async function checkTarFraming(bundle: Bundle, problems: VerifyProblem[]): Promise<void> {
  const src = bundle.fileHandle();
  let pos = 0;
  for (const e of bundle.tarEntries) {
    if (e.headerOffset !== pos) problems.push({ entry: e.name, images: [], message: `${e.headerOffset - pos} bytes before its header that airlock does not write` });
    const expected = encodeHeader({ name: e.name, type: e.type, size: e.size });
    const actual = await readUpTo(src, e.headerOffset, e.offset - e.headerOffset);
    if (!actual.equals(expected)) problems.push({ entry: e.name, images: [], message: 'its tar header is not as airlock writes it (changed bytes, or not written by airlock)' });
    const pad = e.type === 'file' ? paddingFor(e.size) : 0;
    if (pad > 0 && !isZero(await readUpTo(src, e.offset + e.size, pad))) problems.push({ entry: e.name, images: [], message: 'the padding after its content is not zero' });
    pos = e.offset + e.size + pad;
  }
  const end = await readUpTo(src, pos, END_OF_ARCHIVE.length);
  if (end.length !== END_OF_ARCHIVE.length || !isZero(end)) problems.push({ entry: 'end of archive', images: [], message: 'the two zero blocks that end the archive are changed or missing' });
  const after = pos + END_OF_ARCHIVE.length;
  if (src.size > after) {
    const tail = await readUpTo(src, after, Math.min(BLOCK, src.size - after));
    const joinedParity = bundle.bundleInfo.volumes && tail.subarray(0, PARITY_MAGIC.length).equals(Buffer.from(PARITY_MAGIC));
    if (!joinedParity) problems.push({ entry: 'end of archive', images: [], message: `${src.size - after} bytes follow the end of the archive` });
  }
}

/** The JSON metadata in the canonical form airlock writes (sorted keys, fixed spacing). */
async function checkCanonicalJson(bundle: Bundle, problems: VerifyProblem[]): Promise<void> {
  const docs: [string, boolean][] = [[BUNDLE_INFO_PATH, true], [INVENTORY_PATH, true], [SIGNATURE_INFO_PATH, true], [OCI_LAYOUT_PATH, false], [INDEX_PATH, false]];
  for (const [name, pretty] of docs) {
    if (!bundle.entries.has(name)) continue;
    const bytes = await bundle.readEntry(name, 64 * 1024 * 1024);
    let canonical: string | undefined;
    try {
      canonical = canonicalJson(JSON.parse(bytes.toString('utf8')), pretty);
    } catch {
      canonical = undefined;
    }
    if (canonical === undefined) problems.push({ entry: name, images: [], message: 'not valid JSON' });
    else if (canonical !== bytes.toString('utf8')) problems.push({ entry: name, images: [], message: 'not in the canonical form airlock writes (sorted keys, fixed spacing): changed after packing' });
  }
}

/** Up to `length` bytes from `position`: fewer where the file ends (the caller judges a short read). */
async function readUpTo(src: PositionedReader, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await src.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** A delta against the base bundle(s) given: the base it names is among them, and holds every blob it relies on. */
async function checkDelta(delta: InventoryDelta, opts: VerifyBundleOptions, problems: VerifyProblem[], signal: AbortSignal | undefined): Promise<VerifyDeltaReport> {
  const report: VerifyDeltaReport = { base: delta.base, blobs: delta.blobs.length, bytes: delta.blobs.reduce((a, b) => a + b.size, 0) };
  const named = `${delta.base.name} ${delta.base.version} (inventory ${delta.base.inventory})`;
  if (opts.complete) {
    problems.push({ entry: INVENTORY_PATH, images: [], message: `not self-sufficient: a delta of ${named} that relies on ${report.blobs} blob${report.blobs === 1 ? '' : 's'} (${report.bytes} bytes) it does not carry` });
  }
  if (!opts.base || opts.base.length === 0) return report;
  const bases: Bundle[] = [];
  try {
    for (const b of opts.base) {
      throwIfAborted(signal);
      bases.push(await openBundle(b, { signal }));
    }
    report.checkedAgainst = bases.map((b) => b.path);
    if (!bases.some((b) => b.inventoryDigest === delta.base.inventory)) {
      problems.push({
        entry: INVENTORY_PATH,
        images: [],
        message: `the base given is not this delta's base: it was packed against ${named}; given ${bases.map((b) => `${b.path} = ${b.bundleInfo.name} ${b.bundleInfo.version} (inventory ${b.inventoryDigest})`).join(', ')}`,
      });
    }
    for (const r of delta.blobs) {
      const holder = bases.find((b) => b.blobEntry(r.digest)?.size === r.size);
      if (holder) continue;
      const reliedByBase = bases.find((b) => b.inventory.delta?.blobs.some((x) => x.digest === r.digest));
      problems.push({
        digest: r.digest,
        entry: blobPath(r.digest),
        images: r.images,
        message: `relied on from the base (${r.size} bytes) but not in ${bases.map((b) => b.path).join(' or ')}${reliedByBase ? ` (${reliedByBase.path} is itself a delta that relies on it: give its base too)` : ''}`,
      });
    }
  } finally {
    await Promise.allSettled(bases.map((b) => b.close()));
  }
  return report;
}

async function checkOciLayout(bundle: Bundle, problems: VerifyProblem[]): Promise<void> {
  if (!bundle.entries.has(OCI_LAYOUT_PATH)) {
    problems.push({ entry: OCI_LAYOUT_PATH, images: [], message: 'missing: OCI tools (skopeo, containerd) need it to read the bundle' });
    return;
  }
  let version: unknown;
  try {
    version = (JSON.parse((await bundle.readEntry(OCI_LAYOUT_PATH, 64 * 1024)).toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    version = undefined;
  }
  if (version !== OCI_LAYOUT_VERSION) problems.push({ entry: OCI_LAYOUT_PATH, images: [], message: `expected {"imageLayoutVersion":"${OCI_LAYOUT_VERSION}"}` });
}

interface GraphResult {
  usedBy: Map<string, Set<string>>;
  totalSizes: Map<string, number>;
  problems: VerifyProblem[];
  /** Some manifest could not be read, so reachability is unknown. */
  incomplete: boolean;
}

async function walkImages(
  bundle: Bundle,
  roots: { reference: string; root: Descriptor }[],
  blobs: Map<Digest, BundleEntry>,
  relied: ReadonlyMap<string, { size: number }>,
  signal: AbortSignal | undefined,
): Promise<GraphResult> {
  const usedBy = new Map<string, Set<string>>();
  const totalSizes = new Map<string, number>();
  const missing = new Map<string, { images: Set<string>; size: number; parents: Set<string> }>();
  const problems: VerifyProblem[] = [];
  const unreadable = new Set<string>();
  let incomplete = false;
  // Manifests are read raw from the tar; the walk verifies each against its digest before trusting
  // its children (a wrong digest is also reported by the hashing pass).
  const entries = new ManifestCache().wrap({
    label: bundle.path,
    exists: async (d) => blobs.has(d.digest as Digest),
    fetch: async (d) => Readable.from([await bundle.readEntry(blobPath(d.digest), MAX_MANIFEST_BYTES)]),
  });

  for (const { reference, root } of roots) {
    throwIfAborted(signal);
    const mine = new Map<string, number>();
    await walkGraph(entries, root, {
      signal,
      visit: (d, parentDesc) => {
        if (mine.has(d.digest)) return false;
        mine.set(d.digest, d.size);
        const parent = parentDesc ? `manifest ${parentDesc.digest}` : INDEX_PATH;
        let users = usedBy.get(d.digest);
        if (!users) usedBy.set(d.digest, (users = new Set()));
        users.add(reference);
        const e = blobs.get(d.digest as Digest);
        if (!e && relied.get(d.digest)?.size === d.size) return false;
        if (!e) {
          let m = missing.get(d.digest);
          if (!m) missing.set(d.digest, (m = { images: new Set(), size: d.size, parents: new Set() }));
          m.images.add(reference);
          m.parents.add(parent);
          return false;
        }
        if (e.size !== d.size) {
          problems.push({ digest: d.digest, entry: blobPath(d.digest), images: [reference], message: `size mismatch: ${e.size} bytes in the bundle, ${parent} references ${d.size}` });
          return false;
        }
        if (unreadable.has(d.digest)) {
          incomplete = true;
          return false;
        }
        return true;
      },
      onReadError: (d, err) => {
        unreadable.add(d.digest);
        incomplete = true;
        problems.push({ digest: d.digest, entry: blobPath(d.digest), images: [], message: `manifest cannot be read: ${err.message}` });
      },
    });
    totalSizes.set(reference, [...mine.values()].reduce((a, s) => a + s, 0));
  }
  for (const [d, m] of missing) {
    problems.push({
      digest: d,
      entry: blobPath(d as Digest),
      images: [...m.images].sort(compareStrings),
      message: `missing: ${m.size} bytes referenced by ${[...m.parents].sort(compareStrings).join(', ')} but not in the bundle`,
    });
  }
  return { usedBy, totalSizes, problems, incomplete };
}

async function hashBlobs(bundle: Bundle, blobs: Map<Digest, BundleEntry>, opts: VerifyBundleOptions): Promise<{ results: Map<string, string>; bytes: number }> {
  const total = [...blobs.values()].reduce((a, e) => a + e.size, 0);
  // Largest first, so one big layer does not start last and run alone.
  const jobs = [...blobs].sort((a, b) => b[1].size - a[1].size || compareStrings(a[0], b[0]));

  let done = 0;
  let reported = -1;
  const progress = (n: number, force = false): void => {
    done += n;
    if (opts.onProgress && (force || done - reported >= PROGRESS_STEP)) {
      reported = done;
      opts.onProgress({ done, total });
    }
  };
  progress(0, true);
  const { hasher, limit } = hasherFor(bundle.fileHandle(), total, opts);
  const results = new Map<string, string>();
  try {
    await mapLimit(
      jobs,
      limit,
      async ([d, e]) => {
        let result: string;
        let seen = 0;
        try {
          result = await hasher.hash({ offset: e.offset, size: e.size, algorithm: digestAlgorithm(d) }, (n) => {
            seen += n;
            progress(n);
          });
        } catch (err) {
          throwIfAborted(opts.signal);
          result = `error:${(err as Error).message}`;
          progress(e.size - seen);
        }
        results.set(d, result);
      },
      opts.signal,
    );
  } finally {
    await hasher.close();
  }
  progress(0, true);
  return { results, bytes: total };
}
