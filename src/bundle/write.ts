// Writing a bundle: plan (walk every image, build inventory and index.json), then write one
// deterministic tar into a temp file beside `out`, fsync, rename. Planning fixes every entry's
// offset, so a one-file bundle is written in place: headers and small entries at their offsets,
// blobs filled in parallel at theirs (pack downloads straight into them), written back to disk as
// they go. Blobs stream, never held whole in memory; on any error or abort the temp files are
// removed and nothing appears at `out`.
//
// With `split`, the tar is written in one sequential pass cut into volumes (hashed as they are
// written; the checksum table is the tar's last entry, see volumes.ts), then recovery volumes are
// computed in a second pass over them (parity.ts). With `sign`, the inventory's exact bytes are
// signed before the first byte is written. With `base`, blobs the base has are left out (plan.ts).
import { createHash, type Hash } from 'node:crypto';
import { unlink, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { AbortedError, AirlockError, IntegrityError, NotFoundError, UsageError, throwIfAborted } from '../core/errors.ts';
import { digestAlgorithm, digestOf, type Digest } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import { isFeeder, type ChunkSink, type ReadOnlyStorage, type Storage } from '../content/types.ts';
import { isSelfVerifying, VerifyStream } from '../content/verify-stream.ts';
import { ManifestCache } from '../content/graph.ts';
import { copyGraph, type CopyEvent } from '../copy.ts';
import { asAborted, writevAll } from '../content/file-store.ts';
import { Limiter, mapLimit } from '../util/limiter.ts';
import { checkTargets, commitAll, discardAll, openAtomic, writeAll, writeFailure, type AtomicFile } from '../util/atomic-file.ts';
import {
  BUNDLE_FORMAT_VERSION,
  BUNDLE_INFO_PATH,
  blobPath,
  canonicalJson,
  INDEX_PATH,
  INVENTORY_PATH,
  LOCK_PATH,
  OCI_LAYOUT_PATH,
  OCI_LAYOUT_VERSION,
  SIGNATURE_INFO_PATH,
  SIGNATURE_PATH,
  VOLUMES_PATH,
  type BundleInfo,
  type Inventory,
  type SignatureInfo,
  type VolumeLayout,
} from './format.ts';
import { planBundle, type BundleImageInput, type BundlePlan, type DeltaBase } from './plan.ts';
import { signPayload, type SigningKey } from '../sign/keys.ts';
import { MAX_SHARDS } from '../parity/reed-solomon.ts';
import { writeParityFiles } from './parity.ts';
import {
  checkSplit,
  countVolumes,
  encodeVolumeTable,
  MAX_VOLUMES,
  parityName,
  placeholderTable,
  trailerPlace,
  volumeFilesOf,
  volumeName,
  volumeRanges,
  type VolumeTable,
} from './volumes.ts';
import { encodedEntrySize, encodeHeader, END_OF_ARCHIVE, paddingFor, type TarHeaderInput } from './tar.ts';

export type { BundleImageInput, DeltaBase };

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
  volumes?: VolumeLayout;
  signature?: SignatureInfo;
}

export const TOOL_NAME = 'airlock';

/** A one-file bundle starts writing back its pages after each this many bytes. */
const EARLY_SYNC_BYTES = 64 * 1024 * 1024;
/** Progress is reported at most once per this many bytes (and at the end). */
const PROGRESS_STEP = 1024 * 1024;
/**
 * Puts one blob's bytes into the bundle through `sink`, in order (a fill that starts over repeats
 * positions), and resolves only once they were checked against `desc`'s size and digest. `signal`
 * fires when the bundle is abandoned (the caller's abort, or another blob's failure): a filler
 * waiting on the network stops then, not at its next chunk.
 */
export type BlobFiller = (desc: Descriptor, sink: ChunkSink, signal: AbortSignal | undefined, image: BundleImageInput) => Promise<void>;

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

interface Item {
  header: TarHeaderInput;
  bytes?: Buffer | (() => Buffer);
  blob?: Descriptor;
}

