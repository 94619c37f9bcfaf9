// What a bundle's tar holds, entry by entry, once it is planned: the metadata documents (bundle.json,
// the inventory and its signature, the lock), the tools it carries, oci-layout and index.json, every
// directory, every blob by digest, and for a split bundle the volume table last. The one
// description of the format's layout: both writers (in place, write-in-place.ts; in order into
// volumes, volume-sink.ts) write these entries, and where the tar is cut into volumes follows from them.
import { AirlockError, UsageError } from '../core/errors.ts';
import { digestAlgorithm, digestOf, type Digest } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import type { ChunkSink } from '../content/types.ts';
import { signPayload, type SigningKey } from '../sign/keys.ts';
import { formatBytes } from '../core/bytes.ts';
import { TOOL_NAME } from '../version.ts';
import { MAX_SHARDS } from '../parity/reed-solomon.ts';
import {
  BUNDLE_INFO_PATH,
  blobPath,
  canonicalJson,
  FILES_FORMAT_VERSION,
  INDEX_PATH,
  INVENTORY_PATH,
  LOCK_PATH,
  OCI_LAYOUT_PATH,
  OCI_LAYOUT_VERSION,
  PLAIN_FORMAT_VERSION,
  SIGNATURE_INFO_PATH,
  SIGNATURE_PATH,
  toolDir,
  TOOLS_DIR,
  TOOLS_FORMAT_VERSION,
  VOLUMES_PATH,
  type BundleInfo,
  type InventoryTool,
  type SignatureInfo,
  type VolumeLayout,
} from './format.ts';
import type { BundleImageInput, BundlePlan } from './plan.ts';
import { encodedEntrySize, END_OF_ARCHIVE, type TarHeaderInput } from './tar.ts';
import { countVolumes, encodeVolumeTable, MAX_VOLUMES, placeholderTable } from './volumes.ts';

/** One tar entry: its header, and its bytes when they are in memory (a blob is filled later). */
export interface Entry {
  header: TarHeaderInput;
  /** Small documents; the volume table is produced last (it needs the volumes' checksums). */
  bytes?: Buffer | (() => Buffer);
  blob?: Descriptor;
  /** A carried executable, copied from its file (tools.ts). */
  tool?: InventoryTool;
}

/** The inventory as written, its digest (the bundle's identity), and its signature when signed. */
export interface SignedInventory {
  bytes: Buffer;
  digest: Digest;
  signature?: { info: SignatureInfo; bytes: Buffer };
}

/** The inventory's exact bytes, signed before the first byte of the tar is written. */
export function signInventory(plan: BundlePlan, key: SigningKey | undefined): SignedInventory {
  const bytes = Buffer.from(canonicalJson(plan.inventory, true));
  const digest = digestOf(bytes);
  if (!key) return { bytes, digest };
  return { bytes, digest, signature: { info: signatureInfoFor(key), bytes: signPayload(key, bytes) } };
}

/** airlock/signature.json for a signature made with `key` (verify derives it from the key that verifies one). */
export function signatureInfoFor(key: { algorithm: string; fingerprint: string }): SignatureInfo {
  return { algorithm: key.algorithm, key: key.fingerprint, payload: INVENTORY_PATH, signature: SIGNATURE_PATH };
}

/** What bundle.json says, before a split bundle adds its volume layout. A bundle with tools (or files) is of the format that has them. */
export function bundleInfo(opts: { name: string; version: string; toolVersion: string; tools?: boolean | undefined; files?: boolean | undefined }): BundleInfo {
  return { formatVersion: opts.files === true ? FILES_FORMAT_VERSION : opts.tools === true ? TOOLS_FORMAT_VERSION : PLAIN_FORMAT_VERSION, tool: { name: TOOL_NAME, version: opts.toolVersion }, name: opts.name, version: opts.version };
}

/**
 * Every entry of the tar in order; `trailer` is the volume table of a split bundle. Verify and
 * inspect call it too, with what a bundle holds, to say what its tar must be.
 */
export function bundleEntries(
  plan: Pick<BundlePlan, 'indexBytes' | 'blobs'> & { tools?: readonly InventoryTool[] | undefined },
  inventory: Pick<SignedInventory, 'bytes' | 'signature'>,
  info: BundleInfo,
  lockText: string,
  trailer?: { bytes: () => Buffer; length: number },
): Entry[] {
  const file = (name: string, bytes: Buffer): Entry => ({ header: { name, type: 'file', size: bytes.length }, bytes });
  const entries: Entry[] = [
    // Every parent directory is an explicit entry: skopeo (containers/storage) chowns implicitly
    // created parents to 0:0, which fails for non-root users and in user namespaces.
    { header: { name: 'airlock/', type: 'dir', size: 0 } },
    file(BUNDLE_INFO_PATH, Buffer.from(canonicalJson(info, true))),
    file(INVENTORY_PATH, inventory.bytes),
  ];
  if (inventory.signature) entries.push(file(SIGNATURE_PATH, inventory.signature.bytes), file(SIGNATURE_INFO_PATH, Buffer.from(canonicalJson(inventory.signature.info, true))));
  entries.push(file(LOCK_PATH, Buffer.from(lockText, 'utf8')));
  // With the metadata, before the layout: `tar -xf b.tar airlock/tools/linux-amd64/airlock` finds
  // it at once, and the first volume of a split bundle carries it.
  const tools = plan.tools ?? [];
  if (tools.length > 0) entries.push({ header: { name: `${TOOLS_DIR}/`, type: 'dir', size: 0 } });
  let dir = '';
  for (const t of tools) {
    if (toolDir(t.platform) !== dir) {
      dir = toolDir(t.platform);
      entries.push({ header: { name: `${dir}/`, type: 'dir', size: 0 } });
    }
    entries.push({ header: { name: t.path, type: 'file', size: t.size, executable: true }, tool: t });
  }
  entries.push(
    file(OCI_LAYOUT_PATH, Buffer.from(canonicalJson({ imageLayoutVersion: OCI_LAYOUT_VERSION }, false))),
    file(INDEX_PATH, plan.indexBytes),
    { header: { name: 'blobs/', type: 'dir', size: 0 } },
  );
  let algorithm = '';
  for (const b of plan.blobs) {
    const alg = digestAlgorithm(b.digest);
    if (alg !== algorithm) {
      entries.push({ header: { name: `blobs/${alg}/`, type: 'dir', size: 0 } });
      algorithm = alg;
    }
    entries.push({ header: { name: blobPath(b.digest), type: 'file', size: b.size }, blob: b });
  }
  if (trailer) entries.push({ header: { name: VOLUMES_PATH, type: 'file', size: trailer.length }, bytes: trailer.bytes });
  return entries;
}

