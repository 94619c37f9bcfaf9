// TODO(atomic-file): replace with src/util/atomic-file.ts when that module lands; every caller of
// writeOutputFile is marked with the same tag.
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Write a whole file so that a reader sees the old content or the new, never a part: a temp file
 * in the same folder, fsynced, renamed over the target; the temp file is removed on failure.
 */
export async function writeOutputFile(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