export async function writeBundle(opts: WriteBundleOptions): Promise<WriteBundleResult> {
  const { signal } = opts;
  throwIfAborted(signal);
  for (const k of ['name', 'version', 'toolVersion', 'lockText'] as const) {
    if (typeof opts[k] !== 'string') throw new UsageError(`writeBundle: ${k} must be a string`);
  }
  const split = opts.split;
  const parity = split?.parity ?? 0;
  if (split) checkSplit(split.size, split.parity);

  const manifests = opts.manifests ?? new ManifestCache();
  const plan = await planBundle(opts.images, opts.source, {
    signal,
    base: opts.base,
    lock: { name: opts.name, version: opts.version, text: opts.lockText },
    concurrency: opts.planConcurrency,
    checkBlobs: opts.blobsLater !== true,
    manifests,
  });
  await opts.onPlan?.(plan);
  const inventoryBytes = Buffer.from(canonicalJson(plan.inventory, true));
  const inventoryDigest = digestOf(inventoryBytes);
  let signature: SignatureInfo | undefined;
  let signatureBytes: Buffer | undefined;
  if (opts.sign) {
    signatureBytes = signPayload(opts.sign, inventoryBytes);
    signature = { algorithm: opts.sign.algorithm, key: opts.sign.fingerprint, payload: INVENTORY_PATH, signature: SIGNATURE_PATH };
  }

  const file = (name: string, bytes: Buffer): Item => ({ header: { name, type: 'file', size: bytes.length }, bytes });
  const build = (info: BundleInfo, trailer: (() => Buffer) | undefined, trailerLength: number): Item[] => {
    const items: Item[] = [
      // Every parent directory is an explicit entry: skopeo (containers/storage) chowns implicitly
      // created parents to 0:0, which fails for non-root users and in user namespaces.
      { header: { name: 'airlock/', type: 'dir', size: 0 } },
      file(BUNDLE_INFO_PATH, Buffer.from(canonicalJson(info, true))),
      file(INVENTORY_PATH, inventoryBytes),
    ];
    if (signatureBytes && signature) items.push(file(SIGNATURE_PATH, signatureBytes), file(SIGNATURE_INFO_PATH, Buffer.from(canonicalJson(signature, true))));
    items.push(
      file(LOCK_PATH, Buffer.from(opts.lockText, 'utf8')),
      file(OCI_LAYOUT_PATH, Buffer.from(canonicalJson({ imageLayoutVersion: OCI_LAYOUT_VERSION }, false))),
      file(INDEX_PATH, plan.indexBytes),
      { header: { name: 'blobs/', type: 'dir', size: 0 } },
    );
    let algorithm = '';
    for (const b of plan.blobs) {
      const alg = digestAlgorithm(b.digest);
      if (alg !== algorithm) {
        items.push({ header: { name: `blobs/${alg}/`, type: 'dir', size: 0 } });
        algorithm = alg;
      }
      items.push({ header: { name: blobPath(b.digest), type: 'file', size: b.size }, blob: b });
    }
    if (trailer) items.push({ header: { name: VOLUMES_PATH, type: 'file', size: trailerLength }, bytes: trailer });
    return items;
  };
  const sizeOf = (items: Item[]): number => items.reduce((a, i) => a + encodedEntrySize(i.header), 0) + END_OF_ARCHIVE.length;

  const baseInfo: BundleInfo = { formatVersion: BUNDLE_FORMAT_VERSION, tool: { name: TOOL_NAME, version: opts.toolVersion }, name: opts.name, version: opts.version };
  let items: Item[];
  let layout: VolumeLayout | undefined;
  let sink: VolumeSink | undefined;
  if (!split) {
    items = build(baseInfo, undefined, 0);
  } else {
    // bundle.json records the total size and volume count, and the table's length depends on
    // them: iterate to the fixed point (a digit more in a size moves it; two rounds in practice).
    let l: VolumeLayout = { size: split.size, count: 1, totalSize: 0, parity };
    for (let round = 0; ; round++) {
      const length = encodeVolumeTable(placeholderTable(inventoryDigest, l)).length;
      const total = sizeOf(build({ ...baseInfo, volumes: l }, () => Buffer.alloc(0), length));
      const next: VolumeLayout = { ...l, totalSize: total, count: countVolumes(total, split.size) };
      if (next.totalSize === l.totalSize && next.count === l.count) break;
      if (round > 50) throw new AirlockError('INTERNAL', 'internal', 'volume layout does not settle');
      l = next;
    }
    layout = l;
    if (layout.count > MAX_VOLUMES) {
      throw new UsageError(`volume size ${formatSize(split.size)} would make ${layout.count} volumes, more than ${MAX_VOLUMES}`, { code: 'SPLIT_INVALID', hint: 'choose a larger volume size' });
    }
    if (layout.count + parity > MAX_SHARDS) {
      throw new UsageError(`${layout.count} volumes + ${parity} recovery volumes is more than the ${MAX_SHARDS} Reed–Solomon over GF(256) can code`, { code: 'SPLIT_INVALID', hint: 'choose a larger volume size or fewer recovery volumes' });
    }
    const place = trailerPlace(inventoryDigest, layout);
    const owned = layout;
    sink = new VolumeSink(owned, place);
    const s = sink;
    items = build({ ...baseInfo, volumes: owned }, () => encodeVolumeTable({ bundle: inventoryDigest, parity, totalSize: owned.totalSize, volumeSize: owned.size, volumes: s.expectedChecksums() }), place.length);
  }
  const total = sizeOf(items);
  if (layout && total !== layout.totalSize) throw new AirlockError('INTERNAL', 'internal', `planned ${layout.totalSize} bytes, items add up to ${total}`);

  let written = 0;
  let reported = -1;
  const progress = (force: boolean): void => {
    if (opts.onProgress && (force || written - reported >= PROGRESS_STEP)) {
      reported = written;
      opts.onProgress({ written, total, phase: 'write' });
    }
  };
  const fill = opts.fill ?? fillFrom(opts.source);
  const smallBytes = (item: Item): Buffer => {
    const bytes = typeof item.bytes === 'function' ? item.bytes() : item.bytes!;
    if (bytes.length !== item.header.size) throw new AirlockError('INTERNAL', 'internal', `${item.header.name}: ${bytes.length} bytes, planned ${item.header.size}`);
    return bytes;
  };
  /** An entry's bytes when they are in memory (small entries, manifests); undefined for a blob to fill. */
  const inlineBytes = (item: Item): Buffer | undefined => (item.bytes ? smallBytes(item) : item.blob ? plan.manifests.get(item.blob.digest) : undefined);

  /**
   * One file: every entry's place is known, so headers and small entries are written first and
   * blobs are filled in parallel at their offsets. Padding and the end-of-archive blocks are the
   * zeros of the pre-sized file.
   */
  async function writeInPlace(file: AtomicFile): Promise<void> {
    const fh = file.handle;
    const ac = new AbortController();
    const inner = signal ? AbortSignal.any([signal, ac.signal]) : ac.signal;
    const jobs: { desc: Descriptor; at: number }[] = [];
    const meta: { parts: Buffer[]; at: number }[] = [];
    try {
      await fh.truncate(total);
      let pos = 0;
      for (const item of items) {
        const parts = [encodeHeader(item.header)];
        const inline = inlineBytes(item);
        if (inline) parts.push(inline);
        else if (item.blob) jobs.push({ desc: item.blob, at: pos + parts[0]!.length });
        meta.push({ parts, at: pos });
        pos += encodedEntrySize(item.header);
      }
      if (pos + END_OF_ARCHIVE.length !== total) throw new AirlockError('INTERNAL', 'internal', `entries end at ${pos}, planned ${total - END_OF_ARCHIVE.length}`);
      // Headers, small entries, padding and the end blocks are down: what is left is blob data.
      written = total - jobs.reduce((a, j) => a + j.desc.size, 0);
      progress(false);
      let syncing: Promise<void> | undefined;
      let synced = 0;
      const slots = new BundleSlots(jobs, plan.manifests, inner, async (chunks, at, grew) => {
        await writevAll(fh, chunks, at);
        // Write back as we go: the disk works while the network does, and the final fsync has
        // little left to do (350 MiB here: 210 ms at the end without, 20 ms with).
        if (!syncing && written - synced >= EARLY_SYNC_BYTES) {
          synced = written;
          // An error here is the final fsync's to report.
          const done = (): void => {
            syncing = undefined;
          };
          syncing = fh.datasync().then(done, done);
        }
        written += grew;
        progress(false);
      });
      const concurrency = opts.concurrency ?? 8;
      const limiter = new Limiter(concurrency);
      const done = new Map<string, Promise<void>>();
      const onFailure = (e: unknown): never => {
        // The first failure stops every other copy: a filler waiting on the network stops now.
        ac.abort();
        throw e;
      };
      const results = await Promise.allSettled([
        // Headers and small entries go down alongside the blobs.
        mapLimit(meta, concurrency, (m) => writevAll(fh, m.parts, m.at)).catch(onFailure),
        // Blobs move as every copy does: copyGraph from each image's source into the bundle's
        // slots, each blob once under one limiter. Twice as many images as transfers are under way:
        // enough to keep the transfers busy, few enough that a thousand images do not all hold
        // their state at once.
        mapLimit(plan.images, 2 * concurrency, async (img) => {
          await copyGraph(img.source ?? opts.source, slots, img.root, {
            limiter,
            done,
            manifests,
            signal: inner,
            image: img.reference,
            onEvent: opts.onEvent,
            transferBlob: async (desc, onBytes, s) => {
              await fill(desc, slots.sink(desc, onBytes), s, img);
              slots.checkFilled(desc);
            },
          }).catch(onFailure);
        }, inner),
      ]);
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
      if (failed.length > 0) throw failed.find((e) => !(e instanceof AbortedError) && (e as Error | undefined)?.name !== 'AbortError') ?? failed[0];
      slots.checkAllFilled();
      await syncing;
      await file.finish();
    } catch (e) {
      ac.abort();
      throw e;
    }
  }

  /** The first image (by reference) that uses a blob: where the in-order writer takes it from. */
  let users: Map<string, BundleImageInput> | undefined;
  function firstUser(desc: Descriptor): BundleImageInput {
    if (!users) {
      const byReference = new Map(plan.images.map((i) => [i.reference, i]));
      users = new Map(plan.inventory.blobs.map((b) => [b.digest, byReference.get(b.images[0]!)!]));
    }
    return users.get(desc.digest)!;
  }

  /** Volumes: one sequential pass, each volume hashed as it is written. */
  async function writeInOrder(sink: VolumeSink): Promise<void> {
    const put = async (b: Buffer): Promise<void> => {
      throwIfAborted(signal);
      await sink.write(b);
      written += b.length;
      progress(false);
    };
    for (const item of items) {
      await put(encodeHeader(item.header));
      const inline = inlineBytes(item);
      if (inline) await put(inline);
      else if (item.blob) {
        const desc = item.blob;
        let next = 0;
        await fill(desc, async (chunks, position) => {
          if (position !== next) throw new IntegrityError(`blob ${desc.digest}: bytes from ${position} arrived where ${next} was expected; a split bundle is written in one pass`, { code: 'SIZE_MISMATCH' });
          for (const c of chunks) {
            if (next + c.length > desc.size) throw new IntegrityError(`blob ${desc.digest}: more than the expected ${desc.size} bytes`, { code: 'SIZE_MISMATCH' });
            next += c.length;
            await put(c);
          }
        }, signal, firstUser(desc));
        if (next !== desc.size) throw new IntegrityError(`blob ${desc.digest}: the source gave only ${next} of ${desc.size} bytes`, { code: 'SIZE_MISMATCH' });
      }
      const pad = paddingFor(item.header.size);
      if (pad > 0 && item.header.type === 'file') await put(Buffer.alloc(pad));
    }
    await put(END_OF_ARCHIVE);
  }

  const out = resolve(opts.out);
  const finals = layout ? volumeRanges(layout).map((_, i) => volumeName(out, i + 1)) : [out];
  const parityFinals = Array.from({ length: parity }, (_, p) => parityName(out, p + 1));
  // Every file of the bundle (data volumes, then recovery volumes), committed together at the end.
  const files: AtomicFile[] = [];
  const openFile = async (final: string): Promise<AtomicFile> => {
    const f = await openAtomic(final, { signal });
    files.push(f);
    return f;
  };
  try {
    await checkTargets([...finals, ...parityFinals], { mkdir: true });
    if (sink) {
      sink.open((i) => openFile(finals[i]!));
      await writeInOrder(sink);
      await sink.finish();
    } else {
      await writeInPlace(await openFile(out));
    }
    progress(true);
    if (written !== total) throw new AirlockError('INTERNAL', 'internal', `bundle writer produced ${written} bytes, planned ${total}`);
    if (layout && sink && parity > 0) {
      const table: VolumeTable = { bundle: inventoryDigest, parity, totalSize: layout.totalSize, volumeSize: layout.size, volumes: sink.expectedChecksums() };
      let done = 0;
      const dataFiles = files.map((f) => f.tempPath);
      const parityFiles: AtomicFile[] = [];
      for (const final of parityFinals) parityFiles.push(await openFile(final));
      await writeParityFiles(
        dataFiles,
        table,
        parityFiles.map((f, p) => ({ index: p + 1, fh: f.handle })),
        {
          signal,
          onBytes: (n) => {
            done += n;
            opts.onProgress?.({ written: done, total, phase: 'parity' });
          },
        },
      );
    }
    await commitAll(files, { signal });
  } catch (e) {
    await discardAll(files);
    throw asAborted(writeFailure(e, out, files), signal);
  }
  // What an earlier pack left under this name and this one did not write: a stale volume or
  // recovery volume beside fresh ones would be read as part of the new bundle.
  await removeStale(out, new Set([...finals, ...parityFinals]));
  return {
    path: out,
    size: total,
    inventory: plan.inventory,
    inventoryDigest,
    files: [...finals, ...parityFinals],
    ...(layout ? { volumes: layout } : {}),
    ...(signature ? { signature } : {}),
  };
}

