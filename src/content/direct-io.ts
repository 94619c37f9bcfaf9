// Writing the blob cache around the page cache (O_DIRECT). A pack writes every byte twice, into
// the bundle and into the cache; the bundle is read again soon (verify, push, serve), the cache
// copy only by a later pack. Buffered, the cache copy doubles the page cache a pack fills, which
// evicts what the machine was using, and on VMs that hand free memory back to their host it costs
// real CPU: here, filling page cache with fresh pages ran at ~350 MB/s against 1.2 GB/s for direct
// writes, and a cold pack spent ~1 s more in the kernel. Node offers no fadvise, so O_DIRECT it is,
// on local disk filesystems only, with its rules: buffers, file offsets and lengths aligned to the
// device's block (4096 covers 512- and 4096-byte devices). A filesystem that still refuses it
// (EINVAL, at open or at the first write) gets buffered writes, as before.
import { constants } from 'node:fs';
import { open, statfs, type FileHandle } from 'node:fs/promises';

export const DIRECT_ALIGNMENT = 4096;
/** Size of every pooled buffer: one write batch. */
export const SLOT_BYTES = 1024 * 1024;
const SLOTS_PER_REGION = 16;

/**
 * WebAssembly.Memory is not in this project's TypeScript lib; only its page-aligned buffer is used.
 * Without WebAssembly (node --jitless) the pool hands out ordinary buffers: a direct write from one
 * is refused with EINVAL and that file is written buffered.
 */
const WasmMemory = (globalThis as { WebAssembly?: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } }).WebAssembly?.Memory;
const WASM_PAGE = 64 * 1024;

const free: Buffer[] = [];

/**
 * A SLOT_BYTES buffer whose memory starts on a page boundary (a WebAssembly memory's backing store
 * is mapped pages; JS has no other way to ask for alignment), from a pool shared by every download.
 */
export function takeSlot(): Buffer {
  let b = free.pop();
  if (b === undefined) {
    const pages = (SLOT_BYTES * SLOTS_PER_REGION) / WASM_PAGE;
    const region = WasmMemory ? Buffer.from(new WasmMemory({ initial: pages, maximum: pages }).buffer) : Buffer.allocUnsafeSlow(SLOT_BYTES * SLOTS_PER_REGION);
    for (let i = SLOTS_PER_REGION - 1; i > 0; i--) free.push(region.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES));
    b = region.subarray(0, SLOT_BYTES);
  }
  return b;
}

/** Back to the pool (the caller keeps no view of it). */
export function giveSlot(b: Buffer): void {
  free.push(b);
}

/**
 * Filesystems on local block devices, where O_DIRECT means "DMA from the buffer to the disk"
 * (statfs magic numbers): ext2/3/4, xfs, btrfs. Elsewhere it means nothing useful (tmpfs: the page
 * cache is the storage) or something slower (NFS: a synchronous RPC per write), so those stay
 * buffered.
 */
const LOCAL_DISK_FILESYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e]);

/** Whether files in `dir` (which exists) are worth writing around the page cache. */
export async function directWorthwhile(dir: string): Promise<boolean> {
  if ((constants as { O_DIRECT?: number }).O_DIRECT === undefined) return false;
  try {
    return LOCAL_DISK_FILESYSTEMS.has((await statfs(dir)).type);
  } catch {
    return false;
  }
}

/** Open `path` for positioned writes around the page cache; undefined where the filesystem refuses. */
export async function openDirect(path: string, truncate: boolean): Promise<FileHandle | undefined> {
  const direct = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (direct === undefined) return undefined;
  try {
    return await open(path, constants.O_WRONLY | constants.O_CREAT | (truncate ? constants.O_TRUNC : 0) | direct, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw e;
  }
}

export function roundUp(n: number): number {
  return Math.ceil(n / DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT;
}

/** Whether a failed write is the filesystem (or the buffer) refusing direct I/O. */
export function isDirectRefusal(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'EINVAL';
}
