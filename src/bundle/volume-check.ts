// Checking a split bundle volume by volume: which volumes are there, whole and matching their
// checksums, which recovery volumes can be used, and whether they suffice to rebuild what is lost.
// verify reports it; repair acts on it.
//
// The checksum table is taken from wherever it survives: the tar's last entry (in the last volume)
// and every recovery volume's header. Each source votes for the volume set it describes, and the
// first volume's metadata (the bundle's inventory digest and layout) votes for the sets that match
// it; the set with most votes is the reference. So a first volume from another bundle, a last
// volume from another split, or recovery volumes of another bundle are each named for what they
// are instead of making everything else look wrong.
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { throwIfAborted } from '../core/errors.ts';
import { digestOf, type Digest } from '../core/digest.ts';
import { mapLimit } from '../util/limiter.ts';
import { INVENTORY_PATH, type VolumeLayout } from './format.ts';
import { hasherFor } from './hash-pool.ts';
import { readParityHeader, type ParityHeader } from './parity.ts';
import { entryTable, readFirstInfo, readMetadata } from './read.ts';
import { volumeSource, type VolumePart } from './source.ts';
import { scanTar } from './tar.ts';
import {
  checksumRanges,
  parityName,
  parseVolumeTable,
  sameLayout,
  tableLayout,
  trailerHeader,
  trailerPlace,
  volumeName,
  volumeRanges,
  volumeSetId,
  type BundleFiles,
  type TrailerPlace,
  type VolumeTable,
} from './volumes.ts';

export type VolumeState = 'ok' | 'missing' | 'truncated' | 'oversized' | 'damaged' | 'foreign' | 'misnamed' | 'unchecked' | 'stray';

export interface VolumeFileReport {
  /** The file's path (the expected one when it is missing). */
  file: string;
  kind: 'data' | 'parity' | 'stray';
  /** 1-based volume or recovery volume number. */
  index?: number;
  state: VolumeState;
  /** What is wrong, for every state but ok. */
  message?: string;
}

export interface VolumeSetReport {
  /** The name the volumes share (b.tar). */
  base: string;
  layout?: VolumeLayout;
  /** The file the checksum table was read from. */
  tableFrom?: string;
  /** The bundle's inventory digest (its identity). */
  bundle?: Digest;
  files: VolumeFileReport[];
  /** Data volumes lost or damaged. */
  lost: string[];
  /** Recovery volumes that can be used. */
  usableParity: string[];
  /** Recovery volumes missing or unusable (repair writes them again). */
  badParity: string[];
  /** Enough usable recovery volumes to rebuild every lost volume. */
  repairable: boolean;
  /** Every data volume is there with its size, so the tar can be read (bytes may still be wrong). */
  readable: boolean;
}

/** What repair needs beyond the report. */
export interface VolumeCheck {
  report: VolumeSetReport;
  table?: VolumeTable | undefined;
  place?: TrailerPlace | undefined;
  /** Data volume index → state, for 1…count. */
  data: Map<number, VolumeFileReport>;
  /** Usable recovery volumes by their row (1-based). */
  parity: Map<number, { path: string; header: ParityHeader }>;
  /** Recovery rows 1…N that need writing again. */
  parityToWrite: number[];
}

export interface CheckVolumesOptions {
  concurrency?: number;
  threads?: number | 'auto';
  signal?: AbortSignal | undefined;
  onProgress?: ((e: { done: number; total: number }) => void) | undefined;
}

type VolumeFiles = Extract<BundleFiles, { kind: 'volumes' }>;

interface Opened {
  path: string;
  fh: FileHandle;
  size: number;
}

type OpenedParity = Opened & { header?: ParityHeader; error?: string };

/** What the first volume says: the layout and the bundle's identity, or why it cannot. */
interface Head {
  layout?: VolumeLayout | undefined;
  bundle?: Digest | undefined;
  error?: string | undefined;
}

interface FoundTable {
  table: VolumeTable;
  from: string;
}

/** The volume set the checks hold the files against (what the vote chose, or only the first volume's layout). */
interface ReferenceSet {
  /** The elected table and where it was read. */
  elected?: FoundTable | undefined;
  table?: VolumeTable | undefined;
  layout?: VolumeLayout | undefined;
  setId?: string | undefined;
  place?: TrailerPlace | undefined;
  /** Each data volume's bytes in the tar; empty without a layout. */
  ranges: { start: number; size: number }[];
  parityCount: number;
}

