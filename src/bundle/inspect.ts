// What a bundle holds, from its metadata alone: the headers are scanned only up to index.json (the
// metadata entries at the start), so this is instant on a bundle of any size — and for a split
// bundle it reads only the first volume (and the last one's end, when it is there).
//
// Nothing here is verified (no blob is read): the summary says so (`verified: false`), and a
// signature is only what the bundle claims. But what can be checked cheaply is, and a tar that
// fails it is refused (IntegrityError) rather than listed: the entries read are framed as airlock
// writes them and hold what the writer derives for this inventory; the lock and index.json match
// the digests the inventory pins; and the file is as long as the inventory's entries add up to,
// ending with the end-of-archive blocks — a truncated bundle is caught by its size.
import { IntegrityError } from '../core/errors.ts';
import { digestOf, type Digest } from '../core/digest.ts';
import { MediaType } from '../core/media-types.ts';
import { parseReference } from '../core/reference.ts';
import { bundleInfoProblems, canonicalForm, contentProblems, endProblems, expectedBundleInfo, framingProblems, pinProblems, type EntryProblem } from './as-written.ts';
import { bundleEntries, signatureInfoFor, tarSize } from './entries.ts';
import { BUNDLE_INFO_PATH, canonicalJson, compareStrings, INDEX_PATH, INVENTORY_PATH, LOCK_PATH, MAX_METADATA_BYTES, OCI_LAYOUT_PATH, SIGNATURE_INFO_PATH, type Inventory, type InventoryDelta, type VolumeLayout } from './format.ts';
import { entryTable, openSource, readMetadata, readSignature, readSmallEntry, type OpenedSource } from './read.ts';
import { signatureClaimProblems } from './sign.ts';
import { END_OF_ARCHIVE, scanTar } from './tar.ts';
import { locateBundle, trailerPlace } from './volumes.ts';

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
  /** `digest` is an index reduced to the bundle's platforms: the upstream index it was cut from, carried too. */
  original?: Digest;
  /** The signatures, attestations, SBOMs (and other artifacts) the bundle carries for it: what refers to its root, a platform manifest, or one of these. */
  referrers: BundleSummaryReferrer[];
}

