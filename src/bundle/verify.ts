// Verifying a bundle: every blob's size and digest (streamed, in parallel, on worker threads for
// big bundles), every manifest's children present, and the inventory, index.json and the tar's
// entries telling the same story. Problems are collected into a report that names each bad blob and
// the images using it; only a tar too damaged or unsafe to read throws (IntegrityError).
//
// Beyond the content: the tar must be byte for byte what the writer lays down for this bundle
// (entries.ts): every entry it writes, in its order, and none else; every header, padding and the
// end-of-archive blocks as encoded; bundle.json, signature.json and oci-layout as the writer fills
// them; the lock and index.json matching the digests the inventory pins; the inventory and
// index.json what the writer's planner derives from the images, their manifests and the lock. So
// with a signature over the inventory no byte of the bundle can change unnoticed — only
// airlock/bundle.json's tool version is informational (it must only look like a version).
//
// The signer reported is the key given that verified the signature; airlock/signature.json's key is
// a claim, reported as such, and must be exactly what the writer derives from the verifying key.
//
// Tools a bundle carries (airlock/tools/) are hashed with the blobs, each against the sha256 and size
// the inventory lists, and named by their entry when they do not match.
//
// A delta (pack --since) verifies on its own structurally: what it relies on from its base is
// reported, not counted missing. `base` checks it against its base bundle(s) — the identity and that
// every relied-on blob is there; `complete` demands a self-sufficient bundle (a delta fails).
// Split bundles are checked volume by volume first (volume-check.ts), then as one tar.
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { isDigest, digestAlgorithm, digestOf, type Digest } from '../core/digest.ts';
import { isReductionOf } from '../core/index-reduction.ts';
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
  MAX_METADATA_BYTES,
  OCI_LAYOUT_PATH,
  OCI_LAYOUT_VERSION,
  REF_NAME_ANNOTATION,
  SIGNATURE_INFO_PATH,
  SIGNATURE_PATH,
  VOLUMES_PATH,
  type Inventory,
  type InventoryDelta,
  type InventoryTool,
  type SignatureInfo,
} from './format.ts';
import { bundleEntries, signatureInfoFor, tarSize } from './entries.ts';
import { bundleInfoProblems, canonicalForm, contentProblems, differences, expectedBundleInfo, framingProblems, pinProblems } from './as-written.ts';
import { hasherFor } from './hash-pool.ts';
import { planBundle } from './plan.ts';
import { openBundle, type Bundle, type BundleEntry } from './read.ts';
import { claimMismatchMessage, notVerifiedMessage, signatureClaimProblems, signatureInfoBytes, type SignatureStatus } from './sign.ts';
import { checkVolumes, describeVolumeProblems, type VolumeSetReport } from './volume-check.ts';
import { countVolumes, locateBundle, parseVolumeTable, sameLayout, tableLayout, trailerPlace, type BundleFiles } from './volumes.ts';

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

/**
 * A signed bundle, or a key given. `verified` only when a key the user gave verified the signature;
 * `key` (the signer) only then; what the bundle claims is `claimed`, never `key`.
 */
export interface VerifySignatureReport extends SignatureStatus {
  signed: boolean;
}

export interface VerifyReport {
  ok: boolean;
  /** Blobs hashed. */
  blobs: number;
  /** Bytes hashed (blobs and tools). */
  bytes: number;
  /** Tools (carried executables) hashed; absent when the bundle carries none. */
  tools?: number;
  /** Files (`files:`) the bundle carries, each hashed as its artifact's layer; absent when it carries none. */
  files?: number;
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

  const toolEntries = checkInventoryTools(bundle, problems);
  const blobEntries = tarBlobEntries(bundle, toolEntries, problems);
  const invBlobs = checkInventoryBlobs(inv, blobEntries, relied, problems);
  checkInventoryTotals(inv, problems);
  const roots = checkIndex(bundle, problems);
  // After the checks above: what they name is not named again as "not as airlock writes it".
  const signature = await checkMetadata(bundle, opts.key, problems);

  // Image graphs: every manifest's children present.
  const manifests = new ManifestCache();
  const graph = await walkImages(bundle, roots, blobEntries, relied, manifests, signal);
  await checkOriginals(bundle, graph, blobEntries, problems, signal);
  checkGraph(graph, inv, blobEntries, relied, problems);
  checkReliedManifests(relied, problems);
  const delta = inv.delta ? await checkDelta(inv.delta, opts, problems, signal) : undefined;

