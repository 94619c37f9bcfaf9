// A split bundle, written in one sequential pass cut into volumes: each volume hashed as it is
// written, every byte but those of airlock/volumes.json, the last entry, whose content is produced
// from these very hashes (see volumes.ts).
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { AirlockError, IntegrityError, throwIfAborted } from '../core/errors.ts';
import type { Descriptor } from '../core/manifest.ts';
import { writeAll, type AtomicFile } from '../util/atomic-file.ts';
import type { VolumeLayout } from './format.ts';
import { entryBytes, type BlobFiller, type Entry, type WriteProgress } from './entries.ts';
import type { BundleImageInput, BundlePlan } from './plan.ts';
import { encodeHeader, END_OF_ARCHIVE, paddingFor } from './tar.ts';
import { volumeRanges } from './volumes.ts';
import { feedTool, toolFile } from './tools.ts';

/** Write every entry, in order, through `sink`; each blob is filled from the first image that uses it. */
export async function writeInOrder(
  sink: VolumeSink,
  opts: { plan: BundlePlan; entries: readonly Entry[]; progress: WriteProgress; fill: BlobFiller; toolFiles: ReadonlyMap<string, string>; signal: AbortSignal | undefined },
): Promise<void> {
  const { plan, progress, signal } = opts;
  const put = async (b: Buffer): Promise<void> => {
    throwIfAborted(signal);
    await sink.write(b);
    progress.add(b.length);
  };
  const firstUser = firstUsers(plan);
  for (const entry of opts.entries) {
    await put(encodeHeader(entry.header));
    const inline = entryBytes(entry, plan);
    if (inline) await put(inline);
    else if (entry.blob) await fillInOrder(entry.blob, put, opts.fill, signal, firstUser.get(entry.blob.digest)!);
    else if (entry.tool) await feedTool(entry.tool, toolFile(opts.toolFiles, entry.tool.path), put, signal);
    const pad = paddingFor(entry.header.size);
    if (pad > 0 && entry.header.type === 'file') await put(Buffer.alloc(pad));
  }
  await put(END_OF_ARCHIVE);
}

/** One blob's bytes, which must arrive in order: a split bundle is written in one pass. */
async function fillInOrder(desc: Descriptor, put: (b: Buffer) => Promise<void>, fill: BlobFiller, signal: AbortSignal | undefined, image: BundleImageInput): Promise<void> {
  let next = 0;
  await fill(desc, async (chunks, position) => {
    if (position !== next) throw new IntegrityError(`blob ${desc.digest}: bytes from ${position} arrived where ${next} was expected; a split bundle is written in one pass`, { code: 'SIZE_MISMATCH' });
    for (const c of chunks) {
      if (next + c.length > desc.size) throw new IntegrityError(`blob ${desc.digest}: more than the expected ${desc.size} bytes`, { code: 'SIZE_MISMATCH' });
      next += c.length;
      await put(c);
    }
  }, signal, image);
  if (next !== desc.size) throw new IntegrityError(`blob ${desc.digest}: the source gave only ${next} of ${desc.size} bytes`, { code: 'SIZE_MISMATCH' });
}

/** For each carried blob, the first image (by reference) that uses it: where it is taken from. */
function firstUsers(plan: BundlePlan): Map<string, BundleImageInput> {
  const byReference = new Map(plan.images.map((i) => [i.reference, i]));
  return new Map(plan.inventory.blobs.map((b) => [b.digest, byReference.get(b.images[0]!)!]));
}

/**
 * Writes the tar stream into volume files (temp paths), hashing each volume as it goes — every
 * byte but those of airlock/volumes.json, whose content is produced last from these very hashes.
 */
export class VolumeSink {
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