async function removeStale(out: string, keep: ReadonlySet<string>): Promise<void> {
  const stale = [...(await volumeFilesOf(out)), out].filter((p) => !keep.has(p));
  await Promise.all(stale.map((p) => unlink(p).catch(() => {})));
}

function formatSize(n: number): string {
  for (const [u, f] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) if (n >= f) return `${(n / f).toFixed(n % f === 0 ? 0 : 1)} ${u}`;
  return `${n} bytes`;
}

/**
 * Writes the tar stream into volume files (temp paths), hashing each volume as it goes — every
 * byte but those of airlock/volumes.json, whose content is produced last from these very hashes.
 */
class VolumeSink {
  readonly #ranges: { start: number; size: number }[];
  readonly #place: { offset: number; length: number };
  #openVolume: (i: number) => Promise<AtomicFile> = () => Promise.reject(new Error('VolumeSink: not opened'));
  #file: AtomicFile | undefined;
  #hashes: (Hash | undefined)[] = [];
  #expected: string[] | undefined;
  #fh: FileHandle | undefined;
  #current = -1;
  #pos = 0;

  constructor(layout: VolumeLayout, place: { offset: number; length: number }) {
    this.#ranges = volumeRanges(layout);
    this.#place = place;
  }

  /** `openVolume(i)` gives the file volume i + 1 is written into, when the stream reaches it. */
  open(openVolume: (i: number) => Promise<AtomicFile>): void {
    this.#openVolume = openVolume;
  }

