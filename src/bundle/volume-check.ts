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
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { throwIfAborted } from '../core/errors.ts';
import { digestOf, type Digest } from '../core/digest.ts';
import { mapLimit } from '../util/limiter.ts';
import { INVENTORY_PATH, type VolumeLayout } from './format.ts';
import { mainThreadHasher, workerHasher } from './hash-pool.ts';
import { readParityHeader, type ParityHeader } from './parity.ts';
import { entryTable, readFirstInfo, readMetadata } from './read.ts';
import { volumeSource, type VolumePart } from './source.ts';
import { scanTar } from './tar.ts';
import {
  checksumRanges,
  parityName,
  parseVolumeTable,
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

const AUTO_THREADS_MIN_BYTES = 64 * 1024 * 1024;

interface Opened {
  path: string;
  fh: FileHandle;
  size: number;
}

export async function checkVolumes(files: Extract<BundleFiles, { kind: 'volumes' }>, opts: CheckVolumesOptions = {}): Promise<VolumeCheck> {
  const base = files.base;
  const handles: FileHandle[] = [];
  const openOne = async (path: string): Promise<Opened | undefined> => {
    try {
      const fh = await open(path, 'r');
      handles.push(fh);
      return { path, fh, size: (await fh.stat()).size };
    } catch {
      return undefined;
    }
  };
  try {
    const data = new Map<number, Opened>();
    for (const [i, p] of files.data) {
      const o = await openOne(p);
      if (o) data.set(i, o);
    }
    const parity = new Map<number, Opened & { header?: ParityHeader; error?: string }>();
    for (const [i, p] of files.parity) {
      const o = await openOne(p);
      if (!o) continue;
      try {
        parity.set(i, { ...o, header: await readParityHeader(o.fh, p) });
      } catch (e) {
        parity.set(i, { ...o, error: (e as Error).message });
      }
    }

    // The first volume's word: layout and bundle identity.
    let headLayout: VolumeLayout | undefined;
    let headBundle: Digest | undefined;
    let headError: string | undefined;
    const first = data.get(1);
    if (first) {
      try {
        const info = await readFirstInfo(first.fh, first.size, first.path);
        if (!info.volumes) headError = `${basename(first.path)} holds a whole bundle, not the first of several volumes`;
        else headLayout = info.volumes;
      } catch (e) {
        headError = `${basename(first.path)}: ${(e as Error).message}`;
      }
      // The inventory may run into the next volume: if that one is missing, the identity is unknown, no one's fault.
      if (headLayout) headBundle = await readInventoryDigest(sourceFor(base, headLayout, data), base).catch(() => undefined);
    }

    // Tables, from the tar's last entry and from recovery volume headers.
    const tables: { table: VolumeTable; from: string; weight: number }[] = [];
    let trailerError: string | undefined;
    const readTrailer = async (layout: VolumeLayout): Promise<void> => {
      const place = trailerPlace(headBundle ?? `sha256:${'0'.repeat(64)}`, layout);
      const src = sourceFor(base, layout, data);
      const where = basename(src.describe(place.offset, place.length));
      try {
        const header = Buffer.alloc(place.offset - place.header);
        const content = Buffer.alloc(place.length);
        await readFull(src, header, place.header);
        await readFull(src, content, place.offset);
        if (!header.equals(trailerHeader(place.length))) throw new Error('the volume table entry is not where the layout puts it');
        tables.push({ table: parseVolumeTable(content, `the volume table in ${where}`), from: src.describe(place.offset, place.length), weight: 1 });
      } catch (e) {
        trailerError = `${where}: ${(e as Error).message}`;
      }
    };
    if (headLayout) await readTrailer(headLayout);
    for (const p of parity.values()) if (p.header) tables.push({ table: p.header.table, from: p.path, weight: 1 });
    if (!headLayout && tables.length > 0) await readTrailer(tableLayout(tables[0]!.table));

    // Votes: each table source for its set; the first volume for every set that matches it.
    const votes = new Map<string, { table: VolumeTable; from: string; votes: number }>();
    for (const t of tables) {
      const id = volumeSetId(t.table);
      const v = votes.get(id) ?? { table: t.table, from: t.from, votes: 0 };
      v.votes += t.weight;
      votes.set(id, v);
    }
    for (const v of votes.values()) if (headBundle && headLayout && v.table.bundle === headBundle && sameLayout(tableLayout(v.table), headLayout)) v.votes += 1;
    const ref = [...votes.values()].sort((a, b) => b.votes - a.votes)[0];
    const table = ref?.table;
    const layout = table ? tableLayout(table) : headLayout;
    const setId = table ? volumeSetId(table) : undefined;
    const place = layout ? trailerPlace(table?.bundle ?? headBundle ?? `sha256:${'0'.repeat(64)}`, layout) : undefined;

    const reports: VolumeFileReport[] = [];
    const dataReports = new Map<number, VolumeFileReport>();
    const ranges = layout ? volumeRanges(layout) : [];
    // What to hash: every data volume of the right size (against the table), strays and
    // recovery data (against their headers).
    const jobs: { key: string; parts: { fh: FileHandle; path: string; position: number; length: number }[] }[] = [];
    for (let i = 1; i <= ranges.length; i++) {
      const r = ranges[i - 1]!;
      const path = files.data.get(i) ?? volumeName(base, i);
      const o = data.get(i);
      let rep: VolumeFileReport;
      if (!o) rep = { file: path, kind: 'data', index: i, state: 'missing', message: `${basename(path)} is missing` };
      else if (o.size < r.size) rep = { file: path, kind: 'data', index: i, state: 'truncated', message: `${basename(path)} is truncated: ${o.size} of ${r.size} bytes` };
      else if (o.size > r.size) rep = { file: path, kind: 'data', index: i, state: 'oversized', message: `${basename(path)} is ${o.size} bytes, ${r.size} expected` };
      else {
        rep = { file: path, kind: 'data', index: i, state: table ? 'ok' : 'unchecked' };
        if (table && place) jobs.push({ key: `d${i}`, parts: checksumRanges(layout!, place, i - 1).map((x) => ({ fh: o.fh, path, ...x })) });
      }
      dataReports.set(i, rep);
      reports.push(rep);
    }
    const strays: { path: string; fh?: FileHandle; size?: number; why: string }[] = [];
    for (const s of files.strays) {
      const o = await openOne(s);
      strays.push({ path: s, fh: o?.fh, size: o?.size, why: `${basename(s)} is not a volume name of ${basename(base)}` });
    }
    for (const [i, o] of data) if (i > ranges.length && layout) strays.push({ ...o, why: `${basename(o.path)} is not a volume of this bundle: it has ${layout.count}` });
    for (const s of strays) if (s.fh && s.size !== undefined) jobs.push({ key: `s${s.path}`, parts: [{ fh: s.fh, path: s.path, position: 0, length: s.size }] });
    const parityCount = table?.parity ?? layout?.parity ?? 0;
    for (const [i, p] of parity) {
      if (p.header && setId && p.header.set === setId && p.size === p.header.dataOffset + p.header.shardSize) {
        jobs.push({ key: `p${i}`, parts: [{ fh: p.fh, path: p.path, position: p.header.dataOffset, length: p.header.shardSize }] });
      }
    }
    const hashes = await hashParts(jobs, opts);

    // Data volumes against the table; damaged ones and strays against every volume (renamed? swapped?).
    const whole = new Map<string, number>();
    if (table && place && layout) {
      table.volumes.forEach((v, i) => {
        const full = checksumRanges(layout, place, i);
        if (full.length === 1 && full[0]!.length === v.size) whole.set(v.sha256, i + 1);
      });
    }
    const sameAs = (hex: string | undefined, self?: number): string => {
      const j = hex === undefined ? undefined : whole.get(hex);
      return j !== undefined && j !== self ? `: it holds the bytes of volume ${j} (${basename(volumeName(base, j))}), renamed or swapped?` : '';
    };
    if (table) {
      for (const [i, rep] of dataReports) {
        if (rep.state !== 'ok') continue;
        const hex = hashes.get(`d${i}`);
        if (hex === table.volumes[i - 1]!.sha256) continue;
        rep.state = 'damaged';
        const other = sameAs(hex, i);
        if (i === 1 && headBundle && headBundle !== table.bundle) {
          rep.state = 'foreign';
          rep.message = `${basename(rep.file)} belongs to another bundle: its inventory is ${headBundle}, the other volumes are of ${table.bundle}`;
        } else rep.message = `${basename(rep.file)} is damaged${other || ' or from another bundle: its sha256 does not match the volume table'}`;
      }
    }
    // The first volume's metadata disagreeing with the table it outvoted.
    const firstRep = dataReports.get(1);
    if (firstRep && firstRep.state === 'ok' && headError) {
      firstRep.state = 'damaged';
      firstRep.message = headError;
    }
    for (const s of strays) {
      const rep: VolumeFileReport = { file: s.path, kind: 'stray', state: 'stray', message: `${s.why}${sameAs(hashes.get(`s${s.path}`))}` };
      reports.push(rep);
    }

    const usable = new Map<number, { path: string; header: ParityHeader }>();
    const parityToWrite: number[] = [];
    for (let p = 1; p <= parityCount; p++) {
      const path = files.parity.get(p) ?? parityName(base, p);
      const o = parity.get(p);
      let rep: VolumeFileReport = { file: path, kind: 'parity', index: p, state: 'ok' };
      if (!o) rep = { ...rep, state: 'missing', message: `${basename(path)} is missing` };
      else if (!o.header) rep = { ...rep, state: 'damaged', message: o.error ?? `${basename(path)} is damaged` };
      else if (setId && o.header.set !== setId) {
        rep = { ...rep, state: 'foreign', message: `${basename(path)} is a recovery volume of another bundle or another split (its volume set is ${o.header.set}${o.header.table.bundle !== table?.bundle ? `, inventory ${o.header.table.bundle}` : ''}; these volumes are ${setId})` };
      } else if (o.header.index !== p) rep = { ...rep, state: 'misnamed', message: `${basename(path)} holds recovery volume ${o.header.index} (${basename(parityName(base, o.header.index))}): renamed?` };
      else if (o.size !== o.header.dataOffset + o.header.shardSize) {
        const want = o.header.dataOffset + o.header.shardSize;
        rep = { ...rep, state: o.size < want ? 'truncated' : 'oversized', message: `${basename(path)} is ${o.size} bytes, ${want} expected` };
      } else if (!table) rep = { ...rep, state: 'unchecked' };
      else if (hashes.get(`p${p}`) !== o.header.data) rep = { ...rep, state: 'damaged', message: `${basename(path)} is damaged: its recovery data does not match its header's checksum` };
      if (rep.state === 'ok') usable.set(p, { path, header: o!.header! });
      else parityToWrite.push(p);
      reports.push(rep);
    }
    for (const [i, p] of parity) {
      if (i <= parityCount) continue;
      reports.push({ file: p.path, kind: 'stray', state: 'stray', message: `${basename(p.path)} is not one of this bundle's ${parityCount} recovery volumes${p.header && setId && p.header.set !== setId ? ' (it belongs to another bundle or split)' : ''}` });
    }
    if (!layout) {
      reports.unshift({
        file: volumeName(base, 1),
        kind: 'data',
        index: 1,
        state: first ? 'damaged' : 'missing',
        message: first ? (headError ?? `${basename(first.path)} cannot be read`) : `${basename(volumeName(base, 1))} is missing and no recovery volume says what the set is made of`,
      });
    } else if (!table) {
      reports.push({ file: base, kind: 'data', state: 'unchecked', message: `the volume checksums could not be read (${trailerError ?? 'no volume table'}${files.parity.size ? '' : '; no recovery volume holds a copy'}): damage is located by blob instead` });
    }

    const lost = [...dataReports.values()].filter((r) => r.state !== 'ok' && r.state !== 'unchecked').map((r) => r.file);
    const readable = layout !== undefined && [...dataReports.values()].every((r) => r.state !== 'missing' && r.state !== 'truncated' && r.state !== 'oversized');
    const report: VolumeSetReport = {
      base,
      ...(layout ? { layout } : {}),
      ...(ref ? { tableFrom: ref.from } : {}),
      ...((table?.bundle ?? headBundle) ? { bundle: (table?.bundle ?? headBundle)! } : {}),
      files: reports,
      lost,
      usableParity: [...usable.values()].map((u) => u.path),
      badParity: parityToWrite.map((p) => files.parity.get(p) ?? parityName(base, p)),
      repairable: table !== undefined && lost.length <= usable.size,
      readable,
    };
    return { report, table, place, data: dataReports, parity: usable, parityToWrite };
  } finally {
    await Promise.allSettled(handles.map((h) => h.close()));
  }
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

function sameLayout(a: VolumeLayout, b: VolumeLayout): boolean {
  return a.size === b.size && a.count === b.count && a.totalSize === b.totalSize && a.parity === b.parity;
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
async function hashParts(
  jobs: { key: string; parts: { fh: FileHandle; path: string; position: number; length: number }[] }[],
  opts: CheckVolumesOptions,
): Promise<Map<string, string>> {
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
  const src = volumeSource(parts);
  const cores = availableParallelism();
  const concurrency = Math.max(1, opts.concurrency ?? cores);
  const threads = opts.threads === undefined || opts.threads === 'auto' ? (at >= AUTO_THREADS_MIN_BYTES && cores > 1 ? Math.min(cores, concurrency) : 0) : Math.max(0, Math.floor(opts.threads));
  const hasher = threads > 0 ? workerHasher(src, threads, opts.signal) : mainThreadHasher(src, opts.signal);
  let done = 0;
  opts.onProgress?.({ done, total: at });
  try {
    await mapLimit(
      [...ranges].sort((a, b) => b.size - a.size),
      threads > 0 ? Math.max(concurrency, threads) : concurrency,
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
