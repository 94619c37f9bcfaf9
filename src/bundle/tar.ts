// The tar dialect airlock writes and reads: POSIX ustar with PAX extended headers only where ustar
// cannot hold a value (names over 100 bytes, sizes of 8 GiB and more). Headers are written
// deterministically (mtime 0, uid/gid 0, no user names) so the same entries give the same bytes.
//
// The reader scans headers with positioned reads and jumps over contents: nothing is extracted and
// a large archive is never read whole. It refuses anything that could mean something other than
// "a named run of bytes": links, devices, fifos, names that escape, duplicates, unknown PAX keys.
import { IntegrityError } from '../core/errors.ts';
import type { PositionedReader } from './source.ts';

export const BLOCK = 512;
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;
/** A carried executable: `tar -xf` gives a file that runs. */
const EXEC_MODE = 0o755;
const NAME_MAX = 100;
/** 11 octal digits: the largest size a ustar header holds. */
const USTAR_SIZE_MAX = 8 ** 11 - 1;
/** PAX headers are tiny; a huge one is hostile. */
const PAX_MAX = 1024 * 1024;

export type TarEntryType = 'file' | 'dir';

export interface TarHeaderInput {
  /** Relative path; directories may end with `/` (added when missing). */
  name: string;
  type: TarEntryType;
  /** Content size for files; ignored for directories. */
  size: number;
  /** A file extracted as executable (mode 0755 instead of 0644). */
  executable?: boolean | undefined;
}

/** Zero bytes that pad content of `size` to a whole block. */
export function paddingFor(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

/**
 * The header block(s) for one entry: a PAX `x` header (with its records) first when the name or
 * size does not fit ustar, then the ustar header. Same input, same bytes.
 */
export function encodeHeader(input: TarHeaderInput): Buffer {
  const isDir = input.type === 'dir';
  const name = isDir && !input.name.endsWith('/') ? `${input.name}/` : input.name;
  const size = isDir ? 0 : input.size;
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`tar entry ${name}: invalid size ${size}`);

  const records: [string, string][] = [];
  const nameFits = Buffer.byteLength(name) <= NAME_MAX && /^[\x20-\x7e]*$/.test(name);
  if (!nameFits) records.push(['path', name]);
  if (size > USTAR_SIZE_MAX) records.push(['size', String(size)]);

  const main = ustarHeader(nameFits ? name : paxFallbackName(name), size > USTAR_SIZE_MAX ? 0 : size, isDir ? '5' : '0', isDir ? DIR_MODE : input.executable === true ? EXEC_MODE : FILE_MODE);
  if (records.length === 0) return main;
  const body = encodePaxRecords(records);
  const pax = ustarHeader(paxHeaderName(name), body.length, 'x', FILE_MODE);
  return Buffer.concat([pax, body, Buffer.alloc(paddingFor(body.length)), main]);
}

/** Bytes an entry takes in the archive: header(s), content, padding. */
export function encodedEntrySize(input: TarHeaderInput): number {
  const size = input.type === 'dir' ? 0 : input.size;
  // The common case without encoding a header: sizing every entry of a big bundle stays cheap.
  const name = input.type === 'dir' && !input.name.endsWith('/') ? `${input.name}/` : input.name;
  const plain = Number.isSafeInteger(size) && size >= 0 && size <= USTAR_SIZE_MAX && name.length <= NAME_MAX && /^[\x20-\x7e]*$/.test(name);
  return (plain ? BLOCK : encodeHeader(input).length) + size + paddingFor(size);
}

// Go's archive/tar names PAX headers "<dir>/PaxHeaders.0/<base>"; any stable name works, and a
// reader that ignores PAX sees a harmless regular file.
function paxHeaderName(name: string): string {
  const base = name.replace(/\/+$/, '').split('/').pop() ?? '';
  return asciiTruncate(`PaxHeaders.0/${base}`, NAME_MAX);
}

/** The ustar name field for readers without PAX support: the tail of the real name. */
function paxFallbackName(name: string): string {
  return asciiTruncate(name, NAME_MAX);
}

function asciiTruncate(s: string, max: number): string {
  return s.replace(/[^\x20-\x7e]/g, '_').slice(0, max);
}