  async write(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const i = this.#volumeAt(this.#pos);
      const r = this.#ranges[i]!;
      if (i !== this.#current) await this.#switchTo(i);
      const n = Math.min(chunk.length - off, r.start + r.size - this.#pos);
      const part = chunk.subarray(off, off + n);
      this.#hash(i, part, this.#pos);
      await writeAll(this.#fh!, part, this.#pos - r.start);
      this.#pos += n;
      off += n;
    }
  }

  /** The checksum of every volume, computed when the table is about to be written: what follows it is zeros. */
  expectedChecksums(): { sha256: string; size: number }[] {
    if (this.#expected) return this.#ranges.map((r, i) => ({ sha256: this.#expected![i]!, size: r.size }));
    if (this.#pos !== this.#place.offset) throw new AirlockError('INTERNAL', 'internal', `volume table requested at ${this.#pos}, planned at ${this.#place.offset}`);
    const after = this.#place.offset + this.#place.length;
    this.#expected = this.#ranges.map((r, i) => {
      const h = (this.#hashes[i] ?? createHash('sha256')).copy();
      for (let n = Math.max(0, r.start + r.size - Math.max(after, r.start)); n > 0; ) {
        const z = Math.min(n, ZEROS.length);
        h.update(ZEROS.subarray(0, z));
        n -= z;
      }
      return h.digest('hex');
    });
    return this.expectedChecksums();
  }

  async finish(): Promise<void> {
    await this.#closeCurrent();
    const expected = this.expectedChecksums();
    this.#hashes.forEach((h, i) => {
      const actual = (h ?? createHash('sha256')).digest('hex');
      if (actual !== expected[i]!.sha256) throw new AirlockError('INTERNAL', 'internal', `volume ${i + 1}: wrote ${actual}, the table says ${expected[i]!.sha256}`);
    });
  }

  #volumeAt(pos: number): number {
    const i = Math.floor(pos / this.#ranges[0]!.size);
    return Math.min(i, this.#ranges.length - 1);
  }

  async #switchTo(i: number): Promise<void> {
    await this.#closeCurrent();
    this.#file = await this.#openVolume(i);
    this.#fh = this.#file.handle;
    this.#current = i;
    this.#hashes[i] ??= createHash('sha256');
  }

  async #closeCurrent(): Promise<void> {
    if (!this.#file) return;
    this.#fh = undefined;
    await this.#file.finish();
    this.#file = undefined;
  }

  /** Hash `part` (at tar offset `pos`) into volume i, leaving out the table's own bytes. */
  #hash(i: number, part: Buffer, pos: number): void {
    const h = (this.#hashes[i] ??= createHash('sha256'));
    const a = this.#place.offset - pos;
    const b = a + this.#place.length;
    if (b <= 0 || a >= part.length) {
      h.update(part);
      return;
    }
    if (a > 0) h.update(part.subarray(0, a));
    if (b < part.length) h.update(part.subarray(Math.max(0, b)));
  }
}

const ZEROS = Buffer.alloc(1024 * 1024);

/**
 * The blob entries of a one-file bundle being written in place, as a copy destination: every
 * manifest (written from memory by the writer) and every blob the bundle does not carry (a delta's
 * base has it) counts as present; a carried blob is filled through its sink at its offset.
 */
class BundleSlots implements Storage {
  readonly #slots = new Map<string, { desc: Descriptor; at: number; end: number }>();
  readonly #manifests: ReadonlyMap<string, Buffer>;
  readonly #signal: AbortSignal;
  readonly #write: (chunks: Buffer[], at: number, grew: number) => Promise<void>;

