// Verifying a bundle: every blob's size and digest (streamed, in parallel, on worker threads for
// big bundles), every manifest's children present, and the inventory, index.json and the tar's
// entries telling the same story. Problems are collected into a report that names each bad blob and
// the images using it; only a tar too damaged or unsafe to read throws (IntegrityError).
import { availableParallelism } from 'node:os';
import { isDigest, digestAlgorithm, digestOf, type Digest } from '../core/digest.ts';
import { throwIfAborted } from '../core/errors.ts';
import { childrenOf, isManifestDescriptor, MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from '../core/manifest.ts';
import { mapLimit } from '../util/limiter.ts';
import {
  BUNDLE_INFO_PATH,
  blobPath,
  compareStrings,
  computeTotals,
  CONTAINERD_NAME_ANNOTATION,
  INDEX_PATH,
  INVENTORY_PATH,
  LOCK_PATH,
  OCI_LAYOUT_PATH,
  OCI_LAYOUT_VERSION,
  REF_NAME_ANNOTATION,
} from './format.ts';
import { mainThreadHasher, workerHasher, type RangeHasher } from './hash-pool.ts';
import { openBundle, type Bundle, type BundleEntry } from './read.ts';

export interface VerifyProblem {
  digest?: string;
  entry?: string;
  /** References of the images affected, sorted. */
  images: string[];
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  /** Blobs hashed. */
  blobs: number;
  /** Bytes hashed. */
  bytes: number;
  problems: VerifyProblem[];
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
  /** Bytes hashed so far of the total. */
  onProgress?: ((e: { done: number; total: number }) => void) | undefined;
}

const AUTO_THREADS_MIN_BYTES = 64 * 1024 * 1024;
const PROGRESS_STEP = 4 * 1024 * 1024;
const METADATA = new Set([BUNDLE_INFO_PATH, INVENTORY_PATH, LOCK_PATH, OCI_LAYOUT_PATH, INDEX_PATH]);
const BLOB_ENTRY = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/;

export async function verifyBundle(path: string, opts: VerifyBundleOptions = {}): Promise<VerifyReport> {
  const bundle = await openBundle(path, { signal: opts.signal });
  try {
    return await verifyOpen(bundle, opts);
  } finally {
    await bundle.close();
  }
}

async function verifyOpen(bundle: Bundle, opts: VerifyBundleOptions): Promise<VerifyReport> {
  const { signal } = opts;
  const problems: VerifyProblem[] = [];
  const inv = bundle.inventory;

  // The tar's blob entries.
  const blobEntries = new Map<Digest, BundleEntry>();
  for (const [name, e] of bundle.entries) {
    if (METADATA.has(name)) continue;
    const m = BLOB_ENTRY.exec(name);
    const d = m ? `${m[1]}:${m[2]}` : '';
    if (isDigest(d)) blobEntries.set(d, e);
    else problems.push({ entry: name, images: [], message: 'unexpected entry: neither a blob of the OCI layout nor airlock metadata' });
  }

  // Metadata that must be there.
  if (bundle.lockText === undefined) {
    problems.push({ entry: LOCK_PATH, images: [], message: `missing: the bundle has no ${LOCK_PATH}, so what it holds cannot be traced to a lock` });
  }
  await checkOciLayout(bundle, problems);

  // Inventory ⇔ tar entries.
  const invBlobs = new Map<string, { size: number; images: string[] }>();
  for (const b of inv.blobs) {
    if (invBlobs.has(b.digest)) problems.push({ digest: b.digest, entry: INVENTORY_PATH, images: b.images, message: 'listed twice in the inventory' });
    invBlobs.set(b.digest, b);
    const e = blobEntries.get(b.digest);
    if (!e) problems.push({ digest: b.digest, entry: blobPath(b.digest), images: b.images, message: 'missing: listed in the inventory but not in the bundle' });
    else if (e.size !== b.size) problems.push({ digest: b.digest, entry: blobPath(b.digest), images: b.images, message: `size mismatch: ${e.size} bytes in the bundle, the inventory says ${b.size}` });
  }
  for (const d of blobEntries.keys()) {
    if (!invBlobs.has(d)) problems.push({ digest: d, entry: blobPath(d), images: [], message: 'not listed in the inventory' });
  }
  const totals = computeTotals(inv.images, inv.blobs);
  for (const k of Object.keys(totals) as (keyof typeof totals)[]) {
    if (totals[k] !== inv.totals[k]) problems.push({ entry: INVENTORY_PATH, images: [], message: `totals.${k} is ${inv.totals[k]}, its lists add up to ${totals[k]}` });
  }

  // index.json ⇔ inventory.
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

  // Image graphs: every manifest's children present.
  const graph = await walkImages(bundle, roots, blobEntries, signal);
  problems.push(...graph.problems);
  for (const [ref, size] of graph.totalSizes) {
    const img = invImages.get(ref);
    if (img && !graph.incomplete && img.totalSize !== size) {
      problems.push({ digest: img.digest, entry: INVENTORY_PATH, images: [ref], message: `the inventory says the image has ${img.totalSize} bytes, its manifests add up to ${size}` });
    }
  }
  if (!graph.incomplete) {
    for (const d of blobEntries.keys()) {
      if (!graph.usedBy.has(d)) problems.push({ digest: d, entry: blobPath(d), images: [], message: 'not referenced by any image in index.json' });
    }
  }

  // Every blob's bytes.
  const imagesOf = (d: string): string[] => [...new Set([...(graph.usedBy.get(d) ?? []), ...(invBlobs.get(d)?.images ?? [])])].sort(compareStrings);
  const hashed = await hashBlobs(bundle, blobEntries, opts);
  for (const [d, result] of hashed.results) {
    if (result !== d) {
      problems.push({
        digest: d,
        entry: blobPath(d as Digest),
        images: imagesOf(d),
        message: result.startsWith('error:') ? `unreadable: ${result.slice(6)}` : `digest mismatch: the content hashes to ${result}`,
      });
    }
  }

  // Problems found by several checks about the same blob keep every image named.
  for (const p of problems) if (p.digest && p.images.length === 0) p.images = imagesOf(p.digest);
  problems.sort((a, b) => compareStrings(a.entry ?? a.digest ?? '', b.entry ?? b.digest ?? '') || compareStrings(a.message, b.message));
  throwIfAborted(signal);
  return { ok: problems.length === 0, blobs: hashed.results.size, bytes: hashed.bytes, problems };
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

async function walkImages(bundle: Bundle, roots: { reference: string; root: Descriptor }[], blobs: Map<Digest, BundleEntry>, signal: AbortSignal | undefined): Promise<GraphResult> {
  const usedBy = new Map<string, Set<string>>();
  const totalSizes = new Map<string, number>();
  const missing = new Map<string, { images: Set<string>; size: number; parents: Set<string> }>();
  const problems: VerifyProblem[] = [];
  const manifests = new Map<string, ReturnType<typeof parseManifest> | Error>();
  let incomplete = false;

  const readManifest = async (d: Descriptor, e: BundleEntry): Promise<ReturnType<typeof parseManifest> | Error> => {
    const cached = manifests.get(d.digest);
    if (cached) return cached;
    let result: ReturnType<typeof parseManifest> | Error;
    try {
      if (e.size > MAX_MANIFEST_BYTES) throw new Error(`larger than the ${MAX_MANIFEST_BYTES}-byte limit`);
      const bytes = await bundle.readEntry(blobPath(d.digest), MAX_MANIFEST_BYTES);
      // A wrong digest is reported by the hashing pass; its children cannot be trusted.
      if (digestOf(bytes, digestAlgorithm(d.digest)) !== d.digest) result = new Error('digest mismatch');
      else result = parseManifest(bytes, d.mediaType, `manifest ${d.digest}`);
    } catch (err) {
      result = err as Error;
      problems.push({ digest: d.digest, entry: blobPath(d.digest), images: [], message: `manifest cannot be read: ${(err as Error).message}` });
    }
    manifests.set(d.digest, result);
    return result;
  };

  for (const { reference, root } of roots) {
    throwIfAborted(signal);
    const mine = new Map<string, number>();
    const visit = async (d: Descriptor, parent: string): Promise<void> => {
      if (mine.has(d.digest)) return;
      mine.set(d.digest, d.size);
      let users = usedBy.get(d.digest);
      if (!users) usedBy.set(d.digest, (users = new Set()));
      users.add(reference);
      const e = blobs.get(d.digest as Digest);
      if (!e) {
        let m = missing.get(d.digest);
        if (!m) missing.set(d.digest, (m = { images: new Set(), size: d.size, parents: new Set() }));
        m.images.add(reference);
        m.parents.add(parent);
        return;
      }
      if (e.size !== d.size) {
        problems.push({ digest: d.digest, entry: blobPath(d.digest), images: [reference], message: `size mismatch: ${e.size} bytes in the bundle, ${parent} references ${d.size}` });
        return;
      }
      if (!isManifestDescriptor(d)) return;
      const parsed = await readManifest(d, e);
      if (parsed instanceof Error) {
        incomplete = true;
        return;
      }
      for (const c of childrenOf(parsed)) await visit(c, `manifest ${d.digest}`);
    };
    await visit(root, INDEX_PATH);
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
  const cores = availableParallelism();
  const concurrency = Math.max(1, opts.concurrency ?? cores);
  const total = [...blobs.values()].reduce((a, e) => a + e.size, 0);
  const threads = opts.threads === undefined || opts.threads === 'auto' ? (total >= AUTO_THREADS_MIN_BYTES && cores > 1 ? Math.min(cores, concurrency) : 0) : Math.max(0, Math.floor(opts.threads));
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
  const hasher: RangeHasher = threads > 0 ? workerHasher(bundle.fileHandle(), threads, opts.signal) : mainThreadHasher(bundle.fileHandle(), opts.signal);
  const results = new Map<string, string>();
  try {
    await mapLimit(
      jobs,
      threads > 0 ? Math.max(concurrency, threads) : concurrency,
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