interface Stray {
  path: string;
  fh?: FileHandle | undefined;
  size?: number | undefined;
  why: string;
}

interface ChecksumJob {
  key: string;
  parts: { fh: FileHandle; path: string; position: number; length: number }[];
}

/** The table's place depends on the bundle's digest only through its length: with the identity unknown, any sha256 places it. */
const UNKNOWN_BUNDLE: Digest = `sha256:${'0'.repeat(64)}`;

export async function checkVolumes(files: VolumeFiles, opts: CheckVolumesOptions = {}): Promise<VolumeCheck> {
  const base = files.base;
  const handles: FileHandle[] = [];
  try {
    const data = await openDataVolumes(files, handles);
    const parity = await openParityVolumes(files, handles);
    const head = await readFirstVolume(base, data);
    const { tables, trailerError } = await readVolumeTables(base, head, data, parity);
    const set = referenceSet(electTable(tables, head), head);
    const sized = checkDataSizes(files, set, data);
    const strays = await openStrays(files, set, data, handles);
    const hashes = await hashParts(checksumJobs(set, data, sized, strays, parity), opts);

    const whole = wholeVolumeChecksums(set);
    const dataReports = checkDataChecksums(sized, hashes, set, head, whole, base);
    const strayReports = strays.map((s): VolumeFileReport => ({ file: s.path, kind: 'stray', state: 'stray', message: `${s.why}${renamedHint(whole, base, hashes.get(`s${s.path}`))}` }));
    const parityCheck = checkParityVolumes(files, set, parity, hashes);
    const reports = [
      ...(set.layout ? [] : [unknownLayoutReport(base, data.get(1), head)]),
      ...dataReports.values(),
      ...strayReports,
      ...parityCheck.reports,
      ...strayParityReports(set, parity),
      ...(set.layout && !set.table ? [noTableReport(files, trailerError)] : []),
    ];
    const report = setReport(files, set, head, reports, dataReports, parityCheck);
    return { report, table: set.table, place: set.place, data: dataReports, parity: parityCheck.usable, parityToWrite: parityCheck.parityToWrite };
  } finally {
    await Promise.allSettled(handles.map((h) => h.close()));
  }
}

/** Opens a file for reading and keeps its handle in `handles` (closed at the end); undefined when it cannot be opened. */
async function openTracked(path: string, handles: FileHandle[]): Promise<Opened | undefined> {
  try {
    const fh = await open(path, 'r');
    handles.push(fh);
    return { path, fh, size: (await fh.stat()).size };
  } catch {
    return undefined;
  }
}

async function openDataVolumes(files: VolumeFiles, handles: FileHandle[]): Promise<Map<number, Opened>> {
  const data = new Map<number, Opened>();
  for (const [i, p] of files.data) {
    const o = await openTracked(p, handles);
    if (o) data.set(i, o);
  }
  return data;
}

/** The recovery volumes there, each with its header or why it cannot be read. */
async function openParityVolumes(files: VolumeFiles, handles: FileHandle[]): Promise<Map<number, OpenedParity>> {
  const parity = new Map<number, OpenedParity>();
  for (const [i, p] of files.parity) {
    const o = await openTracked(p, handles);
    if (!o) continue;
    try {
      parity.set(i, { ...o, header: await readParityHeader(o.fh, p) });
    } catch (e) {
      parity.set(i, { ...o, error: (e as Error).message });
    }
  }
  return parity;
}

/** The first volume's word: layout and bundle identity. */
async function readFirstVolume(base: string, data: ReadonlyMap<number, Opened>): Promise<Head> {
  const first = data.get(1);
  if (!first) return {};
  const head: Head = {};
  try {
    const info = await readFirstInfo(first.fh, first.size, first.path);
    if (!info.volumes) head.error = `${basename(first.path)} holds a whole bundle, not the first of several volumes`;
    else head.layout = info.volumes;
  } catch (e) {
    head.error = `${basename(first.path)}: ${(e as Error).message}`;
  }
  // The inventory may run into the next volume: if that one is missing, the identity is unknown, no one's fault.
  if (head.layout) head.bundle = await readInventoryDigest(sourceFor(base, head.layout, data), base).catch(() => undefined);
  return head;
}