function encodePaxRecords(records: [string, string][]): Buffer {
  const parts = records.map(([k, v]) => {
    // "%d %s=%s\n" where %d counts the whole record, including its own digits.
    const rest = ` ${k}=${v}\n`;
    const restLen = Buffer.byteLength(rest);
    let len = restLen + 1;
    while (String(len).length + restLen !== len) len = String(len).length + restLen;
    return `${len}${rest}`;
  });
  return Buffer.from(parts.join(''), 'utf8');
}

function ustarHeader(name: string, size: number, typeflag: string, mode: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, NAME_MAX, 'utf8');
  writeOctal(b, 100, 8, mode);
  writeOctal(b, 108, 8, 0); // uid
  writeOctal(b, 116, 8, 0); // gid
  writeOctal(b, 124, 12, size);
  writeOctal(b, 136, 12, 0); // mtime
  b.write(typeflag, 156, 1, 'latin1');
  b.write('ustar\0', 257, 6, 'latin1');
  b.write('00', 263, 2, 'latin1');
  writeOctal(b, 329, 8, 0); // devmajor
  writeOctal(b, 337, 8, 0); // devminor
  const sum = headerChecksum(b);
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

function writeOctal(b: Buffer, offset: number, length: number, value: number): void {
  const s = value.toString(8).padStart(length - 1, '0');
  if (s.length > length - 1) throw new RangeError(`tar header: ${value} does not fit ${length - 1} octal digits`);
  b.write(`${s}\0`, offset, length, 'latin1');
}

/** Sum of the header bytes with the checksum field counted as spaces (POSIX). */
function headerChecksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  return sum;
}

/** The same sum with bytes as signed chars, which some historic writers used. */
function signedHeaderChecksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b.readInt8(i);
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface TarEntry {
  /** Normalised relative path, without a leading `./` or a trailing `/`. */
  name: string;
  type: TarEntryType;
  /** Offset of the content in the file. */
  offset: number;
  size: number;
  /** Offset of the entry's first header block (PAX header included). */
  headerOffset: number;
}

export interface ScanOptions {
  /** Stop scanning (without reaching the end) once this returns true; it sees every entry so far. */
  until?: (entry: TarEntry) => boolean;
  /** Names the file holding an offset (the volume of a split bundle), added to damage reports. */
  locate?: (offset: number) => string;
}

export interface ScanResult {
  entries: TarEntry[];
  /** True when the end-of-archive marker was reached (false when `until` stopped the scan). */
  complete: boolean;
}

/**
 * Read the entry table of a tar file. `what` names the file in errors. Throws IntegrityError for
 * anything that is not a plain, safe archive of files and directories.
 */
