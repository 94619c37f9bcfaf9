// Tools a bundle carries (pack --with-tools): executables read from files on this machine, listed
// in the inventory by sha256 and size — so verify and the signature cover them — and copied into
// the tar, checked again while they are copied (a file changed since it was hashed fails the pack).
// Which files to carry is the caller's choice (src/tools/ finds them); here they are only bytes.
import { open, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { AirlockError, IntegrityError, NotFoundError, throwIfAborted, UsageError } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import { compareStrings, TOOL_NAME_FORM, TOOL_PLATFORM_FORM, toolPath, type InventoryTool } from './format.ts';

/** One executable to carry: `file` on this machine, as `name` of `platform` in the bundle. */
export interface ToolFile {
  /** `os/arch`, e.g. `linux/amd64`. */
  platform: string;
  /** Its name in the platform's folder: `airlock` or `helm`. */
  name: string;
  /** Absolute path of the file to copy. */
  file: string;
}

const CHUNK = 1024 * 1024;

/** The inventory's entries for `tools`: each file hashed, sorted by path; the same tool twice is refused. */
export async function inventoryTools(tools: readonly ToolFile[], signal?: AbortSignal): Promise<InventoryTool[]> {
  const out: InventoryTool[] = [];
  const seen = new Set<string>();
  for (const t of tools) {
    if (!TOOL_PLATFORM_FORM.test(t.platform)) throw new UsageError(`tool platform "${t.platform}" is not os/arch (e.g. linux/amd64)`, { code: 'TOOL_PLATFORM_INVALID' });
    if (!TOOL_NAME_FORM.test(t.name)) throw new UsageError(`tool name "${t.name}" is not a plain file name`, { code: 'TOOL_PLATFORM_INVALID' });
    const path = toolPath(t.platform, t.name);
    if (seen.has(path)) throw new UsageError(`${path} is given twice`, { code: 'TOOL_PLATFORM_INVALID' });
    seen.add(path);
    const { digest, size } = await hashFile(t.file, signal);
    out.push({ platform: t.platform, name: t.name, path, digest, size });
  }
  return out.sort((a, b) => compareStrings(a.path, b.path));
}

/** sha256 and size of a file, streamed. */
export async function hashFile(file: string, signal?: AbortSignal): Promise<{ digest: Digest; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await readChunks(file, signal, (chunk) => {
    h.update(chunk);
    size += chunk.length;
  });
  return { digest: `sha256:${h.digest('hex')}` as Digest, size };
}

/**
 * Put `tool`'s bytes from `file` through `put`, in order; resolves only once they are the size and
 * digest the inventory lists (a file replaced or changed since it was hashed is refused).
 */
export async function feedTool(tool: InventoryTool, file: string, put: (chunk: Buffer) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  const h = createHash('sha256');
  let size = 0;
  const changed = (why: string): IntegrityError =>
    new IntegrityError(`${file} changed while it was packed as ${tool.path}: ${why}`, { code: why.startsWith('now') ? 'SIZE_MISMATCH' : 'DIGEST_MISMATCH', hint: 'pack again once the file is no longer being written' });
  await readChunks(file, signal, async (chunk) => {
    if (size + chunk.length > tool.size) throw changed(`now more than the ${tool.size} bytes it had`);
    h.update(chunk);
    size += chunk.length;
    await put(chunk);
  });
  if (size !== tool.size) throw changed(`now ${size} bytes, it had ${tool.size}`);
  const digest = `sha256:${h.digest('hex')}`;
  if (digest !== tool.digest) throw changed(`it hashes to ${digest}, it hashed to ${tool.digest}`);
}

/** The file a planned tool is copied from. */
export function toolFile(files: ReadonlyMap<string, string>, path: string): string {
  const f = files.get(path);
  if (f === undefined) throw new AirlockError('INTERNAL', 'internal', `${path} has no file to copy it from`);
  return f;
}

async function readChunks(file: string, signal: AbortSignal | undefined, each: (chunk: Buffer) => void | Promise<void>): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`tool file ${file} does not exist`, { code: 'TOOL_NOT_FOUND', cause: e });
    throw e;
  }
  try {
    if (!(await fh.stat()).isFile()) throw new UsageError(`tool file ${file} is not a regular file`, { code: 'NOT_A_REGULAR_FILE' });
    for (;;) {
      throwIfAborted(signal);
      // A fresh buffer each time: `each` may keep the chunk until it is written.
      const buf = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) return;
      await each(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}
