// Writing a bundle, step by step: check the options, remove what a killed earlier run left beside
// `out`, plan (walk every image, build the inventory and index.json), sign the inventory, lay out
// the tar's entries (entries.ts), write them into temp files beside `out` — one file in place
// (write-in-place.ts: headers at their offsets, every image copied into its blob slots in
// parallel), or volumes in one sequential pass (volume-sink.ts) followed by recovery volumes
// (parity.ts) — and commit every file at once. Blobs stream, never held whole in memory; on any
// error or abort the temp files are removed and nothing appears at `out`. With `base`, blobs the
// base has are left out (plan.ts). With `tools`, executables are carried too (tools.ts).
import { unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AirlockError, throwIfAborted, UsageError } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import { isFeeder, type ReadOnlyStorage } from '../content/types.ts';
import { ManifestCache } from '../content/graph.ts';
import type { CopyEvent } from '../copy.ts';
import { asAborted } from '../content/file-store.ts';
import { checkFreeSpace, checkTargets, commitAll, discardAll, openAtomic, removeLeftovers, writeFailure, type AtomicFile } from '../util/atomic-file.ts';
import { toolPath, type Inventory, type SignatureInfo, type VolumeLayout } from './format.ts';
import { planBundle, type BundleImageInput, type BundlePlan, type DeltaBase } from './plan.ts';
import type { SigningKey } from '../sign/keys.ts';
import { writeParityFiles } from './parity.ts';
import { checkSplit, encodeVolumeTable, parityName, trailerPlace, volumeFilesOf, volumeName, volumeRanges } from './volumes.ts';
import { bundleEntries, bundleInfo, signInventory, tarSize, volumeLayout, WriteProgress, type BlobFiller, type SignedInventory } from './entries.ts';
import { writeInPlace } from './write-in-place.ts';
import { inventoryTools, type ToolFile } from './tools.ts';
import { VolumeSink, writeInOrder } from './volume-sink.ts';

export type { BundleImageInput, DeltaBase, BlobFiller, ToolFile };

export interface WriteBundleOptions {
  /** Final path (with `split`: the name the volumes share); written to temp files in the same directory, renamed at the end. */
  out: string;
  images: BundleImageInput[];
  /** Where every manifest and blob of every image can be fetched (a FileStore). */
  source: ReadOnlyStorage;
  /** The lock file's exact text, stored as airlock/airlock.lock. */
  lockText: string;
  name: string;
  version: string;
  toolVersion: string;
  /** Write a delta: blobs (other than manifests) the base has are relied on, not carried. */
  base?: DeltaBase | undefined;
  /** Cut the tar into volumes of `size` bytes (`out`.001, …) with `parity` recovery volumes (`out`.par01, …). */
  split?: { size: number; parity?: number | undefined } | undefined;
  /** Sign airlock/inventory.json with this key. */
  sign?: SigningKey | undefined;
  /** Executables to carry under airlock/tools/ (pack --with-tools), hashed into the inventory. */
  tools?: readonly ToolFile[] | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Puts each blob's bytes into the bundle (pack: from its cache, or downloaded while the cache
   * keeps a copy), for the image `image` of `images`. Default: from the image's source.
   */
  fill?: BlobFiller | undefined;
  /** Blobs moved into a one-file bundle, as copyGraph reports them. */
  onEvent?: ((e: CopyEvent) => void) | undefined;
  /** Images walked at once while planning (pack: manifests come from registries); default 1. */
  planConcurrency?: number | undefined;
  /** Plan without checking that every blob is in the source (pack: they are fetched while writing). */
  blobsLater?: boolean | undefined;
  /** Where manifests (and configs) read while planning are kept; the fill may take them from there. */
  manifests?: ManifestCache | undefined;
  /** Called once the bundle is planned, before its first byte is written (pack reports its totals). */
  onPlan?: ((plan: BundlePlan) => void | Promise<void>) | undefined;
  /** Blobs filled at once (default 8). */
  concurrency?: number | undefined;
  /** Bytes of the tar written so far, of `total` (known before the first byte); then the parity pass's. */
  onProgress?: ((e: { written: number; total: number; phase?: 'write' | 'parity' }) => void) | undefined;
}