export async function scanTar(fh: PositionedReader, fileSize: number, what: string, opts: ScanOptions = {}): Promise<ScanResult> {
  if (fileSize === 0) throw notTar(what, 'the file is empty');
  if (fileSize < BLOCK) throw notTar(what, `the file is ${fileSize} bytes, smaller than one tar header`);
  const entries: TarEntry[] = [];
  const seen = new Set<string>();
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let pax: Map<string, string> | undefined;
  let paxStart: number | undefined;
  const where = (): string => (entries.length === 0 ? 'at the start' : `after entry "${entries[entries.length - 1]!.name}"`);
  const inFile = (offset: number): string => (opts.locate ? `, in ${opts.locate(offset)}` : '');

  for (;;) {
    if (pos + BLOCK > fileSize) {
      throw new IntegrityError(`${what}: truncated: the archive ends ${where()} without an end-of-archive marker`, {
        code: 'TAR_TRUNCATED',
        hint: 'the file was cut short (interrupted copy or full disk); copy it again',
      });
    }
    await readExactly(fh, header, pos);
    if (isZeroBlock(header)) {
      if (pax) throw new IntegrityError(`${what}: a PAX header at offset ${paxStart} is followed by the end of the archive`, { code: 'TAR_INVALID' });
      // The second zero block may be missing on some writers; the first one already ends the archive.
      return { entries, complete: true };
    }
    const stored = parseOctal(header, 148, 8);
    if (stored === undefined || (stored !== headerChecksum(header) && stored !== signedHeaderChecksum(header))) {
      if (pos === 0) throw notTar(what, `the first block is not a tar header (bad checksum)${compressionOf(header)}`);
      throw new IntegrityError(`${what}: bad header checksum at offset ${pos} (${where()}${inFile(pos)})`, {
        code: 'TAR_CHECKSUM',
        hint: 'the bundle is corrupt; copy it again from the source',
      });
    }
    const typeflag = String.fromCharCode(header[156]!);
    const magic = header.toString('latin1', 257, 263);
    const isUstar = magic === 'ustar\0';
    let name = cString(header, 0, NAME_MAX);
    if (isUstar) {
      const prefix = cString(header, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    let size = parseSize(header);
    if (size === undefined) throw new IntegrityError(`${what}: entry "${name}" at offset ${pos} has an invalid size field`, { code: 'TAR_INVALID' });

    if (typeflag === 'x' || typeflag === 'g') {
      if (size > PAX_MAX) throw new IntegrityError(`${what}: PAX header at offset ${pos} is ${size} bytes, more than ${PAX_MAX}`, { code: 'TAR_INVALID' });
      if (pos + BLOCK + size > fileSize) throw truncated(what, `PAX header at offset ${pos}`);
      const body = Buffer.alloc(size);
      await readExactly(fh, body, pos + BLOCK);
      const records = parsePaxRecords(body, what, pos);
      if (typeflag === 'g') {
        checkPaxKeys(records, what, pos, true);
      } else {
        checkPaxKeys(records, what, pos, false);
        if (pax === undefined) paxStart = pos;
        pax = new Map([...(pax ?? []), ...records]);
      }
      pos += BLOCK + size + paddingFor(size);
      continue;
    }

    const headerOffset = paxStart ?? pos;
    if (pax) {
      const p = pax.get('path');
      if (p !== undefined) name = p;
      const s = pax.get('size');
      if (s !== undefined) {
        if (!/^[0-9]{1,16}$/.test(s) || !Number.isSafeInteger(Number(s))) {
          throw new IntegrityError(`${what}: entry "${name}" has an invalid PAX size "${s}"`, { code: 'TAR_INVALID' });
        }
        size = Number(s);
      }
      pax = undefined;
      paxStart = undefined;
    }

    const type = entryType(typeflag, name, what);
    const normalised = normaliseName(name, type, what);
    const offset = pos + BLOCK;
    if (offset + size > fileSize) throw truncated(what, `entry "${name}"`, `it needs ${size} bytes from offset ${offset}, the file has ${fileSize}`);
    pos = offset + size + paddingFor(size);
    // "./" is the archive root: nothing to record.
    if (normalised === '') continue;
    if (seen.has(normalised)) {
      throw new IntegrityError(`${what}: entry "${name}" appears more than once`, {
        code: 'TAR_DUPLICATE',
        hint: 'a bundle holds every name exactly once; this file was not written by airlock or was tampered with',
      });
    }
    seen.add(normalised);
    const entry: TarEntry = { name: normalised, type, offset, size: type === 'dir' ? 0 : size, headerOffset };
    entries.push(entry);
    if (opts.until?.(entry)) return { entries, complete: false };
  }
}

function entryType(typeflag: string, name: string, what: string): TarEntryType {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7': // contiguous file: a regular file to every reader that matters
      return 'file';
    case '5':
      return 'dir';
    case '1':
      throw unsafe(what, name, 'is a hard link');
    case '2':
      throw unsafe(what, name, 'is a symbolic link');
    case '3':
      throw unsafe(what, name, 'is a character device');
    case '4':
      throw unsafe(what, name, 'is a block device');
    case '6':
      throw unsafe(what, name, 'is a FIFO');
    default:
      throw unsafe(what, name, `has the unsupported tar entry type "${typeflag.replace(/[^\x20-\x7e]/g, '?')}"`);
  }
}

/** Relative, inside the archive, unambiguous: no absolute paths, no `..`, no empty or `.` parts. */
function normaliseName(raw: string, type: TarEntryType, what: string): string {
  let n = raw;
  while (n.startsWith('./')) n = n.slice(2);
  if (n === '.' || n === '') {
    if (type === 'dir') return '';
    throw unsafe(what, raw, 'has an empty name');
  }
  if (type === 'dir' && n.endsWith('/')) n = n.slice(0, -1);
  if (n.startsWith('/')) throw unsafe(what, raw, 'has an absolute path');
  if (n.includes('\\')) throw unsafe(what, raw, 'contains a backslash');
  if (n.includes('\0')) throw unsafe(what, raw, 'contains a NUL byte');
  for (const part of n.split('/')) {
    if (part === '..') throw unsafe(what, raw, 'escapes the archive with ".."');
    if (part === '' || part === '.') throw unsafe(what, raw, 'has an empty or "." path component');
  }
  return n;
}

const IGNORED_PAX_KEYS = new Set(['mtime', 'atime', 'ctime', 'uid', 'gid', 'uname', 'gname', 'comment', 'charset', 'hdrcharset', 'linkpath', 'SCHILY.dev', 'SCHILY.ino', 'SCHILY.nlink']);
const IGNORED_PAX_PREFIXES = ['SCHILY.xattr.', 'LIBARCHIVE.xattr.'];

function checkPaxKeys(records: Map<string, string>, what: string, pos: number, global: boolean): void {
  for (const key of records.keys()) {
    if (!global && (key === 'path' || key === 'size')) continue;
    if (IGNORED_PAX_KEYS.has(key) || IGNORED_PAX_PREFIXES.some((p) => key.startsWith(p))) continue;
    throw new IntegrityError(
      `${what}: ${global ? 'global ' : ''}PAX header at offset ${pos} has the key "${key}", which airlock does not accept${global && (key === 'path' || key === 'size') ? ' in a global header' : ''}`,
      { code: 'TAR_UNSUPPORTED', hint: 'keys such as GNU.sparse.* change what the bytes mean; a bundle never needs them' },
    );
  }
}

function parsePaxRecords(body: Buffer, what: string, pos: number): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    if (body[i] === 0) break; // padding some writers leave inside the data
    const space = body.indexOf(0x20, i);
    const lenText = space < 0 ? '' : body.toString('latin1', i, space);
    const len = /^[0-9]{1,7}$/.test(lenText) ? Number(lenText) : NaN;
    if (!Number.isInteger(len) || len <= lenText.length + 1 || i + len > body.length || body[i + len - 1] !== 0x0a) {
      throw new IntegrityError(`${what}: malformed PAX record in the header at offset ${pos}`, { code: 'TAR_INVALID' });
    }
    const record = body.toString('utf8', space + 1, i + len - 1);
    const eq = record.indexOf('=');
    if (eq <= 0) throw new IntegrityError(`${what}: malformed PAX record in the header at offset ${pos}`, { code: 'TAR_INVALID' });
    out.set(record.slice(0, eq), record.slice(eq + 1));
    i += len;
  }
  return out;
}

