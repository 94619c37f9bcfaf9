// Reading a bundle in place: the tar's entry table comes from its headers alone (positioned reads,
// contents skipped), and each blob is served as a verified, positioned read of its entry. Nothing
// is extracted; a bundle of any size opens in milliseconds per thousand entries. A split bundle is
// read the same way across its volumes (source.ts): no join step, no second copy on disk.
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { IntegrityError, NotFoundError, UsageError, throwIfAborted } from '../core/errors.ts';
import { createDigester, digestAlgorithm, digestOf, isDigest, type Digest } from '../core/digest.ts';
import type { Descriptor, Index } from '../core/manifest.ts';
import type { OpOptions, ReadOnlyStorage } from '../content/types.ts';
import { destroyOnAbort, markSelfVerifying, type VerifyTarget } from '../content/verify-stream.ts';
import {
  BUNDLE_INFO_PATH,
  blobPath,
  CONTAINERD_NAME_ANNOTATION,
  INDEX_PATH,
  INVENTORY_PATH,
  LOCK_PATH,
  MAX_METADATA_BYTES,
  parseBundleInfo,
  parseInventory,
  parseJsonDocument,
  parseSignatureInfo,
  REF_NAME_ANNOTATION,
  SIGNATURE_INFO_PATH,
  SIGNATURE_PATH,
  VOLUMES_PATH,
  type BundleInfo,
  type Inventory,
  type SignatureInfo,
  type VolumeLayout,
} from './format.ts';
import { readExactly, scanTar, type TarEntry } from './tar.ts';
import { fileSource, volumeSource, type ByteSource, type PositionedReader, type VolumePart } from './source.ts';
import { locateBundle, parseVolumeTable, sameLayout, tableLayout, volumeName, volumeRanges, type BundleFiles, type VolumeTable } from './volumes.ts';

export interface BundleEntry {
  /** Offset of the content in the tar. */
  offset: number;
  size: number;
}

export interface OpenBundleOptions {
  signal?: AbortSignal | undefined;
}

export interface BundleImage {
  /** Full reference string, the image's name in index.json. */
  reference: string;
  /** The root descriptor as it was given to writeBundle (the naming annotations removed). */
  root: Descriptor;
}

export interface BundleSignature {
  /** What airlock/signature.json claims: algorithm and key (unchecked until a key given verifies the signature). */
  info: SignatureInfo;
  /** airlock/signature.json's exact bytes. */
  infoBytes: Buffer;
  /** The raw signature over inventoryBytes. */
  bytes: Buffer;
}

export class Bundle implements ReadOnlyStorage {
  /** Absolute path of the tar; for a split bundle, the name its volumes share (b.tar for b.tar.001 …). */
  readonly path: string;

  get label(): string {
    return this.path;
  }
  /** Bytes of the tar (the sum of the volumes). */
  readonly fileSize: number;
  /** Regular files of the tar by name (directories left out). */
  readonly entries: ReadonlyMap<string, BundleEntry>;
  /** Every entry as scanned, directories included, in tar order (verify checks their headers). */
  readonly tarEntries: readonly TarEntry[];
  readonly bundleInfo: BundleInfo;
  readonly inventory: Inventory;
  /** airlock/inventory.json's exact bytes: the signed payload. */
  readonly inventoryBytes: Buffer;
  /** sha256 of inventoryBytes: the bundle's identity (a delta names its base by it; history records it). */
  readonly inventoryDigest: Digest;
  /** airlock/airlock.lock's exact text; undefined when the bundle lacks it (verify reports that). */
  readonly lockText: string | undefined;
  /** index.json as parsed. */
  readonly index: Index;
  /** Present when the bundle is signed (checked only by verifySignature, with a key the user trusts). */
  readonly signature: BundleSignature | undefined;
  /** Present for a split bundle: the volume files in order. */
  readonly volumes: { layout: VolumeLayout; files: string[] } | undefined;
  readonly #src: ByteSource;
  #closed = false;