/** The tar's size: every entry (header, content, padding) and the end-of-archive blocks. */
export function tarSize(entries: readonly Entry[]): number {
  return entries.reduce((a, e) => a + encodedEntrySize(e.header), 0) + END_OF_ARCHIVE.length;
}

/**
 * How a split bundle is cut: bundle.json records the total size and the volume count, and the
 * table's length depends on them, so the layout is iterated to its fixed point (a digit more in a
 * size moves it; two rounds in practice). Refused when it needs more volumes than can be coded.
 */
export function volumeLayout(plan: BundlePlan, inventory: SignedInventory, info: BundleInfo, lockText: string, split: { size: number; parity: number }): VolumeLayout {
  let layout: VolumeLayout = { size: split.size, count: 1, totalSize: 0, parity: split.parity };
  for (let round = 0; ; round++) {
    const length = encodeVolumeTable(placeholderTable(inventory.digest, layout)).length;
    const total = tarSize(bundleEntries(plan, inventory, { ...info, volumes: layout }, lockText, { bytes: () => Buffer.alloc(0), length }));
    const next: VolumeLayout = { ...layout, totalSize: total, count: countVolumes(total, split.size) };
    if (next.totalSize === layout.totalSize && next.count === layout.count) break;
    if (round > 50) throw new AirlockError('INTERNAL', 'internal', 'volume layout does not settle');
    layout = next;
  }
  if (layout.count > MAX_VOLUMES) {
    throw new UsageError(`volume size ${formatBytes(split.size)} would make ${layout.count} volumes, more than ${MAX_VOLUMES}`, { code: 'SPLIT_INVALID', hint: 'choose a larger volume size' });
  }
  if (layout.count + split.parity > MAX_SHARDS) {
    throw new UsageError(`${layout.count} volumes + ${split.parity} recovery volumes is more than the ${MAX_SHARDS} Reed–Solomon over GF(256) can code`, {
      code: 'SPLIT_INVALID',
      hint: 'choose a larger volume size or fewer recovery volumes',
    });
  }
  return layout;
}

/** An entry's bytes when they are in memory (documents, manifests); undefined for a blob to fill. */
export function entryBytes(entry: Entry, plan: BundlePlan): Buffer | undefined {
  if (entry.blob) return plan.manifests.get(entry.blob.digest);
  if (!entry.bytes) return undefined;
  const bytes = typeof entry.bytes === 'function' ? entry.bytes() : entry.bytes;
  if (bytes.length !== entry.header.size) throw new AirlockError('INTERNAL', 'internal', `${entry.header.name}: ${bytes.length} bytes, planned ${entry.header.size}`);
  return bytes;
}

/**
 * Puts one blob's bytes into the bundle through `sink`, in order (a fill that starts over repeats
 * positions), and resolves only once they were checked against `desc`'s size and digest. `signal`
 * fires when the bundle is abandoned (the caller's abort, or another blob's failure): a filler
 * waiting on the network stops then, not at its next chunk.
 */
export type BlobFiller = (desc: Descriptor, sink: ChunkSink, signal: AbortSignal | undefined, image: BundleImageInput) => Promise<void>;

/** Progress is reported at most once per this many bytes (and at the end). */
const PROGRESS_STEP = 1024 * 1024;

/** Bytes of the tar written so far, reported to `onProgress` now and then. */
export class WriteProgress {
  readonly total: number;
  written = 0;
  #reported = -1;
  readonly #onProgress: ((e: { written: number; total: number; phase?: 'write' | 'parity' }) => void) | undefined;

  constructor(total: number, onProgress: ((e: { written: number; total: number; phase?: 'write' | 'parity' }) => void) | undefined) {
    this.total = total;
    this.#onProgress = onProgress;
  }

  add(n: number): void {
    this.written += n;
    this.report(false);
  }

  report(force: boolean): void {
    if (this.#onProgress && (force || this.written - this.#reported >= PROGRESS_STEP)) {
      this.#reported = this.written;
      this.#onProgress({ written: this.written, total: this.total, phase: 'write' });
    }
  }
}