/** Checksum tables, from the tar's last entry and from recovery volume headers. */
async function readVolumeTables(
  base: string,
  head: Head,
  data: ReadonlyMap<number, Opened>,
  parity: ReadonlyMap<number, OpenedParity>,
): Promise<{ tables: FoundTable[]; trailerError?: string | undefined }> {
  const tables: FoundTable[] = [];
  let trailerError: string | undefined;
  const fromTrailer = async (layout: VolumeLayout): Promise<void> => {
    const t = await readTrailerTable(base, layout, head.bundle, data);
    if ('error' in t) trailerError = t.error;
    else tables.push(t);
  };
  if (head.layout) await fromTrailer(head.layout);
  for (const p of parity.values()) if (p.header) tables.push({ table: p.header.table, from: p.path });
  if (!head.layout && tables.length > 0) await fromTrailer(tableLayout(tables[0]!.table));
  return { tables, trailerError };
}

/** The volume table where `layout` puts the tar's last entry. */
async function readTrailerTable(base: string, layout: VolumeLayout, bundle: Digest | undefined, data: ReadonlyMap<number, Opened>): Promise<FoundTable | { error: string }> {
  const place = trailerPlace(bundle ?? UNKNOWN_BUNDLE, layout);
  const src = sourceFor(base, layout, data);
  const where = basename(src.describe(place.offset, place.length));
  try {
    const header = Buffer.alloc(place.offset - place.header);
    const content = Buffer.alloc(place.length);
    await readFull(src, header, place.header);
    await readFull(src, content, place.offset);
    if (!header.equals(trailerHeader(place.length))) throw new Error('the volume table entry is not where the layout puts it');
    return { table: parseVolumeTable(content, `the volume table in ${where}`), from: src.describe(place.offset, place.length) };
  } catch (e) {
    return { error: `${where}: ${(e as Error).message}` };
  }
}

/** Votes: each table source for its set; the first volume for every set that matches it. The most voted wins. */
function electTable(tables: readonly FoundTable[], head: Head): FoundTable | undefined {
  const votes = new Map<string, FoundTable & { votes: number }>();
  for (const t of tables) {
    const id = volumeSetId(t.table);
    const v = votes.get(id) ?? { table: t.table, from: t.from, votes: 0 };
    v.votes += 1;
    votes.set(id, v);
  }
  for (const v of votes.values()) if (head.bundle && head.layout && v.table.bundle === head.bundle && sameLayout(tableLayout(v.table), head.layout)) v.votes += 1;
  return [...votes.values()].sort((a, b) => b.votes - a.votes)[0];
}

function referenceSet(elected: FoundTable | undefined, head: Head): ReferenceSet {
  const table = elected?.table;
  const layout = table ? tableLayout(table) : head.layout;
  return {
    elected,
    table,
    layout,
    setId: table ? volumeSetId(table) : undefined,
    place: layout ? trailerPlace(table?.bundle ?? head.bundle ?? UNKNOWN_BUNDLE, layout) : undefined,
    ranges: layout ? volumeRanges(layout) : [],
    parityCount: table?.parity ?? layout?.parity ?? 0,
  };
}

/** Each data volume of the set: missing, or of the wrong size, or to be hashed (ok until then; unchecked without a table). */
function checkDataSizes(files: VolumeFiles, set: ReferenceSet, data: ReadonlyMap<number, Opened>): Map<number, VolumeFileReport> {
  const reports = new Map<number, VolumeFileReport>();
  set.ranges.forEach((r, at) => {
    const i = at + 1;
    const path = files.data.get(i) ?? volumeName(files.base, i);
    const o = data.get(i);
    const rep = { file: path, kind: 'data', index: i } as const;
    if (!o) reports.set(i, { ...rep, state: 'missing', message: `${basename(path)} is missing` });
    else if (o.size < r.size) reports.set(i, { ...rep, state: 'truncated', message: `${basename(path)} is truncated: ${o.size} of ${r.size} bytes` });
    else if (o.size > r.size) reports.set(i, { ...rep, state: 'oversized', message: `${basename(path)} is ${o.size} bytes, ${r.size} expected` });
    else reports.set(i, { ...rep, state: set.table ? 'ok' : 'unchecked' });
  });
  return reports;
}

