// Reading a bundle in place: the tar's entry table comes from its headers alone (positioned reads,
// contents skipped), and each blob is served as a verified, positioned read of its entry. Nothing
// is extracted; a bundle of any size opens in milliseconds per thousand entries.
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { IntegrityError, NotFoundError, UsageError, throwIfAborted } from '../core/errors.ts';
import { isDigest } from '../core/digest.ts';
import type { Descriptor, Index } from '../core/manifest.ts';
import type { OpOptions, ReadOnlyStorage } from '../content/types.ts';
import { verifiedStream } from '../content/file-store.ts';
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
  REF_NAME_ANNOTATION,
  type BundleInfo,
  type Inventory,
} from './format.ts';
import { readExactly, scanTar, type TarEntry } from './tar.ts';

export interface BundleEntry {
  /** Offset of the content in the file. */
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

export class Bundle implements ReadOnlyStorage {
  /** Absolute path of the tar. */
  readonly path: string;
  readonly fileSize: number;
  /** Regular files of the tar by name (directories left out). */
  readonly entries: ReadonlyMap<string, BundleEntry>;
  readonly bundleInfo: BundleInfo;
  readonly inventory: Inventory;
  /** airlock/airlock.lock's exact text; undefined when the bundle lacks it (verify reports that). */
  readonly lockText: string | undefined;
  /** index.json as parsed. */
  readonly index: Index;
  readonly #fh: FileHandle;
  #closed = false;

  /** Use openBundle. */
  constructor(fields: {
    path: string;
    fileSize: number;
    entries: ReadonlyMap<string, BundleEntry>;
    bundleInfo: BundleInfo;
    inventory: Inventory;
    lockText: string | undefined;
    index: Index;
    fh: FileHandle;
  }) {
    this.path = fields.path;
    this.fileSize = fields.fileSize;
    this.entries = fields.entries;
    this.bundleInfo = fields.bundleInfo;
    this.inventory = fields.inventory;
    this.lockText = fields.lockText;
    this.index = fields.index;
    this.#fh = fields.fh;
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
    throwIfAborted(opts.signal);
    this.#checkOpen();
    const e = this.blobEntry(desc.digest);
    if (!e) throw new NotFoundError(`blob ${desc.digest} is not in the bundle ${this.path}`, { code: 'BLOB_UNKNOWN' });
    if (e.size !== desc.size) {
      throw new IntegrityError(`${this.path}: blob ${desc.digest} is ${e.size} bytes in the bundle, its descriptor says ${desc.size}`, { code: 'SIZE_MISMATCH' });
    }
    return verifiedStream(this.readRange(e), desc, `blob ${desc.digest} in ${this.path}`, opts.signal);
  }