  /** Use openBundle. */
  constructor(fields: {
    path: string;
    fileSize: number;
    entries: ReadonlyMap<string, BundleEntry>;
    tarEntries?: readonly TarEntry[];
    bundleInfo: BundleInfo;
    inventory: Inventory;
    inventoryBytes: Buffer;
    lockText: string | undefined;
    index: Index;
    signature?: BundleSignature | undefined;
    volumes?: { layout: VolumeLayout; files: string[] } | undefined;
    source: ByteSource;
  }) {
    this.path = fields.path;
    this.fileSize = fields.fileSize;
    this.entries = fields.entries;
    this.tarEntries = fields.tarEntries ?? [];
    this.bundleInfo = fields.bundleInfo;
    this.inventory = fields.inventory;
    this.inventoryBytes = fields.inventoryBytes;
    this.inventoryDigest = digestOf(fields.inventoryBytes);
    this.lockText = fields.lockText;
    this.index = fields.index;
    this.signature = fields.signature;
    this.volumes = fields.volumes;
    this.#src = fields.source;
  }

  /** The images named in index.json, in its order (sorted by reference). */
  images(): BundleImage[] {
    return this.index.manifests.map((d) => ({ reference: imageName(d) ?? '', root: stripNames(d) })).filter((i) => i.reference !== '');
  }

