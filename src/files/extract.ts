// extract --files: the files a bundle carries (`files:`), written into one folder byte for byte,
// with their modes. What the bundle claims is checked first, as from a stranger: each name must be
// a safe file name (lock checked it; the bundle may have been made by hand) that lands directly in
// the folder, each inventory entry must be what its artifact's manifest says, and each file is
// written through the one atomic writer (temp file beside it, fsync, rename) from a read of the
// bundle that is verified against its sha256 — a damaged file never appears, nothing is written
// outside the folder. A file already there with the same bytes is left (its mode set); with other
// bytes it is replaced only when forced, and otherwise nothing at all is written.
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, open } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Stats } from 'node:fs';
import { ConflictError, IntegrityError, throwIfAborted, UsageError } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import { digestOf } from '../core/digest.ts';
import { MAX_MANIFEST_BYTES } from '../core/manifest.ts';
import { openBundle, type Bundle } from '../bundle/read.ts';
import { blobPath, type InventoryFile } from '../bundle/format.ts';
import { checkFreeSpace, openAtomic } from '../util/atomic-file.ts';
import { fileError } from '../util/file-error.ts';
import { fileNameProblem, formatMode, parseMode, readFileArtifact, FILE_LAYER_MEDIA_TYPE } from './artifact.ts';

export interface ExtractFilesOptions {
  /** Replace files in the folder whose bytes differ (default: refuse them all, FILE_EXISTS, before writing anything). */
  force?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Each file once it is in place. */
  onFile?: ((f: ExtractedFile) => void) | undefined;
}

export interface ExtractedFile {
  name: string;
  /** Where it is (absolute). */
  path: string;
  size: number;
  /** sha256 of its bytes. */
  digest: Digest;
  /** `0755` */
  mode: string;
  /** Written new, replacing other bytes (forced), or already there with these bytes (its mode set). */
  action: 'written' | 'replaced' | 'unchanged';
}

export interface ExtractFilesResult {
  /** The bundle read (its file, or a split bundle's shared name). */
  bundle: string;
  /** The folder written (absolute). */
  dir: string;
  files: ExtractedFile[];
  /** Bytes written (files left unchanged not counted). */
  bytes: number;
}

/** Write every file `bundle` carries into `dir` (created when missing). */
export async function extractFiles(bundlePath: string | readonly string[], dir: string, opts: ExtractFilesOptions = {}): Promise<ExtractFilesResult> {
  const folder = resolve(dir);
  const bundle = await openBundle(bundlePath, { signal: opts.signal });
  try {
    const files = await checkedFiles(bundle, folder);
    if (files.length === 0) {
      throw new UsageError(`${bundle.path} carries no files`, { code: 'NOTHING_TO_EXPORT', hint: 'files are listed under files: in airlock.yaml; `airlock inspect BUNDLE` shows what a bundle carries' });
    }
    // Every target is looked at before the first is written: a conflict leaves the folder as it was.
    const plans = [];
    for (const f of files) plans.push({ f, target: join(folder, f.name), action: await actionFor(join(folder, f.name), f, opts.signal) });
    const conflicts = plans.filter((p) => p.action === 'conflict');
    if (conflicts.length > 0 && opts.force !== true) {
      throw new ConflictError(`${conflicts.length === 1 ? 'a file' : `${conflicts.length} files`} in ${folder} already exist${conflicts.length === 1 ? 's' : ''} with other content: ${conflicts.map((p) => p.f.name).join(', ')}; nothing was written`, {
        code: 'FILE_EXISTS',
        hint: 'extract into another folder, or give --force to replace them',
      });
    }
    await mkdir(folder, { recursive: true }).catch((e: unknown) => {
      throw fileError(e, folder, 'create the folder');
    });
    const writing = plans.filter((p) => p.action !== 'unchanged');
    if (writing.length > 0) await checkFreeSpace(join(folder, writing[0]!.f.name), writing.reduce((a, p) => a + p.f.size, 0));
    const out: ExtractedFile[] = [];
    let bytes = 0;
    for (const p of plans) {
      throwIfAborted(opts.signal);
      const mode = parseMode(p.f.mode)!;
      if (p.action === 'unchanged') {
        await chmod(p.target, mode).catch((e: unknown) => {
          throw fileError(e, p.target, 'change the mode of');
        });
      } else {
        await writeFile(bundle, p.f, p.target, mode, opts.signal);
        bytes += p.f.size;
      }
      const done: ExtractedFile = { name: p.f.name, path: p.target, size: p.f.size, digest: p.f.digest, mode: formatMode(mode), action: p.action === 'unchanged' ? 'unchanged' : p.action === 'conflict' ? 'replaced' : 'written' };
      opts.onFile?.(done);
      out.push(done);
    }
    return { bundle: bundle.path, dir: folder, files: out, bytes };
  } finally {
    await bundle.close();
  }
}

