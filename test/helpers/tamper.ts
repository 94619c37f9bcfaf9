// Bundles damaged after packing, as a bad copy or a hostile hand leaves them: one byte of a blob
// flipped in place, or a blob's entry dropped from the tar (everything else byte for byte).
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