  /** The tar entry holding a blob, if any. */
  blobEntry(digest: string): BundleEntry | undefined {
    return isDigest(digest) ? this.entries.get(blobPath(digest)) : undefined;
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    this.#checkOpen();
    return this.blobEntry(desc.digest)?.size === desc.size;
  }

  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    return this.#verified(desc, opts, false);
  }

  /**
   * fetch() for a consumer that writes each chunk out and waits for it to drain before it takes
   * the next, as an HTTP upload does: the chunks are read into a small ring of reused buffers
   * (RECYCLE_RING of them per stream) instead of a fresh one each, which saves the allocation,
   * page faults and garbage collection of every byte. A chunk's bytes therefore stay valid only
   * until a few more chunks have been read: a consumer that keeps chunks (collects them, queues
   * them without backpressure) must use fetch(). Should that ever go wrong in an upload, the
   * registry's own digest check refuses the blob: it cannot be stored corrupted.
   */
  async fetchForUpload(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    return this.#verified(desc, opts, true);
  }

  async #verified(desc: Descriptor, opts: OpOptions, recycle: boolean): Promise<Readable> {
    throwIfAborted(opts.signal);
    this.#checkOpen();
    const e = this.blobEntry(desc.digest);
    if (!e) {
      const relied = this.inventory.delta?.blobs.some((b) => b.digest === desc.digest);
      throw new NotFoundError(`blob ${desc.digest} is not in the bundle ${this.path}${relied ? ` (a delta: it is in its base ${this.inventory.delta!.base.name} ${this.inventory.delta!.base.version})` : ''}`, { code: 'BLOB_UNKNOWN' });
    }
    if (e.size !== desc.size) {
      throw new IntegrityError(`${this.path}: blob ${desc.digest} is ${e.size} bytes in the bundle, its descriptor says ${desc.size}`, { code: 'SIZE_MISMATCH' });
    }
    return verifiedRangeStream(this.#src, e.offset, desc, `blob ${desc.digest} in ${this.describe(e.offset, e.size)}`, { signal: opts.signal, recycle });
  }

  /** Raw, unverified bytes of an entry (for callers that verify themselves). */
  readRange(e: BundleEntry): Readable {
    this.#checkOpen();
    // The shared handles keep reading the files that were scanned even if the paths are replaced.
    return rangeStream(this.#src, e.offset, e.size);
  }

  /** A small entry read whole (metadata, manifests). */
  async readEntry(name: string, limit: number): Promise<Buffer> {
    this.#checkOpen();
    const e = this.entries.get(name);
    if (!e) throw new NotFoundError(`${this.path} has no entry ${name}`, { code: 'BUNDLE_ENTRY_UNKNOWN' });
    return await readSmallEntry(this.#src, e, limit, `${this.path}: ${name}`);
  }

  /** The bytes of the tar, for verify's hashers and the server's positioned reads (never close it directly). */
  fileHandle(): ByteSource {
    this.#checkOpen();
    return this.#src;
  }

  /** The file(s) holding a tar range: the bundle's path, or the volume(s) of a split bundle. */
  describe(offset: number, length = 1): string {
    return this.volumes ? this.#src.describe(offset, length) : this.path;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#src.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new UsageError(`bundle ${this.path} is closed`, { code: 'BUNDLE_CLOSED' });
  }
}

/**
 * Open a bundle: scan the tar's headers, read its metadata and index. `spec` is the bundle's file,
 * or for a split bundle its shared name, any of its volumes, or all of them (b.tar.*): volumes are
 * read in place. A damaged or unsafe tar throws IntegrityError; a missing or truncated volume too,
 * naming it; a tar that is not an airlock bundle throws UsageError naming the file.
 */
export async function openBundle(spec: string | readonly string[] | BundleFiles, opts: OpenBundleOptions = {}): Promise<Bundle> {
  throwIfAborted(opts.signal);
  const files = isBundleFiles(spec) ? spec : await locateBundle(spec);
  const opened = await openSource(files, true);
  const src = opened.source;
  const abs = opened.path;
  try {
    const { entries } = await scanTar(src, src.size, abs, opened.volumes ? { locate: (o) => src.describe(o) } : {});
    const table = entryTable(entries);
    const meta = await readMetadata(src, abs, table);
    const indexBytes = await readSmallEntry(src, table.get(INDEX_PATH)!, MAX_METADATA_BYTES, `${abs}: ${INDEX_PATH}`);
    const index = parseIndex(indexBytes, `${abs}: ${INDEX_PATH}`);
    const lock = table.get(LOCK_PATH);
    const lockText = lock ? (await readSmallEntry(src, lock, MAX_METADATA_BYTES, `${abs}: ${LOCK_PATH}`)).toString('utf8') : undefined;
    const signature = await readSignature(src, abs, table);
    if (opened.volumes) await checkVolumeTable(src, abs, table, digestOf(meta.inventoryBytes), opened.volumes.layout);
    return new Bundle({ path: abs, fileSize: src.size, entries: table, tarEntries: entries, ...meta, lockText, index, signature, volumes: opened.volumes, source: src });
  } catch (e) {
    await src.close();
    throw e;
  }
}

/**
 * The last volume's checksum table must belong to the same bundle and split as the first volume:
 * a cheap check (one small read) that catches a last volume from another bundle before a command
 * uses the set. Checking every volume's checksum is verify's work.
 */
async function checkVolumeTable(src: ByteSource, abs: string, table: ReadonlyMap<string, BundleEntry>, inventory: Digest, layout: VolumeLayout): Promise<void> {
  const e = table.get(VOLUMES_PATH);
  const where = (x: BundleEntry | undefined): string => basename(x ? src.describe(x.offset, x.size) : src.describe(src.size - 1));
  const fail = (why: string): IntegrityError =>
    new IntegrityError(`${abs}: ${why}`, { code: 'VOLUMES_MIXED', hint: `run \`airlock verify ${abs}\` to see which volumes are wrong` });
  if (!e) throw fail(`the volumes end without their checksum table (${VOLUMES_PATH}): ${where(e)} is not this bundle's last volume`);
  let t: VolumeTable;
  try {
    t = parseVolumeTable(await readSmallEntry(src, e, MAX_METADATA_BYTES, `${abs}: ${VOLUMES_PATH}`), `the volume table in ${where(e)}`);
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (t.bundle !== inventory) throw fail(`${where(e)} belongs to another bundle (inventory ${t.bundle}); ${basename(volumeName(abs, 1))} is of ${inventory}`);
  if (!sameLayout(tableLayout(t), layout)) throw fail(`${where(e)} belongs to another split of this bundle`);
}

function isBundleFiles(x: unknown): x is BundleFiles {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && 'kind' in x;
}

/** The signature entries; a bundle with one but not the other is damaged. */
export async function readSignature(src: PositionedReader, abs: string, table: ReadonlyMap<string, BundleEntry>): Promise<BundleSignature | undefined> {
  const sig = table.get(SIGNATURE_PATH);
  const info = table.get(SIGNATURE_INFO_PATH);
  if (!sig && !info) return undefined;
  if (!sig || !info) throw new IntegrityError(`${abs}: has ${sig ? SIGNATURE_PATH : SIGNATURE_INFO_PATH} but not ${sig ? SIGNATURE_INFO_PATH : SIGNATURE_PATH}`, { code: 'BUNDLE_METADATA_INVALID' });
  const what = `${abs}: ${SIGNATURE_INFO_PATH}`;
  const infoBytes = await readSmallEntry(src, info, 64 * 1024, what);
  return {
    info: parseSignatureInfo(parseJsonDocument(infoBytes, what), what),
    infoBytes,
    bytes: await readSmallEntry(src, sig, 64 * 1024, `${abs}: ${SIGNATURE_PATH}`),
  };
}

/** A volume file that is not there, or not of the size its layout gives it. */
export interface VolumeFileProblem {
  file: string;
  state: 'missing' | 'truncated' | 'oversized';
  message: string;
}

export interface OpenedSource {
  source: ByteSource;
  /** The bundle's path (the shared name for volumes). */
  path: string;
  /** A split bundle: its layout and volume files; not strict: the volumes missing or of the wrong size. */
  volumes?: { layout: VolumeLayout; files: string[]; problems?: VolumeFileProblem[] };
}

/**
 * The tar's bytes. `strict`: every volume must be there with its size (else IntegrityError
 * naming each missing or wrong one); not strict: missing volumes are holes that fail only when
 * read (enough for the metadata at the start).
 */
export async function openSource(files: BundleFiles, strict: boolean): Promise<OpenedSource> {
  if (files.kind === 'file') {
    const fh = await openFile(files.path);
    const { size } = await fh.stat();
    return { source: fileSource(fh, files.path, size), path: files.path };
  }
  const base = files.base;
  const first = files.data.get(1);
  if (!first) {
    throw new NotFoundError(`${volumeName(base, 1)} is missing: the first volume holds the bundle's metadata`, {
      code: 'FIRST_VOLUME_MISSING',
      hint: files.parity.size > 0 ? `run \`airlock verify ${base}\` to see what is lost, then \`airlock repair ${base}\`` : `copy ${basename(volumeName(base, 1))} again from the source`,
    });
  }
  const fh1 = await openFile(first);
  const handles: FileHandle[] = [fh1];
  try {
    const size1 = (await fh1.stat()).size;
    const info = await readFirstInfo(fh1, size1, first);
    if (!info.volumes) {
      // b.tar.001 alone, holding a whole bundle: read it as one.
      if (files.data.size === 1 && files.parity.size === 0) return { source: fileSource(fh1, first, size1), path: first };
      throw new IntegrityError(`${first} is a whole bundle, not the first of several volumes`, { code: 'VOLUMES_MIXED', hint: 'the volumes of one bundle are written together, by one pack' });
    }
    const layout = info.volumes;
    const ranges = volumeRanges(layout);
    const parts: VolumePart[] = [];
    const problems: VolumeFileProblem[] = [];
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i]!;
      const path = files.data.get(i + 1) ?? volumeName(base, i + 1);
      let fh: FileHandle | undefined;
      if (i === 0) fh = fh1;
      else if (files.data.has(i + 1)) {
        fh = await openFile(path);
        handles.push(fh);
      }
      const actual = fh ? (await fh.stat()).size : undefined;
      if (actual === undefined) problems.push({ file: path, state: 'missing', message: `${basename(path)} is missing` });
      else if (actual < r.size) problems.push({ file: path, state: 'truncated', message: `${basename(path)} is truncated: ${actual} of ${r.size} bytes` });
      else if (actual > r.size) problems.push({ file: path, state: 'oversized', message: `${basename(path)} is ${actual} bytes, ${r.size} expected` });
      parts.push({ path, fh: actual === undefined || (strict && actual !== r.size) ? undefined : fh, start: r.start, size: r.size });
    }
    if (strict && problems.length > 0) {
      const usable = files.parity.size;
      throw new IntegrityError(`${base}: ${problems.map((p) => p.message).join('; ')} (the bundle has ${layout.count} volumes of ${layout.size} bytes)`, {
        code: 'VOLUMES_INCOMPLETE',
        hint: layout.parity > 0 && usable > 0 ? `run \`airlock verify ${base}\` to see whether the recovery volumes suffice, then \`airlock repair ${base}\`` : `copy the volumes named again from the source`,
      });
    }
    return { source: volumeSource(parts), path: base, volumes: { layout, files: parts.map((p) => p.path), ...(strict ? {} : { problems }) } };
  } catch (e) {
    await Promise.allSettled(handles.map((h) => h.close()));
    throw e;
  }
}