/** Files named like volumes of the bundle that are not, and data volumes beyond the layout's count. */
async function openStrays(files: VolumeFiles, set: ReferenceSet, data: ReadonlyMap<number, Opened>, handles: FileHandle[]): Promise<Stray[]> {
  const strays: Stray[] = [];
  for (const s of files.strays) {
    const o = await openTracked(s, handles);
    strays.push({ path: s, fh: o?.fh, size: o?.size, why: `${basename(s)} is not a volume name of ${basename(files.base)}` });
  }
  for (const [i, o] of data) if (i > set.ranges.length && set.layout) strays.push({ ...o, why: `${basename(o.path)} is not a volume of this bundle: it has ${set.layout.count}` });
  return strays;
}

/**
 * What to hash: every data volume of the right size (against the table), strays and recovery data
 * (against their headers).
 */
function checksumJobs(set: ReferenceSet, data: ReadonlyMap<number, Opened>, sized: ReadonlyMap<number, VolumeFileReport>, strays: readonly Stray[], parity: ReadonlyMap<number, OpenedParity>): ChecksumJob[] {
  const jobs: ChecksumJob[] = [];
  for (const [i, rep] of sized) {
    if (rep.state !== 'ok' || !set.layout || !set.place) continue;
    const o = data.get(i)!;
    jobs.push({ key: `d${i}`, parts: checksumRanges(set.layout, set.place, i - 1).map((x) => ({ fh: o.fh, path: rep.file, ...x })) });
  }
  for (const s of strays) if (s.fh && s.size !== undefined) jobs.push({ key: `s${s.path}`, parts: [{ fh: s.fh, path: s.path, position: 0, length: s.size }] });
  for (const [i, p] of parity) {
    if (p.header && set.setId && p.header.set === set.setId && p.size === p.header.dataOffset + p.header.shardSize) {
      jobs.push({ key: `p${i}`, parts: [{ fh: p.fh, path: p.path, position: p.header.dataOffset, length: p.header.shardSize }] });
    }
  }
  return jobs;
}

/** sha256 → volume number, for the volumes whose checksum covers the whole file (to spot renamed or swapped ones). */
function wholeVolumeChecksums(set: ReferenceSet): Map<string, number> {
  const whole = new Map<string, number>();
  const { table, place, layout } = set;
  if (!table || !place || !layout) return whole;
  table.volumes.forEach((v, i) => {
    const full = checksumRanges(layout, place, i);
    if (full.length === 1 && full[0]!.length === v.size) whole.set(v.sha256, i + 1);
  });
  return whole;
}

function renamedHint(whole: ReadonlyMap<string, number>, base: string, hex: string | undefined, self?: number): string {
  const j = hex === undefined ? undefined : whole.get(hex);
  return j !== undefined && j !== self ? `: it holds the bytes of volume ${j} (${basename(volumeName(base, j))}), renamed or swapped?` : '';
}

/**
 * Data volumes against the table: damaged, or from another bundle (renamed? swapped?); and the
 * first volume's metadata disagreeing with the table it outvoted.
 */
function checkDataChecksums(
  sized: ReadonlyMap<number, VolumeFileReport>,
  hashes: ReadonlyMap<string, string>,
  set: ReferenceSet,
  head: Head,
  whole: ReadonlyMap<string, number>,
  base: string,
): Map<number, VolumeFileReport> {
  const out = new Map<number, VolumeFileReport>();
  for (const [i, rep] of sized) {
    const hex = hashes.get(`d${i}`);
    const table = set.table;
    if (!table || rep.state !== 'ok' || hex === table.volumes[i - 1]!.sha256) out.set(i, rep);
    else if (i === 1 && head.bundle && head.bundle !== table.bundle) {
      out.set(i, { ...rep, state: 'foreign', message: `${basename(rep.file)} belongs to another bundle: its inventory is ${head.bundle}, the other volumes are of ${table.bundle}` });
    } else out.set(i, { ...rep, state: 'damaged', message: `${basename(rep.file)} is damaged${renamedHint(whole, base, hex, i) || ' or from another bundle: its sha256 does not match the volume table'}` });
  }
  const first = out.get(1);
  if (first && first.state === 'ok' && head.error) out.set(1, { ...first, state: 'damaged', message: head.error });
  return out;
}

