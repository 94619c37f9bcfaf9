// Comparing a bundle's tar with what the writer lays down for it (entries.ts): the checks verify
// runs over the whole tar and inspect over the entries it reads. Each returns problems by entry;
// the caller decides whether they are a report (verify) or a refusal (inspect).
import { digestOf } from '../core/digest.ts';
import { canonicalJson, compareStrings, INDEX_PATH, LOCK_PATH, OCI_LAYOUT_PATH, BUNDLE_INFO_PATH, type BundleInfo, type Inventory } from './format.ts';
import { bundleInfo, type Entry } from './entries.ts';
import { PARITY_MAGIC } from './parity.ts';
import type { PositionedReader } from './source.ts';
import { BLOCK, END_OF_ARCHIVE, encodeHeader, paddingFor, type TarEntry } from './tar.ts';
import { TOOL_NAME } from '../version.ts';

export interface EntryProblem {
  entry: string;
  message: string;
}

/** The tool version airlock records: its package version (semver). Nothing pins it, so only its form is checked. */
const TOOL_VERSION_FORM = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/** bundle.json as the writer fills it for this inventory: its tool version is the one thing taken from it. */
export function expectedBundleInfo(info: BundleInfo, inv: Inventory): BundleInfo {
  const base = bundleInfo({ toolVersion: info.tool.version, name: inv.lock?.name ?? info.name, version: inv.lock?.version ?? info.version, tools: (inv.tools ?? []).length > 0, files: (inv.files ?? []).length > 0 });
  return info.volumes ? { ...base, volumes: info.volumes } : base;
}

/** An entry's name as the tar reader reports it (no trailing `/`). */
export function entryName(entry: Entry): string {
  return entry.header.name.replace(/\/$/, '');
}

/** What bundle.json says that the writer would not: another tool, another bundle than the inventory's, a version that is none. */
export function bundleInfoProblems(info: BundleInfo, inv: Inventory): EntryProblem[] {
  const out: EntryProblem[] = [];
  if (inv.lock && (inv.lock.name !== info.name || inv.lock.version !== info.version)) {
    out.push({ entry: BUNDLE_INFO_PATH, message: `names the bundle ${info.name} ${info.version}; the inventory says ${inv.lock.name} ${inv.lock.version}` });
  }
  if (info.tool.name !== TOOL_NAME) out.push({ entry: BUNDLE_INFO_PATH, message: `tool.name is "${info.tool.name}", not "${TOOL_NAME}"` });
  if (!TOOL_VERSION_FORM.test(info.tool.version)) out.push({ entry: BUNDLE_INFO_PATH, message: `tool.version "${info.tool.version}" is not a version airlock writes` });
  return out;
}

/** The lock and index.json against the digests and sizes the inventory pins (the writer always pins both). */
export function pinProblems(inv: Inventory, lock: Buffer | undefined, index: Buffer | undefined): EntryProblem[] {
  const out: EntryProblem[] = [];
  for (const [entry, pin, bytes, what] of [[LOCK_PATH, inv.lock, lock, 'the lock'], [INDEX_PATH, inv.index, index, 'it']] as const) {
    if (bytes === undefined) continue;
    if (!pin) out.push({ entry, message: `not pinned: the inventory has no digest for it, airlock always writes one` });
    else if (digestOf(bytes) !== pin.digest || bytes.length !== pin.size) {
      out.push({ entry, message: `changed: the inventory pins ${what} as ${pin.digest} (${pin.size} bytes), it is ${digestOf(bytes)} (${bytes.length} bytes)` });
    }
  }
  return out;
}

/** The canonical form of a JSON document, or the bytes themselves when they are not JSON (contentProblem names that). */
export function canonicalForm(bytes: Buffer, pretty: boolean): Buffer {
  try {
    return Buffer.from(canonicalJson(JSON.parse(bytes.toString('utf8')), pretty));
  } catch {
    return bytes;
  }
}

/** Why a metadata entry is not the bytes the writer derives (`expected`, a JSON document). */
export function contentProblem(name: string, got: Buffer, expected: Buffer): string {
  let doc: unknown;
  try {
    doc = JSON.parse(got.toString('utf8'));
  } catch {
    return 'not valid JSON';
  }
  const compact = name === OCI_LAYOUT_PATH || name === INDEX_PATH;
  if (canonicalJson(doc, !compact) !== got.toString('utf8')) return `not in the canonical form airlock writes (sorted keys, ${compact ? 'no spacing' : 'fixed spacing'}): changed after packing`;
  const where = differences(doc, JSON.parse(expected.toString('utf8')) as unknown);
  return `not as airlock writes it for this bundle: ${where.length > 0 ? where.join('; ') : 'other bytes'}`;
}

/** Where two JSON values differ, as a reader can follow: at most a few places. */
export function differences(got: unknown, want: unknown, path = '', out: string[] = []): string[] {
  if (out.length >= 3) return out;
  const show = (v: unknown): string => {
    const t = JSON.stringify(v) ?? String(v);
    return t.length > 80 ? `${t.slice(0, 77)}...` : t;
  };
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(got) && isObject(want)) {
    for (const k of [...new Set([...Object.keys(got), ...Object.keys(want)])].sort(compareStrings)) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in want)) out.push(`${p} is a field airlock does not write`);
      else if (!(k in got)) out.push(`${p} is missing`);
      else differences(got[k], want[k], p, out);
      if (out.length >= 3) break;
    }
  } else if (Array.isArray(got) && Array.isArray(want) && got.length === want.length) {
    for (let i = 0; i < got.length && out.length < 3; i++) differences(got[i], want[i], `${path}[${i}]`, out);
  } else if (JSON.stringify(got) !== JSON.stringify(want)) {
    const at = path || 'the document';
    out.push(Array.isArray(got) && Array.isArray(want) ? `${at} has ${got.length} items, airlock writes ${want.length}` : `${at} is ${show(got)}, airlock writes ${show(want)}`);
  }
  return out;
}