/** airlock/bundle.json from the start of a (first) volume: it is the archive's second entry. */
export async function readFirstInfo(fh: PositionedReader, size: number, path: string): Promise<BundleInfo> {
  let found: TarEntry | undefined;
  const { entries } = await scanTar(fh, size, path, { until: (e) => (e.name === BUNDLE_INFO_PATH ? ((found = e), true) : e.name !== 'airlock') });
  if (!found) {
    throw new UsageError(`${path} is not the first volume of an airlock bundle: it does not start with ${BUNDLE_INFO_PATH}${entries.length ? ` (it starts with ${entries[0]!.name})` : ''}`, { code: 'NOT_A_BUNDLE' });
  }
  const what = `${path}: ${BUNDLE_INFO_PATH}`;
  return parseBundleInfo(parseJsonDocument(await readSmallEntry(fh, found, MAX_METADATA_BYTES, what), what), what);
}

export async function openFile(abs: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(abs, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`bundle ${abs} does not exist`, { code: 'BUNDLE_NOT_FOUND', cause: e });
    if (code === 'EISDIR') throw notAFile(abs);
    throw e;
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw notAFile(abs);
  }
  return fh;
}

function notAFile(abs: string): UsageError {
  return new UsageError(`${abs} is not a file: a bundle is the .tar file written by \`airlock pack\` (or its volumes)`, { code: 'NOT_A_BUNDLE' });
}