/** Something the bundle carries because it refers to an image (pack finds them at lock). */
export interface BundleSummaryReferrer {
  /** Its entry in the bundle: `repo:sha256-<hex>.sig` (found by tag) or `repo@sha256:…`. */
  reference: string;
  /** signature, attestation, sbom, artifact, or referrers-index (the referrers tag schema's index). */
  kind: string;
  artifactType?: string;
  digest: Digest;
  /** What it refers to: the image's root, a platform manifest, or another referrer. */
  subject: Digest;
  /** Bytes of its unique blobs. */
  size: number;
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

/** An executable the bundle carries (pack --with-tools), as the inventory lists it: unverified here. */
export interface BundleSummaryTool {
  /** `os/arch`, e.g. `linux/amd64`. */
  platform: string;
  /** `airlock` or `helm`. */
  name: string;
  /** Its entry: `tar -xf BUNDLE PATH` extracts it. */
  path: string;
  size: number;
  /** sha256 of its bytes. */
  digest: Digest;
}

/** A file the bundle carries (`files:`), as the inventory lists it: unverified here. */
export interface BundleSummaryFile {
  /** What `extract --files` writes and `serve` offers at /files/<name>. */
  name: string;
  size: number;
  /** sha256 of its bytes. */
  digest: Digest;
  /** `0755` */
  mode: string;
  /** The artifact's name: `push` puts it at REGISTRY/PREFIX/files/<repository>:<tag>. */
  reference: string;
  version?: string;
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
  /** Executables the bundle carries, sorted by path (empty when none). */
  tools: BundleSummaryTool[];
  /** Files the bundle carries (`files:`), sorted by name (empty when none); not among `images`. */
  files: BundleSummaryFile[];
  totals: { images: number; blobs: number; bytes: number; sharedBytes: number };
  /** Bytes of the tar (for a split bundle, of all its data volumes). */
  fileSize: number;
  /** sha256 of airlock/inventory.json: the bundle's identity. */
  inventoryDigest: Digest;
  /** A delta: its base, and the blobs and bytes it relies on from there. */
  delta?: { base: InventoryDelta['base']; blobs: number; bytes: number };
  /** A signed bundle: what it claims signed it. Only `verify --key` checks that: a claim is no signer. */
  signature?: { verified: false; claimed: { algorithm: string; key: string } };
  /** A split bundle: its layout and volume files. */
  volumes?: VolumeLayout & { files: string[] };
  /** Always false: inspect reads the metadata only; `verify` checks every blob and the signature. */
  verified: false;
}

export async function inspectBundle(spec: string | readonly string[]): Promise<BundleSummary> {
  const opened = await openSource(await locateBundle(spec), false);
  const src = opened.source;
  const abs = opened.path;
  try {
    const size = src.size;
    // The metadata entries come first and end with index.json; a hostile tar without it is not
    // scanned further than its first blob.
    const { entries } = await scanTar(src, size, abs, { until: (e) => e.name === INDEX_PATH || e.name.startsWith('blobs/') });
    const table = entryTable(entries);
    const { bundleInfo, inventory, inventoryBytes } = await readMetadata(src, abs, table);
    const signature = await readSignature(src, abs, table);
    const read = async (name: string): Promise<Buffer | undefined> => {
      const e = table.get(name);
      return e ? await readSmallEntry(src, e, MAX_METADATA_BYTES, `${abs}: ${name}`) : undefined;
    };
    const lock = await read(LOCK_PATH);
    const index = (await read(INDEX_PATH))!;
    const layout = bundleInfo.volumes;
    const items = bundleEntries(
      // The inventory as parsed, in canonical form (parsing it again would double the cost on a big bundle).
      { indexBytes: canonicalForm(index, false), blobs: [...inventory.blobs].sort((a, b) => compareStrings(a.digest, b.digest)), tools: inventory.tools },
      { bytes: Buffer.from(canonicalJson(inventory, true)), signature: signature ? { info: signatureInfoFor({ algorithm: signature.info.algorithm, fingerprint: signature.info.key }), bytes: signature.bytes } : undefined },
      expectedBundleInfo(bundleInfo, inventory),
      lock?.toString('utf8') ?? '',
      layout ? { length: trailerPlace(digestOf(inventoryBytes), layout).length, bytes: () => Buffer.alloc(0) } : undefined,
    );
    const problems: EntryProblem[] = [...pinProblems(inventory, lock, index), ...bundleInfoProblems(bundleInfo, inventory)];
    if (signature) problems.push(...signatureClaimProblems(signature));
    const named = (entry: string): boolean => problems.some((p) => p.entry === entry);
    problems.push(...(await framingProblems(src, entries, items, { complete: false, named })));
    const actual = new Map<string, Buffer | undefined>([
      [BUNDLE_INFO_PATH, await read(BUNDLE_INFO_PATH)],
      [INVENTORY_PATH, inventoryBytes],
      [SIGNATURE_INFO_PATH, signature?.infoBytes],
      [OCI_LAYOUT_PATH, await read(OCI_LAYOUT_PATH)],
      [INDEX_PATH, index],
    ]);
    problems.push(...contentProblems(items, actual, named));
    const truncated = await checkSize(opened, tarSize(items), problems);
    if (problems.length > 0) {
      throw new IntegrityError(`${abs} is not a well-formed airlock bundle: ${problems.map((p) => `${p.entry}: ${p.message}`).join('; ')}`, {
        code: truncated ? 'TAR_TRUNCATED' : 'BUNDLE_MALFORMED',
        hint: truncated ? 'the file was cut short (interrupted copy or full disk); copy it again' : `do not use it; \`airlock verify ${abs}\` reports everything that is wrong`,
      });
    }
    // A chart is told by its config's media type, which the inventory records: no blob is read.
    const charts = new Set<string>();
    for (const b of [...inventory.blobs, ...(inventory.delta?.blobs ?? [])]) if (b.mediaType === MediaType.helmConfig) for (const r of b.images) charts.add(r);
    const carried = referrersByImage(inventory.images);
    const files = new Set((inventory.files ?? []).map((f) => f.reference));
    return {
      path: abs,
      name: bundleInfo.name,
      version: bundleInfo.version,
      toolVersion: bundleInfo.tool.version,
      formatVersion: bundleInfo.formatVersion,
      images: inventory.images.filter((i) => !charts.has(i.reference) && !i.referrer && !files.has(i.reference)).map((i) => ({
        reference: i.reference,
        digest: i.digest,
        mediaType: i.mediaType,
        platforms: [...new Set(i.platforms.map((p) => p.platform))],
        size: i.totalSize,
        manifestSize: i.size,
        ...(i.original ? { original: i.original.digest } : {}),
        referrers: carried.get(i.reference) ?? [],
      })),
      charts: inventory.images
        .filter((i) => charts.has(i.reference) && !i.referrer)
        .map((i) => {
          const ref = parseReference(i.reference);
          return { reference: i.reference, name: ref.repository.slice(ref.repository.lastIndexOf('/') + 1), version: (ref.tag ?? '').replaceAll('_', '+'), digest: i.digest, size: i.totalSize };
        }),
      tools: (inventory.tools ?? []).map((t) => ({ platform: t.platform, name: t.name, path: t.path, size: t.size, digest: t.digest })),
      files: (inventory.files ?? []).map((f) => ({ name: f.name, size: f.size, digest: f.digest, mode: f.mode, reference: f.reference, ...(f.version !== undefined ? { version: f.version } : {}) })),
      totals: { images: inventory.totals.images, blobs: inventory.totals.blobs, bytes: inventory.totals.bytes, sharedBytes: inventory.totals.sharedBytes },
      fileSize: size,
      inventoryDigest: digestOf(inventoryBytes),
      ...(inventory.delta ? { delta: { base: inventory.delta.base, blobs: inventory.delta.blobs.length, bytes: inventory.delta.blobs.reduce((a, b) => a + b.size, 0) } } : {}),
      ...(signature ? { signature: { verified: false as const, claimed: { algorithm: signature.info.algorithm, key: signature.info.key } } } : {}),
      ...(opened.volumes ? { volumes: { ...opened.volumes.layout, files: opened.volumes.files } } : {}),
      verified: false,
    };
  } finally {
    await src.close();
  }
}

/**
 * What the bundle carries that refers to each image: to its root or a platform manifest, and in
 * turn to those, in the inventory's order. A referrer of a digest the bundle does not carry (the
 * upstream index of a platform-filtered image) belongs to the images of its repository.
 */
function referrersByImage(all: Inventory['images']): Map<string, BundleSummaryReferrer[]> {
  const referrers = all.filter((e) => e.referrer);
  const reach = (seed: Iterable<string>): Set<string> => {
    const subjects = new Set(seed);
    const got = new Set<string>();
    for (let grew = true; grew; ) {
      grew = false;
      for (const e of referrers) {
        if (got.has(e.reference) || !subjects.has(e.referrer!.subject)) continue;
        got.add(e.reference);
        subjects.add(e.digest);
        grew = true;
      }
    }
    return got;
  };
  const byImage = new Map<string, Set<string>>();
  const claimed = new Set<string>();
  for (const img of all) {
    if (img.referrer) continue;
    const got = reach([img.digest, ...img.platforms.map((p) => p.digest)]);
    byImage.set(img.reference, got);
    for (const r of got) claimed.add(r);
  }
  const repository = (reference: string): string => {
    const ref = parseReference(reference);
    return `${ref.registry}/${ref.repository}`;
  };
  for (const [image, got] of byImage) {
    const orphans = referrers.filter((e) => !claimed.has(e.reference) && repository(e.reference) === repository(image));
    for (const r of reach(orphans.map((e) => e.referrer!.subject))) got.add(r);
  }
  const out = new Map<string, BundleSummaryReferrer[]>();
  for (const [image, got] of byImage) {
    out.set(
      image,
      referrers.filter((e) => got.has(e.reference)).map((e) => ({ reference: e.reference, kind: e.referrer!.kind, ...(e.referrer!.artifactType !== undefined ? { artifactType: e.referrer!.artifactType } : {}), digest: e.digest, subject: e.referrer!.subject, size: e.totalSize })),
    );
  }
  return out;
}

/**
 * The tar is as long as its entries add up to (`total`) and ends with the end-of-archive blocks. A
 * split bundle: its layout says that total, and every volume at hand has its size (a missing one
 * is not needed here: inspect reads the first).
 */
async function checkSize(opened: OpenedSource, total: number, problems: EntryProblem[]): Promise<boolean> {
  const src = opened.source;
  const v = opened.volumes;
  if (!v) {
    if (src.size < total) {
      problems.push({ entry: 'size', message: `truncated: the file is ${src.size} bytes, the inventory's entries add up to ${total}` });
      return true;
    }
    problems.push(...(await endProblems(src, total - END_OF_ARCHIVE.length, false)));
    return false;
  }
  const wrong = (v.problems ?? []).filter((p) => p.state !== 'missing');
  for (const p of wrong) problems.push({ entry: 'size', message: p.message });
  if (v.layout.totalSize !== total) problems.push({ entry: 'size', message: `the volumes add up to ${v.layout.totalSize} bytes, the inventory's entries to ${total}` });
  // The end blocks may straddle the last two volumes: read only with every volume at hand.
  else if ((v.problems ?? []).length === 0) problems.push(...(await endProblems(src, total - END_OF_ARCHIVE.length, false)));
  return wrong.some((p) => p.state === 'truncated');
}