  const imagesOf = (d: string): string[] => [...new Set([...(graph.usedBy.get(d) ?? []), ...(invBlobs.get(d)?.images ?? [])])].sort(compareStrings);
  const hashed = await hashEntries(bundle, hashJobs(blobEntries, toolEntries), opts);
  const blobResults = new Map([...hashed.results].filter(([k]) => blobEntries.has(k as Digest)));
  checkBlobDigests(blobResults, imagesOf, problems);
  checkToolDigests(toolEntries, hashed.results, problems);
  // Last: it reads configs, so damaged ones must be named (by the hashing) before.
  await checkDerived(bundle, manifests, problems, signal);

  nameImagesAndVolumes(bundle, problems, imagesOf);
  nameFiles(inv, problems);
  problems.sort((a, b) => compareStrings(a.entry ?? a.digest ?? '', b.entry ?? b.digest ?? '') || compareStrings(a.message, b.message));
  throwIfAborted(signal);
  return {
    ok: problems.length === 0,
    blobs: blobResults.size,
    bytes: hashed.bytes,
    ...(inv.tools ? { tools: toolEntries.size } : {}),
    ...(inv.files ? { files: inv.files.length } : {}),
    problems,
    ...(delta ? { delta } : {}),
    ...(signature ? { signature } : {}),
  };
}

/** The tar's blob entries by digest; any other entry that is not airlock metadata or a listed tool is a problem. */
function tarBlobEntries(bundle: Bundle, tools: ReadonlyMap<string, unknown>, problems: VerifyProblem[]): Map<Digest, BundleEntry> {
  const blobEntries = new Map<Digest, BundleEntry>();
  for (const [name, e] of bundle.entries) {
    if (METADATA.has(name) || tools.has(name)) continue;
    const m = BLOB_ENTRY.exec(name);
    const d = m ? `${m[1]}:${m[2]}` : '';
    if (isDigest(d)) blobEntries.set(d, e);
    else problems.push({ entry: name, images: [], message: 'unexpected entry: neither a blob of the OCI layout nor airlock metadata' });
  }
  return blobEntries;
}

/**
 * Inventory ⇔ tar for the tools: each listed once, carried with its size. Returns the ones to hash,
 * by path; one listed but absent, or of another size, is named here and not hashed.
 */
function checkInventoryTools(bundle: Bundle, problems: VerifyProblem[]): Map<string, { tool: InventoryTool; entry: BundleEntry }> {
  const out = new Map<string, { tool: InventoryTool; entry: BundleEntry }>();
  const listed = new Set<string>();
  for (const t of bundle.inventory.tools ?? []) {
    if (listed.has(t.path)) {
      problems.push({ entry: INVENTORY_PATH, images: [], message: `the tool ${t.path} is listed twice` });
      continue;
    }
    listed.add(t.path);
    const e = bundle.entries.get(t.path);
    if (!e) problems.push({ entry: t.path, images: [], message: 'missing: listed in the inventory but not in the bundle' });
    else if (e.size !== t.size) problems.push({ entry: t.path, images: [], message: `size mismatch: ${e.size} bytes in the bundle, the inventory says ${t.size}` });
    else out.set(t.path, { tool: t, entry: e });
  }
  return out;
}

/** Each carried tool's bytes against the sha256 the inventory lists for it. */
function checkToolDigests(tools: ReadonlyMap<string, { tool: InventoryTool }>, results: ReadonlyMap<string, string>, problems: VerifyProblem[]): void {
  for (const [path, { tool }] of tools) {
    const result = results.get(path);
    if (result === tool.digest) continue;
    problems.push({
      entry: path,
      images: [],
      message: result === undefined || result.startsWith('error:') ? `unreadable: ${result?.slice(6) ?? 'not hashed'}` : `digest mismatch: the content hashes to ${result}, the inventory says ${tool.digest}`,
    });
  }
}