export function entryTable(entries: TarEntry[]): Map<string, BundleEntry> {
  const table = new Map<string, BundleEntry>();
  for (const e of entries) if (e.type === 'file') table.set(e.name, { offset: e.offset, size: e.size });
  return table;
}

/** bundle.json and inventory.json; a tar without them (or index.json) is not a bundle. */
export async function readMetadata(
  fh: PositionedReader,
  abs: string,
  table: ReadonlyMap<string, BundleEntry>,
  needIndex = true,
): Promise<{ bundleInfo: BundleInfo; inventory: Inventory; inventoryBytes: Buffer }> {
  for (const name of needIndex ? [BUNDLE_INFO_PATH, INVENTORY_PATH, INDEX_PATH] : [BUNDLE_INFO_PATH, INVENTORY_PATH]) {
    if (!table.has(name)) {
      // A tar, but not one airlock wrote (or one cut short before its metadata): the file's
      // content is wrong, as with any other malformed bundle.
      throw new IntegrityError(`${abs} is not an airlock bundle: it has no ${name}`, {
        code: 'TAR_NOT_A_BUNDLE',
        hint: 'pass a bundle written by `airlock pack`',
      });
    }
  }
  const infoWhat = `${abs}: ${BUNDLE_INFO_PATH}`;
  const invWhat = `${abs}: ${INVENTORY_PATH}`;
  const bundleInfo = parseBundleInfo(parseJsonDocument(await readSmallEntry(fh, table.get(BUNDLE_INFO_PATH)!, MAX_METADATA_BYTES, infoWhat), infoWhat), infoWhat);
  const inventoryBytes = await readSmallEntry(fh, table.get(INVENTORY_PATH)!, MAX_METADATA_BYTES, invWhat);
  const inventory = parseInventory(parseJsonDocument(inventoryBytes, invWhat), invWhat);
  return { bundleInfo, inventory, inventoryBytes };
}

export async function readSmallEntry(fh: PositionedReader, e: BundleEntry, limit: number, what: string): Promise<Buffer> {
  if (e.size > limit) throw new IntegrityError(`${what} is ${e.size} bytes, more than the ${limit}-byte limit`, { code: 'BUNDLE_METADATA_INVALID' });
  const buf = Buffer.alloc(e.size);
  await readExactly(fh, buf, e.offset);
  return buf;
}

function parseIndex(bytes: Buffer, what: string): Index {
  const doc = parseJsonDocument(bytes, what) as Partial<Index> | null;
  if (typeof doc !== 'object' || doc === null || doc.schemaVersion !== 2 || !Array.isArray(doc.manifests)) {
    throw new IntegrityError(`${what}: not an OCI image index (schemaVersion 2 with a manifests list)`, { code: 'BUNDLE_METADATA_INVALID' });
  }
  doc.manifests.forEach((d, i) => {
    if (typeof d !== 'object' || d === null || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || !isDigest(d.digest) || !Number.isSafeInteger(d.size) || d.size < 0) {
      throw new IntegrityError(`${what}: manifests[${i}] is not a valid descriptor`, { code: 'BUNDLE_METADATA_INVALID' });
    }
  });
  return doc as Index;
}

const READ_CHUNK = 1024 * 1024;
/**
 * Buffers per recycling stream. Between a read and the socket a chunk can sit in this stream's
 * buffer, the one being filled, a pass-through's two sides and the socket's write queue: five at
 * most while every stage honours backpressure; eight leave a margin (8 MiB per upload).
 */
const RECYCLE_RING = 8;