  /** Raw, unverified bytes of an entry (for callers that verify themselves). */
  readRange(e: BundleEntry): Readable {
    this.#checkOpen();
    // The shared handle keeps reading the file that was scanned even if the path is replaced.
    return rangeStream(this.#fh, e.offset, e.size);
  }

  /** A small entry read whole (metadata, manifests). */
  async readEntry(name: string, limit: number): Promise<Buffer> {
    this.#checkOpen();
    const e = this.entries.get(name);
    if (!e) throw new NotFoundError(`${this.path} has no entry ${name}`, { code: 'BUNDLE_ENTRY_UNKNOWN' });
    return await readSmallEntry(this.#fh, e, limit, `${this.path}: ${name}`);
  }

  /** The open file, for verify's hashers (positioned reads only; never close it directly). */
  fileHandle(): FileHandle {
    this.#checkOpen();
    return this.#fh;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new UsageError(`bundle ${this.path} is closed`, { code: 'BUNDLE_CLOSED' });
  }
}

/**
 * Open a bundle: scan the tar's headers, read its metadata and index. A damaged or unsafe tar
 * throws IntegrityError; a tar that is not an airlock bundle throws UsageError naming the file.
 */
export async function openBundle(path: string, opts: OpenBundleOptions = {}): Promise<Bundle> {
  throwIfAborted(opts.signal);
  const abs = resolve(path);
  const fh = await openFile(abs);
  try {
    const { size } = await fh.stat();
    const { entries } = await scanTar(fh, size, abs);
    const table = entryTable(entries);
    const meta = await readMetadata(fh, abs, table);
    const indexBytes = await readSmallEntry(fh, table.get(INDEX_PATH)!, MAX_METADATA_BYTES, `${abs}: ${INDEX_PATH}`);
    const index = parseIndex(indexBytes, `${abs}: ${INDEX_PATH}`);
    const lock = table.get(LOCK_PATH);
    const lockText = lock ? (await readSmallEntry(fh, lock, MAX_METADATA_BYTES, `${abs}: ${LOCK_PATH}`)).toString('utf8') : undefined;
    return new Bundle({ path: abs, fileSize: size, entries: table, ...meta, lockText, index, fh });
  } catch (e) {
    await fh.close();
    throw e;
  }
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
  return new UsageError(`${abs} is not a file: a bundle is the single .tar file written by \`airlock pack\``, { code: 'NOT_A_BUNDLE' });
}

export function entryTable(entries: TarEntry[]): Map<string, BundleEntry> {
  const table = new Map<string, BundleEntry>();
  for (const e of entries) if (e.type === 'file') table.set(e.name, { offset: e.offset, size: e.size });
  return table;
}

/** bundle.json and inventory.json; a tar without them (or index.json) is not a bundle. */
export async function readMetadata(fh: FileHandle, abs: string, table: ReadonlyMap<string, BundleEntry>, needIndex = true): Promise<{ bundleInfo: BundleInfo; inventory: Inventory }> {
  for (const name of needIndex ? [BUNDLE_INFO_PATH, INVENTORY_PATH, INDEX_PATH] : [BUNDLE_INFO_PATH, INVENTORY_PATH]) {
    if (!table.has(name)) {
      throw new UsageError(`${abs} is not an airlock bundle: it has no ${name}`, {
        code: 'NOT_A_BUNDLE',
        hint: 'pass a bundle written by `airlock pack`',
      });
    }
  }
  const infoWhat = `${abs}: ${BUNDLE_INFO_PATH}`;
  const invWhat = `${abs}: ${INVENTORY_PATH}`;
  const bundleInfo = parseBundleInfo(parseJsonDocument(await readSmallEntry(fh, table.get(BUNDLE_INFO_PATH)!, MAX_METADATA_BYTES, infoWhat), infoWhat), infoWhat);
  const inventory = parseInventory(parseJsonDocument(await readSmallEntry(fh, table.get(INVENTORY_PATH)!, MAX_METADATA_BYTES, invWhat), invWhat), invWhat);
  return { bundleInfo, inventory };
}

export async function readSmallEntry(fh: FileHandle, e: BundleEntry, limit: number, what: string): Promise<Buffer> {
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
 * Positioned reads of `size` bytes from `offset` on a handle the stream does not own: destroying
 * the stream stops reading but leaves the handle open (fs streams would close it).
 */
export function rangeStream(fh: FileHandle, offset: number, size: number): Readable {
  let pos = offset;
  const end = offset + size;
  return new Readable({
    highWaterMark: READ_CHUNK,
    read() {
      if (pos >= end) {
        this.push(null);
        return;
      }
      const len = Math.min(READ_CHUNK, end - pos);
      fh.read(Buffer.allocUnsafe(len), 0, len, pos).then(
        ({ bytesRead, buffer }) => {
          if (this.destroyed) return;
          if (bytesRead === 0) {
            this.destroy(new IntegrityError(`unexpected end of file at offset ${pos}, ${end - pos} bytes short`, { code: 'TAR_TRUNCATED' }));
            return;
          }
          pos += bytesRead;
          this.push(buffer.subarray(0, bytesRead));
          if (pos >= end) this.push(null);
        },
        (err: unknown) => this.destroy(err as Error),
      );
    },
  });
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
