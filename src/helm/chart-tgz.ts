// Chart archives (.tgz) in memory. helm itself loads a chart whole, so does airlock: a chart is
// small, and both its Chart.yaml and its charts/ folder have to be read. Sizes are capped like
// helm caps them, so a hostile archive cannot exhaust memory.
//
// Reading follows helm's loader: the first path component (the chart's folder) is stripped,
// directories and PAX/GNU metadata entries are skipped, paths that escape are refused. Writing is
// deterministic: entries sorted, mode 0644, owner 0, mtime 0, no directory entries (as helm
// writes them), and gzip written here with stored (uncompressed) deflate blocks. A compressor's
// output depends on its version and, for Node's zlib, on the CPU's SIMD features; stored blocks
// make "same lock, same bytes" hold on every machine. Such archives are only built for charts
// airlock vendors dependencies into, which are small (the dependencies inside stay compressed).
import { crc32, gunzipSync } from 'node:zlib';
import { IntegrityError } from '../core/errors.ts';
import { encodeHeader, END_OF_ARCHIVE, paddingFor } from '../bundle/tar.ts';

/** helm's default MaxDecompressedChartSize. */
export const MAX_CHART_BYTES = 100 * 1024 * 1024;
/** helm's default MaxDecompressedFileSize. */
export const MAX_CHART_FILE_BYTES = 5 * 1024 * 1024;

const BLOCK = 512;

export interface ChartFile {
  /** Path inside the chart, without the chart's folder: `Chart.yaml`, `templates/x.yaml`. */
  path: string;
  data: Buffer;
  /** Modification time from the archive (seconds since the epoch); 0 when unknown. */
  mtime: number;
}

export interface ChartTarball {
  /** The archive's top folder (normally the chart name). */
  root: string;
  files: ChartFile[];
}

function bad(what: string, why: string): IntegrityError {
  return new IntegrityError(`${what}: ${why}`, { code: 'CHART_ARCHIVE_INVALID', hint: 'the chart archive is damaged or not a helm chart (.tgz from `helm package`)' });
}

function octal(b: Buffer, off: number, len: number): number {
  const first = b[off]!;
  if (first & 0x80) {
    let v = 0n;
    for (let i = off + 1; i < off + len; i++) v = (v << 8n) | BigInt(b[i]!);
    v |= BigInt(first & 0x7f) << BigInt(8 * (len - 1));
    return Number(v);
  }
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  return s === '' ? 0 : parseInt(s, 8);
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function paxRecords(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const sp = body.indexOf(0x20, i);
    const len = Number(body.toString('latin1', i, sp));
    if (sp < 0 || !Number.isInteger(len) || len <= 0 || i + len > body.length) break;
    const rec = body.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/** Decompress and read a chart archive. `what` names it in errors. */
export function readChartTgz(bytes: Uint8Array, what: string): ChartTarball {
  if (bytes.byteLength < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) throw bad(what, 'not a gzip-compressed tar archive');
  let tar: Buffer;
  try {
    tar = gunzipSync(bytes, { maxOutputLength: MAX_CHART_BYTES });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw bad(what, `decompresses to more than ${MAX_CHART_BYTES} bytes (helm's limit for a chart)`);
    }
    throw bad(what, `gzip data is corrupt (${(e as Error).message})`);
  }
  const files: ChartFile[] = [];
  const seen = new Set<string>();
  let root: string | undefined;
  let pos = 0;
  let longName: string | undefined;
  let pax: Map<string, string> | undefined;
  while (pos + BLOCK <= tar.length) {
    const h = tar.subarray(pos, pos + BLOCK);
    if (h.every((x) => x === 0)) break;
    const type = String.fromCharCode(h[156]!);
    const size = octal(h, 124, 12);
    const dataStart = pos + BLOCK;
    const next = dataStart + size + paddingFor(size);
    if (!Number.isSafeInteger(size) || size < 0 || dataStart + size > tar.length) throw bad(what, 'truncated tar entry');
    const data = tar.subarray(dataStart, dataStart + size);
    pos = next;
    if (type === 'x') {
      pax = paxRecords(data);
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = cstr(data, 0, data.length);
      continue;
    }
    if (type === 'K') continue;
    let name = cstr(h, 0, 100);
    if (h.toString('latin1', 257, 263) === 'ustar\0') {
      const prefix = cstr(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (longName !== undefined) name = longName;
    if (pax?.get('path') !== undefined) name = pax.get('path')!;
    const mtime = pax?.get('mtime') !== undefined ? Math.floor(Number(pax.get('mtime'))) : octal(h, 136, 12);
    longName = undefined;
    pax = undefined;
    // Only regular files carry chart content (helm skips directories; links carry no bytes).
    if (type !== '0' && type !== '\0' && type !== '7') continue;
    const parts = name.replaceAll('\\', '/').split('/').filter((p) => p !== '' && p !== '.');
    if (parts.length < 2) continue;
    if (parts.some((p) => p === '..')) throw bad(what, `entry "${name}" points outside the chart`);
    root ??= parts[0]!;
    const path = parts.slice(1).join('/');
    if (size > MAX_CHART_FILE_BYTES) throw bad(what, `file ${path} is ${size} bytes, more than helm's ${MAX_CHART_FILE_BYTES}-byte limit for one chart file`);
    if (seen.has(path)) continue;
    seen.add(path);
    files.push({ path, data: Buffer.from(data), mtime: Number.isFinite(mtime) ? mtime : 0 });
  }
  if (root === undefined) throw bad(what, 'the archive holds no files');
  return { root, files };
}

/**
 * A chart archive from files: `<root>/<path>` entries sorted by path, fixed metadata, so the same
 * files always give the same bytes.
 */
export function writeChartTgz(root: string, files: readonly { path: string; data: Uint8Array }[]): Buffer {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  for (const f of sorted) {
    parts.push(encodeHeader({ name: `${root}/${f.path}`, type: 'file', size: f.data.byteLength }));
    parts.push(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength));
    const pad = paddingFor(f.data.byteLength);
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(END_OF_ARCHIVE);
  return storedGzip(Buffer.concat(parts));
}

const STORED_BLOCK_MAX = 0xffff;

/** RFC 1952 gzip around RFC 1951 stored blocks: mtime 0, no name, OS "unknown" (as Go writes it). */
export function storedGzip(data: Buffer): Buffer {
  const blocks = Math.max(1, Math.ceil(data.length / STORED_BLOCK_MAX));
  const out = Buffer.alloc(10 + blocks * 5 + data.length + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], 0);
  let pos = 10;
  for (let i = 0; i < blocks; i++) {
    const chunk = data.subarray(i * STORED_BLOCK_MAX, Math.min(data.length, (i + 1) * STORED_BLOCK_MAX));
    out[pos] = i === blocks - 1 ? 1 : 0; // BFINAL on the last block, BTYPE 00 (stored)
    out.writeUInt16LE(chunk.length, pos + 1);
    out.writeUInt16LE(~chunk.length & 0xffff, pos + 3);
    out.set(chunk, pos + 5);
    pos += 5 + chunk.length;
  }
  out.writeUInt32LE(crc32(data) >>> 0, pos);
  out.writeUInt32LE(data.length >>> 0, pos + 4);
  return out;
}