interface RangeStreamOptions {
  /** Names the bytes in a truncation error. */
  what?: string | undefined;
  /** The buffer a read of `len` bytes goes into (default: a fresh one per read). */
  bufferFor?: ((len: number) => Buffer) | undefined;
  /** Sees every chunk, in order, as it is read (before it is pushed). */
  onChunk?: ((chunk: Buffer) => void) | undefined;
  /**
   * Asked once every byte was read: an error destroys the stream instead of ending it. The last
   * chunk is held back until then, so bytes that fail the check never end cleanly.
   */
  verdict?: (() => Error | undefined) | undefined;
}

/**
 * Positioned reads of `size` bytes from `offset` on a handle the stream does not own: destroying
 * the stream stops reading but leaves the handle open (fs streams would close it).
 */
function rangeStream(fh: PositionedReader, offset: number, size: number, opts: RangeStreamOptions = {}): Readable {
  const { what, onChunk, verdict } = opts;
  const bufferFor = opts.bufferFor ?? ((len: number): Buffer => Buffer.allocUnsafe(len));
  let pos = offset;
  const end = offset + size;
  const stream = new Readable({
    highWaterMark: READ_CHUNK,
    read() {
      if (pos >= end) {
        // Nothing to read (an empty range): the verdict still decides how it ends.
        finish(undefined);
        return;
      }
      const len = Math.min(READ_CHUNK, end - pos);
      const buffer = bufferFor(len);
      fh.read(buffer, 0, len, pos).then(
        ({ bytesRead }) => {
          if (stream.destroyed) return;
          if (bytesRead === 0) {
            stream.destroy(new IntegrityError(`${what !== undefined ? `${what}: ` : ''}unexpected end of file at offset ${pos}, ${end - pos} bytes short`, { code: 'TAR_TRUNCATED' }));
            return;
          }
          pos += bytesRead;
          const chunk = buffer.subarray(0, bytesRead);
          onChunk?.(chunk);
          if (pos >= end) finish(chunk);
          else stream.push(chunk);
        },
        (err: unknown) => stream.destroy(err as Error),
      );
    },
  });
  const finish = (last: Buffer | undefined): void => {
    const err = verdict?.();
    if (err) {
      stream.destroy(err);
      return;
    }
    if (last) stream.push(last);
    stream.push(null);
  };
  return stream;
}

/**
 * A blob's bytes read from `offset`, hashed as they are read: one stream, one pass over the bytes.
 * It ends only when all `target.size` bytes matched `target.digest`; otherwise it fails with an
 * IntegrityError naming `what`. Marked self-verifying, so an upload does not hash them again.
 * `recycle`: read into a ring of RECYCLE_RING reused buffers (see Bundle.fetchForUpload).
 */
function verifiedRangeStream(
  fh: PositionedReader,
  offset: number,
  target: VerifyTarget,
  what: string,
  opts: { signal?: AbortSignal | undefined; recycle?: boolean } = {},
): Readable {
  const algorithm = digestAlgorithm(target.digest);
  const hash = createDigester(algorithm);
  // A blob of one chunk has nothing to recycle into.
  const ring: Buffer[] | undefined = opts.recycle && target.size > READ_CHUNK ? [] : undefined;
  let reads = 0;
  const stream = rangeStream(fh, offset, target.size, {
    what,
    bufferFor: ring ? (len) => (ring[reads++ % RECYCLE_RING] ??= Buffer.allocUnsafe(READ_CHUNK)).subarray(0, len) : undefined,
    onChunk: (chunk) => hash.update(chunk),
    verdict: () => {
      const actual = `${algorithm}:${hash.digest('hex')}`;
      return actual === target.digest ? undefined : new IntegrityError(`${what}: digest mismatch, expected ${target.digest}, got ${actual}`, { code: 'DIGEST_MISMATCH' });
    },
  });
  destroyOnAbort(stream, opts.signal);
  return markSelfVerifying(stream, target);
}

/** The image's name: containerd's annotation, else the OCI ref name. */
export function imageName(d: Descriptor): string | undefined {
  return d.annotations?.[CONTAINERD_NAME_ANNOTATION] ?? d.annotations?.[REF_NAME_ANNOTATION];
}

function stripNames(d: Descriptor): Descriptor {
  const { annotations, ...rest } = d;
  if (!annotations) return { ...rest };
  const { [CONTAINERD_NAME_ANNOTATION]: _c, [REF_NAME_ANNOTATION]: _r, ...others } = annotations;
  return Object.keys(others).length > 0 ? { ...rest, annotations: others } : { ...rest };
}