/** Each recovery volume of the set: usable, or why not (those are written again by repair). */
function checkParityVolumes(
  files: VolumeFiles,
  set: ReferenceSet,
  parity: ReadonlyMap<number, OpenedParity>,
  hashes: ReadonlyMap<string, string>,
): { reports: VolumeFileReport[]; usable: Map<number, { path: string; header: ParityHeader }>; parityToWrite: number[] } {
  const reports: VolumeFileReport[] = [];
  const usable = new Map<number, { path: string; header: ParityHeader }>();
  const parityToWrite: number[] = [];
  for (let p = 1; p <= set.parityCount; p++) {
    const path = files.parity.get(p) ?? parityName(files.base, p);
    const o = parity.get(p);
    const rep = parityReport(files.base, path, p, o, set, hashes);
    if (rep.state === 'ok') usable.set(p, { path, header: o!.header! });
    else parityToWrite.push(p);
    reports.push(rep);
  }
  return { reports, usable, parityToWrite };
}

function parityReport(base: string, path: string, p: number, o: OpenedParity | undefined, set: ReferenceSet, hashes: ReadonlyMap<string, string>): VolumeFileReport {
  const rep: VolumeFileReport = { file: path, kind: 'parity', index: p, state: 'ok' };
  const { table, setId } = set;
  if (!o) return { ...rep, state: 'missing', message: `${basename(path)} is missing` };
  if (!o.header) return { ...rep, state: 'damaged', message: o.error ?? `${basename(path)} is damaged` };
  if (setId && o.header.set !== setId) {
    return { ...rep, state: 'foreign', message: `${basename(path)} is a recovery volume of another bundle or another split (its volume set is ${o.header.set}${o.header.table.bundle !== table?.bundle ? `, inventory ${o.header.table.bundle}` : ''}; these volumes are ${setId})` };
  }
  if (o.header.index !== p) return { ...rep, state: 'misnamed', message: `${basename(path)} holds recovery volume ${o.header.index} (${basename(parityName(base, o.header.index))}): renamed?` };
  const want = o.header.dataOffset + o.header.shardSize;
  if (o.size !== want) return { ...rep, state: o.size < want ? 'truncated' : 'oversized', message: `${basename(path)} is ${o.size} bytes, ${want} expected` };
  if (!table) return { ...rep, state: 'unchecked' };
  if (hashes.get(`p${p}`) !== o.header.data) return { ...rep, state: 'damaged', message: `${basename(path)} is damaged: its recovery data does not match its header's checksum` };
  return rep;
}

/** Recovery volumes beyond the set's count. */
function strayParityReports(set: ReferenceSet, parity: ReadonlyMap<number, OpenedParity>): VolumeFileReport[] {
  const reports: VolumeFileReport[] = [];
  for (const [i, p] of parity) {
    if (i <= set.parityCount) continue;
    reports.push({ file: p.path, kind: 'stray', state: 'stray', message: `${basename(p.path)} is not one of this bundle's ${set.parityCount} recovery volumes${p.header && set.setId && p.header.set !== set.setId ? ' (it belongs to another bundle or split)' : ''}` });
  }
  return reports;
}

/** No layout: the first volume is missing or unreadable, and no recovery volume says what the set is made of. */
function unknownLayoutReport(base: string, first: Opened | undefined, head: Head): VolumeFileReport {
  return {
    file: volumeName(base, 1),
    kind: 'data',
    index: 1,
    state: first ? 'damaged' : 'missing',
    message: first ? (head.error ?? `${basename(first.path)} cannot be read`) : `${basename(volumeName(base, 1))} is missing and no recovery volume says what the set is made of`,
  };
}

function noTableReport(files: VolumeFiles, trailerError: string | undefined): VolumeFileReport {
  return { file: files.base, kind: 'data', state: 'unchecked', message: `the volume checksums could not be read (${trailerError ?? 'no volume table'}${files.parity.size ? '' : '; no recovery volume holds a copy'}): damage is located by blob instead` };
}