  /** `write` puts chunks at an absolute offset; `grew` is how many bytes are new (a retried fill rewrites some). */
  constructor(jobs: readonly { desc: Descriptor; at: number }[], manifests: ReadonlyMap<string, Buffer>, signal: AbortSignal, write: (chunks: Buffer[], at: number, grew: number) => Promise<void>) {
    for (const j of jobs) this.#slots.set(j.desc.digest, { desc: j.desc, at: j.at, end: 0 });
    this.#manifests = manifests;
    this.#signal = signal;
    this.#write = write;
  }

  get label(): string {
    return 'the bundle being written';
  }

  async exists(desc: Descriptor): Promise<boolean> {
    const slot = this.#slots.get(desc.digest);
    return slot === undefined || slot.end === slot.desc.size;
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    const bytes = this.#manifests.get(desc.digest);
    if (!bytes) throw new NotFoundError(`blob ${desc.digest} is not readable from a bundle being written`, { code: 'BLOB_UNKNOWN' });
    return Readable.from([bytes]);
  }

  async push(desc: Descriptor, content: Readable): Promise<void> {
    const sink = this.sink(desc, () => {});
    const input = isSelfVerifying(content, desc) ? content : content.pipe(new VerifyStream(desc, `blob ${desc.digest}`));
    content.once('error', (e) => input.destroy(e));
    let position = 0;
    for await (const chunk of input) {
      await sink([chunk as Buffer], position);
      position += (chunk as Buffer).length;
    }
    this.checkFilled(desc);
  }

