// Files of a packaged chart (.tgz), read into memory with hard limits. Charts are small; the
// limits (helm's own: 100 MiB unpacked, 5 MiB a file) stop a hostile archive from filling memory.
// Only regular files are returned; links, devices and names that escape are skipped.
import { gunzipSync } from 'node:zlib';
import { UsageError } from '../core/errors.ts';

export const MAX_CHART_BYTES = 100 * 1024 * 1024;
const MAX_FILE_BYTES = 5 * 1024 * 1024;
const BLOCK = 512;

function field(buf: Buffer, off: number, len: number): string {
  const raw = buf.subarray(off, off + len);
  const nul = raw.indexOf(0);
  return (nul < 0 ? raw : raw.subarray(0, nul)).toString('utf8');
}

function octal(buf: Buffer, off: number, len: number): number {
  const text = field(buf, off, len).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function paxPath(body: Buffer): string | undefined {
  let i = 0;
  let path: string | undefined;
  while (i < body.length) {
    const space = body.indexOf(0x20, i);
    if (space < 0) break;
    const len = Number(body.subarray(i, space).toString('ascii'));
    if (!Number.isSafeInteger(len) || len <= 0) break;
    const record = body.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0 && record.slice(0, eq) === 'path') path = record.slice(eq + 1);
    i += len;
  }
  return path;
}

function safeName(name: string): string | undefined {
  const clean = name.replace(/^\.\//, '');
  if (clean === '' || clean.startsWith('/') || clean.split('/').includes('..')) return undefined;
  return clean;
}

/** The regular files of a gzip'd tar, by path. `what` names the archive in errors. */
export function readChartArchive(gz: Buffer, what: string): Map<string, Buffer> {
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: MAX_CHART_BYTES });
  } catch (e) {
    throw new UsageError(`${what} is not a gzip-compressed chart archive (${(e as Error).message})`, {
      code: 'CHART_INVALID',
      cause: e,
      hint: 'a packaged chart is the .tgz that `helm package` writes',
    });
  }
  const files = new Map<string, Buffer>();
  let off = 0;
  let longName: string | undefined;
  while (off + BLOCK <= tar.length) {
    const header = tar.subarray(off, off + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156] ?? 0);
    const prefix = field(header, 345, 155);
    const base = field(header, 0, 100);
    const body = tar.subarray(off + BLOCK, off + BLOCK + size);
    if (!Number.isSafeInteger(size) || size < 0 || body.length < size) {
      throw new UsageError(`${what} is truncated or not a tar archive`, { code: 'CHART_INVALID' });
    }
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x') {
      longName = paxPath(body) ?? longName;
      continue;
    }
    if (type === 'L') {
      longName = body.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const name = longName ?? (prefix ? `${prefix}/${base}` : base);
    longName = undefined;
    if (type !== '0' && type !== '\0') continue;
    const safe = safeName(name);
    if (safe === undefined || size > MAX_FILE_BYTES) continue;
    files.set(safe, Buffer.from(body));
  }
  return files;
}