export interface WriteBundleResult {
  /** Absolute path of the bundle (with `split`: the name the volumes share). */
  path: string;
  /** Tar size in bytes (the sum of the data volumes). */
  size: number;
  inventory: Inventory;
  /** sha256 of airlock/inventory.json: the bundle's identity (a delta names its base by it). */
  inventoryDigest: Digest;
  /** Every file written: the bundle, or its data volumes then its recovery volumes. */
  files: string[];
  /** Temp files an earlier, killed run left beside `out`, removed before this one wrote. */
  cleaned: string[];
  volumes?: VolumeLayout;
  signature?: SignatureInfo;
}

export async function writeBundle(opts: WriteBundleOptions): Promise<WriteBundleResult> {
  checkOptions(opts);
  const out = resolve(opts.out);
  const cleaned = await removeLeftovers(out);
  const manifests = opts.manifests ?? new ManifestCache();
  const tools = await inventoryTools(opts.tools ?? [], opts.signal);
  const plan = await planBundle(opts.images, opts.source, {
    tools,
    signal: opts.signal,
    base: opts.base,
    lock: { name: opts.name, version: opts.version, text: opts.lockText },
    concurrency: opts.planConcurrency,
    checkBlobs: opts.blobsLater !== true,
    manifests,
  });
  await opts.onPlan?.(plan);
  const inventory = signInventory(plan, opts.sign);
  const toolFiles = new Map((opts.tools ?? []).map((t) => [toolPath(t.platform, t.name), t.file]));
  const written = opts.split
    ? await writeVolumes(out, plan, inventory, toolFiles, { ...opts, split: { size: opts.split.size, parity: opts.split.parity ?? 0 } })
    : await writeOneFile(out, plan, inventory, manifests, toolFiles, opts);
  // What an earlier pack left under this name and this one did not write: a stale volume or
  // recovery volume beside fresh ones would be read as part of the new bundle.
  await removeStale(out, new Set(written.files));
  return {
    path: out,
    size: written.size,
    inventory: plan.inventory,
    inventoryDigest: inventory.digest,
    files: written.files,
    cleaned,
    ...(written.layout ? { volumes: written.layout } : {}),
    ...(inventory.signature ? { signature: inventory.signature.info } : {}),
  };
}

function checkOptions(opts: WriteBundleOptions): void {
  throwIfAborted(opts.signal);
  for (const k of ['name', 'version', 'toolVersion', 'lockText'] as const) {
    if (typeof opts[k] !== 'string') throw new UsageError(`writeBundle: ${k} must be a string`);
  }
  if (opts.split) checkSplit(opts.split.size, opts.split.parity);
}

/** One file, written in place; its blobs filled in parallel. */
async function writeOneFile(
  out: string,
  plan: BundlePlan,
  inventory: SignedInventory,
  manifests: ManifestCache,
  toolFiles: ReadonlyMap<string, string>,
  opts: WriteBundleOptions,
): Promise<{ files: string[]; size: number; layout?: undefined }> {
  const entries = bundleEntries(plan, inventory, bundleInfo({ ...opts, tools: plan.tools.length > 0, files: (plan.inventory.files ?? []).length > 0 }), opts.lockText);
  const progress = new WriteProgress(tarSize(entries), opts.onProgress);
  await checkFreeSpace(out, progress.total);
  await commitTogether(out, [out], opts.signal, async (open) => {
    await writeInPlace(await open(out), {
      plan,
      entries,
      progress,
      source: opts.source,
      fill: opts.fill ?? fillFrom(opts.source),
      manifests,
      toolFiles,
      concurrency: opts.concurrency ?? 8,
      signal: opts.signal,
      onEvent: opts.onEvent,
    });
    checkComplete(progress);
  });
  return { files: [out], size: progress.total };
}