  /** Where `desc`'s bytes go, in order; a fill that starts over repeats positions. */
  sink(desc: Descriptor, onBytes: (n: number) => void): ChunkSink {
    const slot = this.#slots.get(desc.digest);
    if (!slot) throw new AirlockError('INTERNAL', 'internal', `blob ${desc.digest} has no place in the bundle`);
    return async (chunks, position) => {
      throwIfAborted(this.#signal);
      const n = chunks.reduce((a, c) => a + c.length, 0);
      if (!Number.isSafeInteger(position) || position < 0 || position + n > desc.size) {
        throw new IntegrityError(`blob ${desc.digest}: the source gave bytes ${position}..${position + n} of a ${desc.size}-byte blob`, { code: 'SIZE_MISMATCH' });
      }
      const grew = Math.max(0, position + n - slot.end);
      await this.#write(chunks, slot.at + position, grew);
      slot.end += grew;
      if (grew > 0) onBytes(grew);
    };
  }

  /** The fill of `desc` is over: every byte must be there. */
  checkFilled(desc: Descriptor): void {
    const slot = this.#slots.get(desc.digest);
    if (slot && slot.end !== desc.size) throw new IntegrityError(`blob ${desc.digest}: the source gave only ${slot.end} of ${desc.size} bytes`, { code: 'SIZE_MISMATCH' });
  }

  checkAllFilled(): void {
    for (const slot of this.#slots.values()) this.checkFilled(slot.desc);
  }
}