/**
 * The inventory's files, each checked: a safe name that lands directly in `folder`, listed once,
 * its artifact in index.json under the inventory's name and saying what the inventory says, its
 * bytes in the bundle at the size listed.
 */
async function checkedFiles(bundle: Bundle, folder: string): Promise<InventoryFile[]> {
  const list = bundle.inventory.files ?? [];
  const bad = (f: { name: string }, why: string): IntegrityError =>
    new IntegrityError(`${bundle.path}: the file ${JSON.stringify(f.name).slice(0, 90)} is not extracted: ${why}; nothing was written`, {
      code: 'BUNDLE_METADATA_INVALID',
      hint: `the bundle was changed after packing or not written by airlock; \`airlock verify ${bundle.path}\` reports everything that is wrong`,
    });
  const roots = new Map(bundle.images().map((i) => [i.reference, i.root]));
  const seen = new Set<string>();
  for (const f of list) {
    const why = fileNameProblem(f.name);
    if (why !== undefined) throw bad(f, `its name is not a safe file name: ${why}`);
    const target = join(folder, f.name);
    if (dirname(target) !== folder || basename(target) !== f.name) throw bad(f, `it would not be written directly into ${folder}`);
    if (seen.has(f.name)) throw bad(f, 'it is listed twice');
    seen.add(f.name);
    if (parseMode(f.mode) === undefined) throw bad(f, `its mode ${JSON.stringify(f.mode)} is not octal permission bits`);
    const root = roots.get(f.reference);
    if (!root) throw bad(f, `index.json has no ${f.reference}`);
    const bytes = await bundle.readEntry(blobPath(root.digest), MAX_MANIFEST_BYTES).catch(() => undefined);
    if (!bytes || digestOf(bytes) !== root.digest) throw bad(f, `the manifest of ${f.reference} is missing or damaged`);
    let art: ReturnType<typeof readFileArtifact>;
    try {
      art = readFileArtifact(f.reference, root, bytes);
    } catch (e) {
      throw bad(f, (e as Error).message);
    }
    if (art.name !== f.name || art.digest !== f.digest || art.size !== f.size || formatMode(art.mode) !== f.mode) {
      throw bad(f, `the inventory says ${f.name} ${f.digest} (${f.size} bytes, mode ${f.mode}); its artifact says ${art.name} ${art.digest} (${art.size} bytes, mode ${formatMode(art.mode)})`);
    }
    if (bundle.blobEntry(f.digest)?.size !== f.size) throw bad(f, 'its bytes are not in the bundle');
  }
  return list;
}

/** What becomes of `target`: nothing there (written), the same bytes (unchanged), or something else (a conflict). */
async function actionFor(target: string, f: InventoryFile, signal: AbortSignal | undefined): Promise<'write' | 'unchanged' | 'conflict'> {
  let s: Stats;
  try {
    s = await lstat(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'write';
    throw fileError(e, target, 'read');
  }
  if (s.isDirectory()) throw new UsageError(`cannot extract the file ${f.name}: ${target} is a directory`, { code: 'PATH_IS_A_DIRECTORY', hint: 'remove it, or extract into another folder' });
  // A symbolic link is never followed: it is other content, replaced (the link itself) only when forced.
  if (!s.isFile() || s.size !== f.size) return 'conflict';
  return (await sha256Of(target, signal)) === f.digest ? 'unchanged' : 'conflict';
}

async function sha256Of(path: string, signal: AbortSignal | undefined): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw fileError(e, path, 'read');
  });
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      throwIfAborted(signal);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return `sha256:${h.digest('hex')}`;
}

/** One file, from a verified read of the bundle, through a temp file beside `target`; its mode exactly `mode` (not narrowed by the umask). */
async function writeFile(bundle: Bundle, f: InventoryFile, target: string, mode: number, signal: AbortSignal | undefined): Promise<void> {
  const file = await openAtomic(target, { mode, signal });
  try {
    await file.handle.chmod(mode);
    await pipeline(await bundle.fetch({ mediaType: FILE_LAYER_MEDIA_TYPE, digest: f.digest, size: f.size }, { signal }), file.createWriteStream(), { signal });
    await file.commit();
  } catch (e) {
    await file.discard();
    if (e instanceof IntegrityError) {
      throw new IntegrityError(`the file ${f.name} is damaged in ${bundle.path}: ${e.message}; it was not written`, { code: e.code, cause: e, hint: `\`airlock verify ${bundle.path}\` reports everything that is wrong` });
    }
    throw e;
  }
}
