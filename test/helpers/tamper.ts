// Bundles damaged after packing, as a bad copy or a hostile hand leaves them: one byte of a blob
// flipped in place, a blob's entry dropped from the tar (everything else byte for byte), bytes
// written anywhere, or entries copied in from another bundle.
import assert from 'node:assert/strict';
import { copyFile, open, writeFile } from 'node:fs/promises';
import { openBundle } from '../../src/bundle/read.ts';
import { END_OF_ARCHIVE, encodeHeader, paddingFor, scanTar } from '../../src/bundle/tar.ts';

/** Where a blob's bytes sit in the bundle's tar. */
export async function blobOffset(bundle: string, digest: string): Promise<{ offset: number; size: number }> {
  const b = await openBundle(bundle);
  try {
    const e = b.blobEntry(digest);
    if (!e) throw new Error(`${digest} is not in ${bundle}`);
    return e;
  } finally {
    await b.close();
  }
}

/** Flip (xor 0xff) the byte `at` bytes into `digest`'s entry of `path`, in place (negative `at`: from its end). */
export async function flipBlobByte(path: string, digest: string, at: number): Promise<void> {
  const e = await blobOffset(path, digest);
  const pos = e.offset + (at < 0 ? e.size + at : at);
  const fh = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, pos);
    byte[0] = byte[0]! ^ 0xff;
    await fh.write(byte, 0, 1, pos);
  } finally {
    await fh.close();
  }
}

/** A copy of `src` at `dst` with one byte of each blob flipped: `flips` maps digest → offset into it. */
export async function copyWithFlips(src: string, dst: string, flips: Record<string, number>): Promise<void> {
  await copyFile(src, dst);
  for (const [digest, at] of Object.entries(flips)) await flipBlobByte(dst, digest, at);
}

/** A copy of `src` at `dst` without the tar entries of `digests` (the inventory still lists them). */
export async function copyWithout(src: string, dst: string, digests: readonly string[]): Promise<void> {
  const drop = new Set(digests.map((d) => `blobs/${d.replace(':', '/')}`));
  await rewriteTar(src, dst, (name) => !drop.has(name));
}

/** Copy a tar entry by entry (airlock's encoder), keeping the entries `keep` accepts, their content as `change` gives it. */
export async function rewriteTar(src: string, dst: string, keep: (name: string) => boolean, change = (_name: string, content: Buffer) => content): Promise<void> {
  const fh = await open(src, 'r');
  const parts: Buffer[] = [];
  try {
    const { entries } = await scanTar(fh, (await fh.stat()).size, src);
    for (const e of entries) {
      if (!keep(e.name)) continue;
      if (e.type === 'file') {
        const original = Buffer.alloc(e.size);
        await fh.read(original, 0, e.size, e.offset);
        const content = change(e.name, original);
        parts.push(encodeHeader({ name: e.name, type: 'file', size: content.length }), content, Buffer.alloc(paddingFor(content.length)));
      } else {
        parts.push(encodeHeader({ name: e.name, type: e.type, size: 0 }));
      }
    }
  } finally {
    await fh.close();
  }
  parts.push(END_OF_ARCHIVE);
  await writeFile(dst, Buffer.concat(parts));
}

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
