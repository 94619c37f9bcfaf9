// Byte-level surgery on bundles written by airlock, for tests of what verify, inspect, push and
// serve make of a tampered one: where each entry lies, and entries copied in from another bundle.
import assert from 'node:assert/strict';
import { copyFile, open } from 'node:fs/promises';
import { openBundle } from '../../src/bundle/index.ts';

export interface EntryPlace {
  /** Offset of the content. */
  offset: number;
  size: number;
  /** Offset of the entry's first header block. */
  header: number;
}

/** Every entry of a bundle (directories included) with its place, and the file's size. */
export async function layoutOf(path: string): Promise<{ entries: Map<string, EntryPlace>; size: number }> {
  const b = await openBundle(path);
  try {
    return { entries: new Map(b.tarEntries.map((e) => [e.name, { offset: e.offset, size: e.size, header: e.headerOffset }])), size: b.fileSize };
  } finally {
    await b.close();
  }
}

export async function readAt(path: string, pos: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, pos);
    return b;
  } finally {
    await fh.close();
  }
}

/** A copy of `src` at `dst` with `bytes` written at `pos`. */
export async function patched(src: string, dst: string, pos: number, bytes: Buffer): Promise<string> {
  await copyFile(src, dst);
  const fh = await open(dst, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, pos);
  } finally {
    await fh.close();
  }
  return dst;
}

/**
 * A copy of bundle `into` at `out` whose entries `names` hold bundle `from`'s bytes instead: what
 * copying another bundle's files in gives. The entries must have the same sizes in both (the
 * signature entries of two bundles signed with keys of one type do), so the tar stays well framed.
 */
export async function withEntriesOf(into: string, from: string, names: readonly string[], out: string): Promise<string> {
  const a = await layoutOf(into);
  const b = await layoutOf(from);
  await copyFile(into, out);
  const fh = await open(out, 'r+');
  try {
    for (const name of names) {
      const ea = a.entries.get(name)!;
      const eb = b.entries.get(name)!;
      assert.equal(ea.size, eb.size, `${name} has the same size in both bundles`);
      const bytes = await readAt(from, eb.offset, eb.size);
      assert.notDeepEqual(bytes, await readAt(into, ea.offset, ea.size), `${name} differs between the bundles`);
      await fh.write(bytes, 0, bytes.length, ea.offset);
    }
  } finally {
    await fh.close();
  }
  return out;
}
