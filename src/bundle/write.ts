// Writing a bundle: plan (walk every image, build inventory and index.json), then stream one
// deterministic tar into a temp file beside `out`, fsync, rename. Blobs are streamed from the
// source one after another, never held in memory; on any error or abort the temp files are removed
// and nothing appears at `out`. Each chunk is written before the next one is produced, so blobs of
// a file-backed source (the pack cache) are copied through one reused buffer.
//
// With `split`, the same stream is cut into volumes (hashed as they are written; the checksum
// table is the tar's last entry, see volumes.ts), then recovery volumes are computed in a second
// pass over them (parity.ts). With `sign`, the inventory's exact bytes are signed before the first
// byte is written. With `base`, blobs the base has are left out (plan.ts).
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AirlockError, IntegrityError, NotFoundError, UsageError, throwIfAborted } from '../core/errors.ts';
import { createDigester, digestAlgorithm, digestOf, type Digest } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import type { ReadOnlyStorage } from '../content/types.ts';
import { asAborted } from '../content/file-store.ts';
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
import { planBundle, type BundleImageInput, type DeltaBase } from './plan.ts';
import { signPayload, type SigningKey } from '../sign/keys.ts';
import { MAX_SHARDS } from '../parity/reed-solomon.ts';
import { writeAll, writeParityFiles } from './parity.ts';
import {
  countVolumes,
  encodeVolumeTable,
  MAX_PARITY,
  MAX_VOLUMES,
  MIN_VOLUME_SIZE,
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

/** Progress is reported at most once per this many bytes (and at the end). */
const PROGRESS_STEP = 1024 * 1024;
/** Read size for blobs copied from a file-backed source. */
const COPY_CHUNK = 1024 * 1024;

/** A source that keeps every blob as a plain file (FileStore): copied directly, verified here. */
interface FileBackedSource {
  path(desc: Pick<Descriptor, 'digest'>): string;
}

function isFileBacked(source: object): source is FileBackedSource {
  return typeof (source as Partial<FileBackedSource>).path === 'function';
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
  if (split) {
    if (!Number.isSafeInteger(split.size) || split.size < MIN_VOLUME_SIZE) {
      throw new UsageError(`--split ${split.size} bytes is too small: a volume needs at least ${MIN_VOLUME_SIZE / 1024} KiB`, { code: 'SPLIT_INVALID' });
    }
    if (!Number.isInteger(parity) || parity < 0 || parity > MAX_PARITY) throw new UsageError(`--parity must be from 0 to ${MAX_PARITY}, got ${parity}`, { code: 'PARITY_INVALID' });
  } else if (parity > 0) throw new UsageError('--parity needs --split: recovery volumes rebuild lost volumes', { code: 'PARITY_INVALID' });

  const plan = await planBundle(opts.images, opts.source, { signal, base: opts.base, lock: { name: opts.name, version: opts.version, text: opts.lockText } });
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
      throw new UsageError(`--split ${formatSize(split.size)} would make ${layout.count} volumes, more than ${MAX_VOLUMES}`, { code: 'SPLIT_INVALID', hint: 'choose a larger volume size' });
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
  async function* tar(): AsyncGenerator<Buffer> {
    for (const item of items) {
      const header = encodeHeader(item.header);
      written += header.length;
      yield header;
      if (item.bytes) {
        const bytes = typeof item.bytes === 'function' ? item.bytes() : item.bytes;
        if (bytes.length !== item.header.size) throw new AirlockError('INTERNAL', 'internal', `${item.header.name}: ${bytes.length} bytes, planned ${item.header.size}`);
        written += bytes.length;
        yield bytes;
      } else if (item.blob) {
        yield* blobBytes(item.blob);
      }
      const pad = paddingFor(item.header.size);
      if (pad > 0 && item.header.type === 'file') {
        written += pad;
        yield Buffer.alloc(pad);
      }
      progress(false);
    }
    written += END_OF_ARCHIVE.length;
    yield END_OF_ARCHIVE;
    progress(true);
  }
  async function* blobBytes(d: Descriptor): AsyncGenerator<Buffer> {
    const inMemory = plan.manifests.get(d.digest);
    if (inMemory) {
      written += inMemory.length;
      yield inMemory;
      return;
    }
    if (isFileBacked(opts.source)) {
      yield* fileBytes(d, opts.source.path(d));
      return;
    }
    // The source verifies digest and size while streaming (Fetcher contract); the count here
    // guards the tar layout against a source that breaks it.
    let n = 0;
    for await (const chunk of await opts.source.fetch(d, { signal })) {
      const c = chunk as Buffer;
      n += c.length;
      if (n > d.size) break;
      written += c.length;
      yield c;
      progress(false);
    }
    if (n !== d.size) {
      throw new IntegrityError(`blob ${d.digest}: the source gave ${n > d.size ? 'more than' : 'only'} ${n > d.size ? d.size : n} of ${d.size} bytes`, { code: 'SIZE_MISMATCH' });
    }
  }
  // Positioned reads into one buffer, reused for every chunk: safe because the consumer below has
  // written a chunk before this generator resumes. A stream source allocates a fresh buffer per
  // read instead, and that churn (hundreds of MiB per bundle) made V8 run a full mark-compact
  // every ~40 MiB (measured: 9-10 per 350 MiB bundle, 1 with this path; write phase CPU -40%).
  const buffer = Buffer.allocUnsafe(COPY_CHUNK);
  async function* fileBytes(d: Descriptor, path: string): AsyncGenerator<Buffer> {
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`blob ${d.digest} is not in ${dirname(path)}`, { code: 'BLOB_UNKNOWN', cause: e });
      throw e;
    }
    try {
      const { size } = await fh.stat();
      if (size !== d.size) throw new IntegrityError(`${path}: blob ${d.digest} is ${size} bytes on disk, expected ${d.size}`, { code: 'SIZE_MISMATCH' });
      const hash = createDigester(digestAlgorithm(d.digest));
      for (let n = 0; n < d.size; ) {
        throwIfAborted(signal);
        const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.length, d.size - n), n);
        if (bytesRead === 0) throw new IntegrityError(`${path}: blob ${d.digest} ends after ${n} of ${d.size} bytes`, { code: 'SIZE_MISMATCH' });
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        n += bytesRead;
        written += bytesRead;
        yield chunk;
        progress(false);
      }
      const actual = `${digestAlgorithm(d.digest)}:${hash.digest('hex')}`;
      if (actual !== d.digest) {
        throw new IntegrityError(`${path}: blob ${d.digest} has the digest ${actual}`, {
          code: 'DIGEST_MISMATCH',
          hint: `delete ${path}; it is fetched again on the next run`,
        });
      }
    } finally {
      await fh.close();
    }
  }

  const out = resolve(opts.out);
  await mkdir(dirname(out), { recursive: true });
  const temp = (final: string): string => join(dirname(final), `.${basename(final)}.${randomBytes(6).toString('hex')}.tmp`);
  const finals = layout ? volumeRanges(layout).map((_, i) => volumeName(out, i + 1)) : [out];
  const temps = finals.map(temp);
  const parityFinals = Array.from({ length: parity }, (_, p) => parityName(out, p + 1));
  const parityTemps = parityFinals.map(temp);
  try {
    if (sink) {
      sink.open(temps);
      for await (const chunk of tar()) {
        throwIfAborted(signal);
        await sink.write(chunk);
      }
      await sink.finish();
    } else {
      const fh = await open(temps[0]!, 'wx');
      try {
        for await (const chunk of tar()) {
          throwIfAborted(signal);
          for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    if (written !== total) throw new AirlockError('INTERNAL', 'internal', `bundle writer produced ${written} bytes, planned ${total}`);
    if (layout && sink && parity > 0) {
      const table: VolumeTable = { bundle: inventoryDigest, parity, totalSize: layout.totalSize, volumeSize: layout.size, volumes: sink.expectedChecksums() };
      let done = 0;
      await writeParityFiles(
        temps,
        table,
        parityTemps.map((path, p) => ({ index: p + 1, path })),
        {
          signal,
          onBytes: (n) => {
            done += n;
            opts.onProgress?.({ written: done, total, phase: 'parity' });
          },
        },
      );
    }
    for (let i = 0; i < temps.length; i++) await rename(temps[i]!, finals[i]!);
    for (let i = 0; i < parityTemps.length; i++) await rename(parityTemps[i]!, parityFinals[i]!);
  } catch (e) {
    await sink?.abort();
    await Promise.all([...temps, ...parityTemps].map((t) => unlink(t).catch(() => {})));
    throw asAborted(e, signal);
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
  #paths: string[] = [];
  #hashes: (Hash | undefined)[] = [];
  #expected: string[] | undefined;
  #fh: FileHandle | undefined;
  #current = -1;
  #pos = 0;

  constructor(layout: VolumeLayout, place: { offset: number; length: number }) {
    this.#ranges = volumeRanges(layout);
    this.#place = place;
  }

  open(paths: string[]): void {
    this.#paths = paths;
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

  async abort(): Promise<void> {
    await this.#fh?.close().catch(() => {});
    this.#fh = undefined;
  }

  #volumeAt(pos: number): number {
    const i = Math.floor(pos / this.#ranges[0]!.size);
    return Math.min(i, this.#ranges.length - 1);
  }

  async #switchTo(i: number): Promise<void> {
    await this.#closeCurrent();
    this.#fh = await open(this.#paths[i]!, 'wx');
    this.#current = i;
    this.#hashes[i] ??= createHash('sha256');
  }

  async #closeCurrent(): Promise<void> {
    if (!this.#fh) return;
    await this.#fh.sync();
    await this.#fh.close();
    this.#fh = undefined;
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