/** Metadata that must be there and say what the inventory pins; the signature; the tar as airlock writes it. */
async function checkMetadata(bundle: Bundle, key: VerifyingKey | undefined, problems: VerifyProblem[]): Promise<VerifySignatureReport | undefined> {
  if (bundle.lockText === undefined) {
    problems.push({ entry: LOCK_PATH, images: [], message: `missing: the bundle has no ${LOCK_PATH}, so what it holds cannot be traced to a lock` });
  }
  await checkOciLayout(bundle, problems);
  await checkPins(bundle, problems);
  const signature = checkSignature(bundle, key, problems);
  await checkAsWritten(bundle, signature?.expected, problems);
  return signature?.report;
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

/** A problem with the bytes of a carried file (its artifact's layer) says which file it is. */
function nameFiles(inv: Inventory, problems: VerifyProblem[]): void {
  const byDigest = new Map((inv.files ?? []).map((f) => [f.digest as string, f.name]));
  for (const p of problems) {
    const name = p.digest !== undefined ? byDigest.get(p.digest) : undefined;
    if (name !== undefined) p.message += `; it is the file ${name}`;
  }
}

/**
 * The signature, checked only against a key the user gives; problems when that fails or is
 * impossible, or when signature.json is not what the writer derives (from the key that verified
 * the signature, else from its own claim). Returns the report and that expected signature.json.
 */
function checkSignature(bundle: Bundle, key: VerifyingKey | undefined, problems: VerifyProblem[]): { report: VerifySignatureReport; expected?: SignatureInfo } | undefined {
  const sig = bundle.signature;
  if (!sig && !key) return undefined;
  if (!sig) {
    problems.push({ entry: SIGNATURE_PATH, images: [], message: `missing: the bundle is not signed, and the key given (${key!.path}) demands a signature` });
    return { report: { signed: false, verified: false } };
  }
  const claimed = { algorithm: sig.info.algorithm, key: sig.info.key };
  for (const p of signatureClaimProblems(sig)) problems.push({ ...p, images: [] });
  const asClaimed = signatureInfoFor({ algorithm: claimed.algorithm, fingerprint: claimed.key });
  if (!key) return { report: { signed: true, verified: false, claimed }, expected: asClaimed };
  if (!verifyPayload(key, bundle.inventoryBytes, sig.bytes)) {
    problems.push({ entry: SIGNATURE_PATH, images: [], message: notVerifiedMessage(sig.info, key) });
    return { report: { signed: true, verified: false, claimed }, expected: asClaimed };
  }
  const report: VerifySignatureReport = { signed: true, verified: true, key: key.fingerprint, algorithm: key.algorithm };
  if (!sig.infoBytes.equals(signatureInfoBytes(key))) {
    report.claimed = claimed;
    if (!problems.some((p) => p.entry === SIGNATURE_INFO_PATH)) problems.push({ entry: SIGNATURE_INFO_PATH, images: [], message: claimMismatchMessage(sig.info, key) });
  }
  return { report, expected: signatureInfoFor(key) };
}

/** The lock, index.json and bundle name the inventory pins, and the volume table of a split bundle. */
async function checkPins(bundle: Bundle, problems: VerifyProblem[]): Promise<void> {
  const lock = bundle.lockText === undefined ? undefined : Buffer.from(bundle.lockText, 'utf8');
  const found = [...pinProblems(bundle.inventory, lock, await bundle.readEntry(INDEX_PATH, MAX_METADATA_BYTES)), ...bundleInfoProblems(bundle.bundleInfo, bundle.inventory)];
  for (const p of found) problems.push({ ...p, images: [] });
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
 * The tar as the writer lays it out for this bundle (entries.ts, from this bundle's inventory,
 * signature, lock and index.json): every entry airlock writes, in its order, none else; headers
 * re-encoded, zero padding, two zero end blocks; bundle.json, signature.json and oci-layout as the
 * writer fills them, every JSON document canonical. A split bundle joined back with `cat` may
 * carry its recovery volumes after the end: they are recognised and left alone. An entry a more
 * specific check already named is not named again.
 */
async function checkAsWritten(bundle: Bundle, signature: SignatureInfo | undefined, problems: VerifyProblem[]): Promise<void> {
  const read = async (name: string): Promise<Buffer | undefined> => (bundle.entries.has(name) ? await bundle.readEntry(name, MAX_METADATA_BYTES) : undefined);
  const actual = new Map<string, Buffer | undefined>([
    [BUNDLE_INFO_PATH, await read(BUNDLE_INFO_PATH)],
    [INVENTORY_PATH, bundle.inventoryBytes],
    [SIGNATURE_PATH, bundle.signature?.bytes],
    [SIGNATURE_INFO_PATH, bundle.signature?.infoBytes],
    [LOCK_PATH, bundle.lockText === undefined ? undefined : Buffer.from(bundle.lockText, 'utf8')],
    [OCI_LAYOUT_PATH, await read(OCI_LAYOUT_PATH)],
    [INDEX_PATH, await read(INDEX_PATH)],
  ]);
  const layout = bundle.bundleInfo.volumes;
  const items = bundleEntries(
    // The inventory and index.json as parsed, in canonical form: their content is the planner's to check (checkDerived).
    { indexBytes: canonicalForm(actual.get(INDEX_PATH)!, false), blobs: [...bundle.inventory.blobs].sort((a, b) => compareStrings(a.digest, b.digest)), tools: bundle.inventory.tools },
    { bytes: Buffer.from(canonicalJson(bundle.inventory, true)), signature: bundle.signature && signature ? { info: signature, bytes: bundle.signature.bytes } : undefined },
    expectedBundleInfo(bundle.bundleInfo, bundle.inventory),
    bundle.lockText ?? '',
    layout ? { length: trailerPlace(bundle.inventoryDigest, layout).length, bytes: () => Buffer.alloc(0) } : undefined,
  );
  const named = (entry: string): boolean => problems.some((p) => p.entry === entry);
  const framing = await framingProblems(bundle.fileHandle(), bundle.tarEntries, items, { complete: true, named, joinedParity: bundle.bundleInfo.volumes !== undefined });
  for (const p of framing) problems.push({ ...p, images: [] });
  for (const p of contentProblems(items, actual, named)) problems.push({ ...p, images: [] });
  if (layout) {
    const total = tarSize(items);
    const count = countVolumes(total, layout.size);
    if ((total !== layout.totalSize || count !== layout.count) && !named(BUNDLE_INFO_PATH)) {
      problems.push({ entry: BUNDLE_INFO_PATH, images: [], message: `says the tar is ${layout.totalSize} bytes in ${layout.count} volumes; its entries add up to ${total} bytes, ${count} volumes of ${layout.size}` });
    }
  }
}

/**
 * The inventory and index.json as the writer's planner derives them from this bundle's own
 * images, manifests, configs and lock (planBundle over the bundle): byte for byte the bundle's.
 * Only once those inputs are known sound — else the problem is already named where it is.
 */
async function checkDerived(bundle: Bundle, manifests: ManifestCache, problems: VerifyProblem[], signal: AbortSignal | undefined): Promise<void> {
  const inputs = new Set<string>([INVENTORY_PATH, INDEX_PATH, LOCK_PATH]);
  if (bundle.lockText === undefined || problems.some((p) => p.digest !== undefined || (p.entry !== undefined && (inputs.has(p.entry) || p.entry.startsWith('blobs/'))))) return;
  const inv = bundle.inventory;
  let plan: Awaited<ReturnType<typeof planBundle>>;
  try {
    plan = await planBundle(withOriginals(bundle), bundle, {
      signal,
      manifests,
      concurrency: 8,
      lock: { name: inv.lock?.name ?? bundle.bundleInfo.name, version: inv.lock?.version ?? bundle.bundleInfo.version, text: bundle.lockText },
      // Tools are not derived from the images: what the inventory lists is checked by hashing.
      tools: inv.tools,
      base: inv.delta ? { ...inv.delta.base, blobs: new Map(inv.delta.blobs.map((b) => [b.digest as string, b.size])) } : undefined,
    });
  } catch (e) {
    throwIfAborted(signal);
    if (!(e instanceof AirlockError)) throw e;
    // A delta's configs may be in its base only: then its platforms cannot be derived here.
    if (inv.delta && e.code === 'BLOB_UNKNOWN') return;
    problems.push({ entry: INDEX_PATH, images: [], message: `names images airlock cannot have packed: ${e.message}` });
    return;
  }
  const index = await bundle.readEntry(INDEX_PATH, MAX_METADATA_BYTES);
  if (!index.equals(plan.indexBytes)) {
    problems.push({ entry: INDEX_PATH, images: [], message: `not the index.json airlock writes for these images: ${differences(JSON.parse(index.toString('utf8')), plan.index).join('; ')}` });
    return;
  }
  const inventory = Buffer.from(canonicalJson(plan.inventory, true));
  if (!inventory.equals(bundle.inventoryBytes)) {
    problems.push({ entry: INVENTORY_PATH, images: [], message: `not what airlock derives from index.json, the manifests and the lock: ${differences(JSON.parse(bundle.inventoryBytes.toString('utf8')), plan.inventory).join('; ')}` });
  }
}

/** The images of index.json, each with the original index its inventory entry lists (the planner carries it too). */
function withOriginals(bundle: Bundle): { reference: string; root: Descriptor; original?: Descriptor }[] {
  const originals = new Map(bundle.inventory.images.filter((i) => i.original).map((i) => [i.reference, i.original!]));
  return bundle.images().map((img) => {
    const o = originals.get(img.reference);
    return o ? { ...img, original: { mediaType: img.root.mediaType, digest: o.digest, size: o.size } } : img;
  });
}

/**
 * The upstream index of each reduced one (InventoryImage.original): carried with its size, used by
 * its image (its size counts in the image's), and the very index the reduced one was cut from —
 * cut down to the children the reduced index lists, it gives the reduced index byte for byte.
 */
async function checkOriginals(bundle: Bundle, graph: GraphResult, blobs: ReadonlyMap<Digest, BundleEntry>, problems: VerifyProblem[], signal: AbortSignal | undefined): Promise<void> {
  const roots = new Map(bundle.images().map((i) => [i.reference, i.root]));
  for (const img of bundle.inventory.images) {
    const o = img.original;
    if (!o) continue;
    throwIfAborted(signal);
    const ref = img.reference;
    let users = graph.usedBy.get(o.digest);
    if (!users) graph.usedBy.set(o.digest, (users = new Set()));
    if (!users.has(ref) && graph.totalSizes.has(ref)) graph.totalSizes.set(ref, graph.totalSizes.get(ref)! + o.size);
    users.add(ref);
    const e = blobs.get(o.digest);
    if (!e) {
      problems.push({ digest: o.digest, entry: blobPath(o.digest), images: [ref], message: `missing: the inventory lists it as the original index of ${ref} (${o.size} bytes), the bundle does not carry it` });
      continue;
    }
    if (e.size !== o.size) {
      problems.push({ digest: o.digest, entry: blobPath(o.digest), images: [ref], message: `size mismatch: ${e.size} bytes in the bundle, the inventory lists the original index of ${ref} as ${o.size}` });
      continue;
    }
    const root = roots.get(ref);
    if (!root || root.size > MAX_MANIFEST_BYTES || o.size > MAX_MANIFEST_BYTES || !blobs.has(root.digest)) continue;
    let original: Buffer;
    let reduced: Buffer;
    try {
      original = await bundle.readEntry(blobPath(o.digest), MAX_MANIFEST_BYTES);
      reduced = await bundle.readEntry(blobPath(root.digest), MAX_MANIFEST_BYTES);
    } catch (e) {
      throwIfAborted(signal);
      if (!(e instanceof AirlockError)) throw e;
      continue; // an entry that cannot be read is named by the hashing
    }
    // Bytes that do not match their digests are named by the hashing; only sound ones are compared.
    if (digestOf(original, digestAlgorithm(o.digest)) !== o.digest || digestOf(reduced, digestAlgorithm(root.digest)) !== root.digest) continue;
    if (!isReductionOf(original, reduced)) {
      problems.push({ digest: o.digest, entry: blobPath(o.digest), images: [ref], message: `not the index ${root.digest} of ${ref} was reduced from: cut down to the platforms that one lists, it does not give it` });
    }
  }
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
  cache: ManifestCache,
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
  const entries = cache.wrap({
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

/** What to hash: every blob (keyed by its digest, hashed with its algorithm) and every tool (keyed by its path, sha256). */
function hashJobs(blobs: ReadonlyMap<Digest, BundleEntry>, tools: ReadonlyMap<string, { entry: BundleEntry }>): HashEntryJob[] {
  return [
    ...[...blobs].map(([d, entry]) => ({ key: d as string, entry, algorithm: digestAlgorithm(d) })),
    ...[...tools].map(([path, t]) => ({ key: path, entry: t.entry, algorithm: 'sha256' as const })),
  ];
}

interface HashEntryJob {
  key: string;
  entry: BundleEntry;
  algorithm: ReturnType<typeof digestAlgorithm>;
}

async function hashEntries(bundle: Bundle, list: readonly HashEntryJob[], opts: VerifyBundleOptions): Promise<{ results: Map<string, string>; bytes: number }> {
  const total = list.reduce((a, j) => a + j.entry.size, 0);
  // Largest first, so one big layer does not start last and run alone.
  const jobs = [...list].sort((a, b) => b.entry.size - a.entry.size || compareStrings(a.key, b.key));

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
      async ({ key, entry: e, algorithm }) => {
        let result: string;
        let seen = 0;
        try {
          result = await hasher.hash({ offset: e.offset, size: e.size, algorithm }, (n) => {
            seen += n;
            progress(n);
          });
        } catch (err) {
          throwIfAborted(opts.signal);
          result = `error:${(err as Error).message}`;
          progress(e.size - seen);
        }
        results.set(key, result);
      },
      opts.signal,
    );
  } finally {
    await hasher.close();
  }
  progress(0, true);
  return { results, bytes: total };
}