function setReport(
  files: VolumeFiles,
  set: ReferenceSet,
  head: Head,
  reports: VolumeFileReport[],
  dataReports: ReadonlyMap<number, VolumeFileReport>,
  parity: { usable: ReadonlyMap<number, { path: string }>; parityToWrite: readonly number[] },
): VolumeSetReport {
  const lost = [...dataReports.values()].filter((r) => r.state !== 'ok' && r.state !== 'unchecked').map((r) => r.file);
  const readable = set.layout !== undefined && [...dataReports.values()].every((r) => r.state !== 'missing' && r.state !== 'truncated' && r.state !== 'oversized');
  const bundle = set.table?.bundle ?? head.bundle;
  return {
    base: files.base,
    ...(set.layout ? { layout: set.layout } : {}),
    ...(set.elected ? { tableFrom: set.elected.from } : {}),
    ...(bundle ? { bundle } : {}),
    files: reports,
    lost,
    usableParity: [...parity.usable.values()].map((u) => u.path),
    badParity: parity.parityToWrite.map((p) => files.parity.get(p) ?? parityName(files.base, p)),
    repairable: set.table !== undefined && lost.length <= parity.usable.size,
    readable,
  };
}

/** One line per problem of a volume set, and a last one saying whether recovery volumes suffice. */
export function describeVolumeProblems(r: VolumeSetReport): { file: string; message: string }[] {
  const out = r.files.filter((f) => f.state !== 'ok' && f.message !== undefined).map((f) => ({ file: f.file, message: f.message! }));
  if (r.lost.length > 0) {
    const names = r.lost.map((f) => basename(f)).join(', ');
    const n = r.usableParity.length;
    out.push({
      file: r.base,
      message:
        `${r.lost.length} volume${r.lost.length === 1 ? '' : 's'} lost (${names}); ${n} usable recovery volume${n === 1 ? '' : 's'}: ` +
        (r.repairable ? `enough, \`airlock repair ${r.base}\` rebuilds ${r.lost.length === 1 ? 'it' : 'them'}` : n === 0 ? 'copy the lost volumes again from the source' : `not enough to rebuild ${r.lost.length}`),
    });
  }
  return out;
}

/** The tar over whatever volumes are there; a missing or short one fails only where it is read. */
function sourceFor(base: string, layout: VolumeLayout, data: ReadonlyMap<number, Opened>) {
  const parts: VolumePart[] = volumeRanges(layout).map((r, i) => {
    const o = data.get(i + 1);
    return { path: o?.path ?? volumeName(base, i + 1), fh: o?.fh, start: r.start, size: r.size };
  });
  return volumeSource(parts);
}

async function readFull(src: ReturnType<typeof volumeSource>, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length; ) {
    const { bytesRead } = await src.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error(`cut short at offset ${position + done}`);
    done += bytesRead;
  }
}

async function readInventoryDigest(src: ReturnType<typeof volumeSource>, base: string): Promise<Digest> {
  const wanted = new Set(['airlock/bundle.json', INVENTORY_PATH]);
  const { entries } = await scanTar(src, src.size, base, { until: (e) => wanted.delete(e.name) && wanted.size === 0 });
  const { inventoryBytes } = await readMetadata(src, base, entryTable(entries), false);
  return digestOf(inventoryBytes);
}

/** sha256 (hex) of each job's parts, in parallel (worker threads for big sets). */
async function hashParts(jobs: readonly ChecksumJob[], opts: CheckVolumesOptions): Promise<Map<string, string>> {
  const parts: VolumePart[] = [];
  const ranges: { key: string; offset: number; size: number }[] = [];
  let at = 0;
  for (const j of jobs) {
    const start = at;
    for (const p of j.parts) {
      parts.push({ path: p.path, fh: p.fh, start: at, size: p.length, fileOffset: p.position });
      at += p.length;
    }
    ranges.push({ key: j.key, offset: start, size: at - start });
  }
  const out = new Map<string, string>();
  if (ranges.length === 0) return out;
  const { hasher, limit } = hasherFor(volumeSource(parts), at, opts);
  let done = 0;
  opts.onProgress?.({ done, total: at });
  try {
    await mapLimit(
      [...ranges].sort((a, b) => b.size - a.size),
      limit,
      async (r) => {
        throwIfAborted(opts.signal);
        let result: string;
        try {
          result = await hasher.hash({ offset: r.offset, size: r.size, algorithm: 'sha256' }, (n) => {
            done += n;
            opts.onProgress?.({ done, total: at });
          });
        } catch (e) {
          throwIfAborted(opts.signal);
          result = `error:${(e as Error).message}`;
        }
        out.set(r.key, result.startsWith('sha256:') ? result.slice(7) : result);
      },
      opts.signal,
    );
  } finally {
    await hasher.close();
  }
  return out;
}