function parseSize(header: Buffer): number | undefined {
  const first = header[124]!;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement in the remaining bits; negative sizes are invalid.
    if (first & 0x40) return undefined;
    let v = BigInt(first & 0x3f);
    for (let i = 125; i < 136; i++) v = (v << 8n) | BigInt(header[i]!);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
  }
  return parseOctal(header, 124, 12);
}

function parseOctal(b: Buffer, offset: number, length: number): number | undefined {
  const s = b.toString('latin1', offset, offset + length).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  const v = parseInt(s, 8);
  return Number.isSafeInteger(v) ? v : undefined;
}

function cString(b: Buffer, offset: number, length: number): string {
  const end = b.indexOf(0, offset);
  return b.toString('utf8', offset, end < 0 || end > offset + length ? offset + length : end);
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Positioned read of exactly `buf.length` bytes (short reads happen on some file systems). */
export async function readExactly(fh: PositionedReader, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new IntegrityError(`unexpected end of file at offset ${position + done}`, { code: 'TAR_TRUNCATED' });
    done += bytesRead;
  }
}

function compressionOf(b: Buffer): string {
  if (b[0] === 0x1f && b[1] === 0x8b) return '; it looks gzip-compressed: decompress it first (gunzip)';
  if (b.readUInt32LE(0) === 0xfd2fb528) return '; it looks zstd-compressed: decompress it first (zstd -d)';
  if (b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return '; it looks xz-compressed: decompress it first (xz -d)';
  return '';
}

function notTar(what: string, why: string): IntegrityError {
  return new IntegrityError(`${what} is not a tar archive: ${why}`, {
    code: 'TAR_INVALID',
    hint: 'pass the .tar file written by `airlock pack`',
  });
}

function truncated(what: string, thing: string, detail?: string): IntegrityError {
  return new IntegrityError(`${what}: truncated: ${thing} runs past the end of the file${detail ? ` (${detail})` : ''}`, {
    code: 'TAR_TRUNCATED',
    hint: 'the file was cut short (interrupted copy or full disk); copy it again',
  });
}

function unsafe(what: string, name: string, why: string): IntegrityError {
  return new IntegrityError(`${what}: entry "${name}" ${why}; bundles only hold plain files and directories`, {
    code: 'TAR_UNSAFE',
    hint: 'do not use this file: it was not written by airlock or was tampered with',
  });
}