/** Volumes in one sequential pass, then the recovery volumes computed over them. */
async function writeVolumes(
  out: string,
  plan: BundlePlan,
  inventory: SignedInventory,
  toolFiles: ReadonlyMap<string, string>,
  opts: WriteBundleOptions & { split: { size: number; parity: number } },
): Promise<{ files: string[]; size: number; layout: VolumeLayout }> {
  const info = bundleInfo({ ...opts, tools: plan.tools.length > 0, files: (plan.inventory.files ?? []).length > 0 });
  const layout = volumeLayout(plan, inventory, info, opts.lockText, opts.split);
  const place = trailerPlace(inventory.digest, layout);
  const sink = new VolumeSink(layout, place);
  const table = () => ({ bundle: inventory.digest, parity: layout.parity, totalSize: layout.totalSize, volumeSize: layout.size, volumes: sink.expectedChecksums() });
  const entries = bundleEntries(plan, inventory, { ...info, volumes: layout }, opts.lockText, { bytes: () => encodeVolumeTable(table()), length: place.length });
  const progress = new WriteProgress(tarSize(entries), opts.onProgress);
  if (progress.total !== layout.totalSize) throw new AirlockError('INTERNAL', 'internal', `planned ${layout.totalSize} bytes, the entries add up to ${progress.total}`);
  const volumes = volumeRanges(layout).map((_, i) => volumeName(out, i + 1));
  const parity = Array.from({ length: layout.parity }, (_, p) => parityName(out, p + 1));
  await checkFreeSpace(out, progress.total + layout.parity * Math.min(layout.size, progress.total));
  await commitTogether(out, [...volumes, ...parity], opts.signal, async (open, files) => {
    sink.open((i) => open(volumes[i]!));
    await writeInOrder(sink, { plan, entries, progress, fill: opts.fill ?? fillFrom(opts.source), toolFiles, signal: opts.signal });
    await sink.finish();
    checkComplete(progress);
    if (parity.length === 0) return;
    const data = files.map((f) => f.tempPath);
    const recovery: AtomicFile[] = [];
    for (const p of parity) recovery.push(await open(p));
    let done = 0;
    await writeParityFiles(data, table(), recovery.map((f, p) => ({ index: p + 1, fh: f.handle })), {
      signal: opts.signal,
      onBytes: (n) => {
        done += n;
        opts.onProgress?.({ written: done, total: progress.total, phase: 'parity' });
      },
    });
  });
  return { files: [...volumes, ...parity], size: progress.total, layout };
}

/**
 * Write files that appear together: `write` opens each through `open` (a temp file beside it),
 * and they are committed at once when it succeeds; on any failure they are all removed.
 */
async function commitTogether(out: string, targets: readonly string[], signal: AbortSignal | undefined, write: (open: (path: string) => Promise<AtomicFile>, files: readonly AtomicFile[]) => Promise<void>): Promise<void> {
  const files: AtomicFile[] = [];
  const open = async (path: string): Promise<AtomicFile> => {
    const f = await openAtomic(path, { signal });
    files.push(f);
    return f;
  };
  try {
    await checkTargets(targets, { mkdir: true });
    await write(open, files);
    await commitAll(files, { signal });
  } catch (e) {
    await discardAll(files);
    throw asAborted(writeFailure(e, out, files), signal);
  }
}

function checkComplete(progress: WriteProgress): void {
  progress.report(true);
  if (progress.written !== progress.total) throw new AirlockError('INTERNAL', 'internal', `bundle writer produced ${progress.written} bytes, planned ${progress.total}`);
}

/**
 * The default filler: a local store feeds its (verified) bytes; any other source streams them
 * (verified by its contract). Bytes beyond `desc.size` are refused by the writers' sinks.
 */
function fillFrom(source: ReadOnlyStorage): BlobFiller {
  return async (desc, sink, signal, image) => {
    const from = image.source ?? source;
    if (isFeeder(from)) return await from.feed(desc, sink, { signal });
    let position = 0;
    for await (const chunk of await from.fetch(desc, { signal })) {
      const c = chunk as Buffer;
      await sink([c], position);
      position += c.length;
    }
  };
}

async function removeStale(out: string, keep: ReadonlySet<string>): Promise<void> {
  const stale = [...(await volumeFilesOf(out)), out].filter((p) => !keep.has(p));
  await Promise.all(stale.map((p) => unlink(p).catch(() => {})));
}
