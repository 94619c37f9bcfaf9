// The bytes of a bundle tar, wherever they sit: one file, or volumes (b.tar.001, b.tar.002, …)
// whose concatenation is the tar. Readers do positioned reads on tar offsets; a multi-volume
// source maps each onto the volume holding it. Nothing is joined or copied: a read that crosses a
// volume boundary returns short (every caller loops), and worker threads get the file descriptors
// and offsets to read themselves (locate).
import type { FileHandle } from 'node:fs/promises';
import { IntegrityError } from '../core/errors.ts';

/** What scanTar, readExactly and range streams need: FileHandle has it, so has every ByteSource. */
export interface PositionedReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** A run of bytes in one file, by descriptor (for readSync on worker threads). */
export interface FilePart {
  fd: number;
  path: string;
  /** Offset in that file. */
  position: number;
  length: number;
}

export interface ByteSource extends PositionedReader {
  /** Bytes of the tar (the sum of the volumes). */
  readonly size: number;
  /** The files of `length` bytes from tar offset `position`, in order. */
  locate(position: number, length: number): FilePart[];
  /** The file(s) holding a tar offset range, for messages (e.g. `b.tar.003`). */
  describe(position: number, length?: number): string;
  close(): Promise<void>;
}

/** One file: the ordinary bundle. */
export function fileSource(fh: FileHandle, path: string, size: number): ByteSource {
  return {
    size,
    read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
    locate: (position, length) => [{ fd: fh.fd, path, position, length }],
    describe: () => path,
    close: () => fh.close(),
  };
}

export interface VolumePart {
  path: string;
  /** Open handle, or undefined when the volume is missing: reading it then fails naming it. */
  fh: FileHandle | undefined;
  /** Tar offset of the volume's first byte. */
  start: number;
  /** Bytes the volume holds in the tar. */
  size: number;
  /** Where those bytes start in the file (default 0; other values map a part of a file). */
  fileOffset?: number;
}

/** Volumes in tar order, each covering [start, start + size) with no gaps. */
export function volumeSource(parts: VolumePart[]): ByteSource {
  const size = parts.reduce((a, p) => a + p.size, 0);
  for (let i = 0, at = 0; i < parts.length; at += parts[i]!.size, i++) {
    if (parts[i]!.start !== at) throw new RangeError(`volume ${parts[i]!.path} starts at ${parts[i]!.start}, expected ${at}`);
  }
  const find = (position: number): number => {
    let lo = 0;
    let hi = parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (parts[mid]!.start <= position) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const spans = (position: number, length: number): { part: VolumePart; at: number; n: number }[] => {
    const out: { part: VolumePart; at: number; n: number }[] = [];
    let pos = position;
    let left = length;
    for (let i = find(position); left > 0 && i < parts.length; i++) {
      const p = parts[i]!;
      const n = Math.min(left, p.start + p.size - pos);
      if (n > 0) out.push({ part: p, at: pos - p.start, n });
      pos += n;
      left -= n;
    }
    return out;
  };
  return {
    size,
    async read(buffer, offset, length, position) {
      if (length === 0 || position >= size) return { bytesRead: 0 };
      const first = spans(position, Math.min(length, size - position))[0];
      if (!first) return { bytesRead: 0 };
      if (!first.part.fh) throw missingVolume(first.part.path);
      return await first.part.fh.read(buffer, offset, first.n, first.at + (first.part.fileOffset ?? 0));
    },
    locate(position, length) {
      return spans(position, length).map(({ part, at, n }) => {
        if (!part.fh) throw missingVolume(part.path);
        return { fd: part.fh.fd, path: part.path, position: at + (part.fileOffset ?? 0), length: n };
      });
    },
    describe(position, length = 1) {
      const names = [...new Set(spans(position, Math.max(1, length)).map((s) => s.part.path))];
      return names.length === 0 ? (parts.at(-1)?.path ?? '') : names.join(' and ');
    },
    async close() {
      await Promise.allSettled(parts.map((p) => p.fh?.close()));
    },
  };
}

function missingVolume(path: string): IntegrityError {
  return new IntegrityError(`volume ${path} is missing`, { code: 'VOLUME_MISSING', hint: `run \`airlock verify\` on the volumes to see what is lost and whether \`airlock repair\` can rebuild it` });
}