/**
 * Each metadata entry's bytes (`actual`, by name; undefined when absent) against the item the
 * writer derives for it; an entry already `named` is not named again.
 */
export function contentProblems(items: readonly Entry[], actual: ReadonlyMap<string, Buffer | undefined>, named: (entry: string) => boolean): EntryProblem[] {
  const out: EntryProblem[] = [];
  for (const item of items) {
    const name = entryName(item);
    const got = actual.get(name);
    if (Buffer.isBuffer(item.bytes) && got !== undefined && !got.equals(item.bytes) && !named(name)) out.push({ entry: name, message: contentProblem(name, got, item.bytes) });
  }
  return out;
}

export interface FramingOptions {
  /** `entries` is the whole tar: report expected entries it lacks and check the end of the archive. Else a prefix. */
  complete: boolean;
  /** An entry a more specific check already named: not named again as missing or unexpected. */
  named?: ((entry: string) => boolean) | undefined;
  /** Bytes after the end may be recovery volumes (a split bundle joined back with `cat`). */
  joinedParity?: boolean | undefined;
}

/**
 * Every entry where the writer puts it: `items`' entries in order and no others, each header as
 * encoded, zero padding, nothing between entries; for the whole tar, the two zero end blocks and
 * nothing after them.
 */
export async function framingProblems(src: PositionedReader & { size: number }, entries: readonly TarEntry[], items: readonly Entry[], opts: FramingOptions): Promise<EntryProblem[]> {
  const out: EntryProblem[] = [];
  const named = (entry: string): boolean => opts.named?.(entry) === true || out.some((p) => p.entry === entry);
  const order = new Map(items.map((it, i) => [entryName(it), i]));
  const seen = new Set<string>();
  let pos = 0;
  let furthest = -1;
  let previous = '';
  for (const e of entries) {
    seen.add(e.name);
    const i = order.get(e.name);
    if (i === undefined) {
      if (!named(e.name)) out.push({ entry: e.name, message: `unexpected ${e.type === 'dir' ? 'directory' : 'entry'}: airlock does not write it in this bundle` });
    } else {
      const want = items[i]!.header.type;
      if (want !== e.type) out.push({ entry: e.name, message: `a ${e.type === 'dir' ? 'directory' : 'file'}; airlock writes a ${want === 'dir' ? 'directory' : 'file'} there` });
      if (i < furthest) out.push({ entry: e.name, message: `out of the order airlock writes: it comes ${previous ? `after ${previous}` : 'first'}` });
      // A prefix holds every entry up to its last one: what is skipped is not further on.
      else if (!opts.complete) for (let k = furthest + 1; k < i; k++) if (!named(entryName(items[k]!))) out.push({ entry: entryName(items[k]!), message: `missing: airlock writes it before ${e.name}` });
      furthest = Math.max(furthest, i);
    }
    if (e.headerOffset !== pos) out.push({ entry: e.name, message: `${e.headerOffset - pos} bytes before its header that airlock does not write` });
    const expected = encodeHeader({ name: e.name, type: e.type, size: e.size, executable: i !== undefined && items[i]!.header.executable === true });
    if (!(await readUpTo(src, e.headerOffset, e.offset - e.headerOffset)).equals(expected)) out.push({ entry: e.name, message: 'its tar header is not as airlock writes it (changed bytes, or not written by airlock)' });
    const pad = e.type === 'file' ? paddingFor(e.size) : 0;
    if (pad > 0 && !isZero(await readUpTo(src, e.offset + e.size, pad))) out.push({ entry: e.name, message: 'the padding after its content is not zero' });
    pos = e.offset + e.size + pad;
    previous = e.name;
  }
  if (!opts.complete) return out;
  for (const name of order.keys()) if (!seen.has(name) && !named(name)) out.push({ entry: name, message: 'missing: airlock writes it in this bundle' });
  out.push(...(await endProblems(src, pos, opts.joinedParity === true)));
  return out;
}

/** The two zero blocks at `end` (where the last entry ends), and nothing after them but, for a joined split bundle, its recovery volumes. */
export async function endProblems(src: PositionedReader & { size: number }, end: number, joinedParity: boolean): Promise<EntryProblem[]> {
  const out: EntryProblem[] = [];
  const blocks = await readUpTo(src, end, END_OF_ARCHIVE.length);
  if (blocks.length !== END_OF_ARCHIVE.length || !isZero(blocks)) out.push({ entry: 'end of archive', message: 'the two zero blocks that end the archive are changed or missing' });
  const after = end + END_OF_ARCHIVE.length;
  if (src.size > after) {
    const tail = await readUpTo(src, after, Math.min(BLOCK, src.size - after));
    if (!(joinedParity && tail.subarray(0, PARITY_MAGIC.length).equals(Buffer.from(PARITY_MAGIC)))) out.push({ entry: 'end of archive', message: `${src.size - after} bytes follow the end of the archive` });
  }
  return out;
}

/** Up to `length` bytes from `position`: fewer where the file ends (the caller judges a short read). */
export async function readUpTo(src: PositionedReader, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await src.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
