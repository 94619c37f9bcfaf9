// Volumes for removable media: `pack --split SIZE` cuts the bundle tar into b.tar.001, b.tar.002, …
// — plain slices, so `cat b.tar.0* > b.tar` is the whole bundle again — every one SIZE bytes but the
// last. Recovery volumes (b.tar.par01, …, parity.ts) sit beside them.
//
// Where the checksums live: the metadata at the start of volume 001 is written before any volume's
// bytes are known, so it records only the layout (BundleInfo.volumes: size, count, total, parity).
// The per-volume sha256 table is the tar's last entry, airlock/volumes.json, written when every
// byte before it has been hashed. Its own bytes are left out of every volume's checksum (the
// content range is known from the layout alone), and it checks itself: its second line is the
// sha256 of its first. Every recovery volume carries the same table in its header, so the
// checksums survive the loss of the last volume too.
//
//   airlock/volumes.json:  {"bundle":"sha256:<inventory digest>","parity":N,"totalSize":T,
//                           "volumeSize":S,"volumes":[{"sha256":"<hex>","size":S},…]}\n
//                          sha256:<hex of the line above>\n
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { IntegrityError, NotFoundError, UsageError } from '../core/errors.ts';
import { isDigest, type Digest } from '../core/digest.ts';
import { canonicalJson, VOLUMES_PATH, type VolumeLayout } from './format.ts';
import { BLOCK, END_OF_ARCHIVE, encodeHeader, paddingFor } from './tar.ts';

export const MAX_VOLUMES = 999;
export const MAX_PARITY = 99;
/** Smaller volumes would not hold the metadata that opens volume 001. */
export const MIN_VOLUME_SIZE = 64 * 1024;

export function volumeName(base: string, index: number): string {
  return `${base}.${String(index).padStart(3, '0')}`;
}

export function parityName(base: string, index: number): string {
  return `${base}.par${String(index).padStart(2, '0')}`;
}

export interface VolumeNameParts {
  base: string;
  kind: 'data' | 'parity';
  /** 1-based. */
  index: number;
}

export function parseVolumeName(path: string): VolumeNameParts | undefined {
  const data = /^(.+)\.(\d{3})$/.exec(path);
  if (data && Number(data[2]) >= 1) return { base: data[1]!, kind: 'data', index: Number(data[2]) };
  const parity = /^(.+)\.par(\d{2})$/.exec(path);
  if (parity && Number(parity[2]) >= 1) return { base: parity[1]!, kind: 'parity', index: Number(parity[2]) };
  return undefined;
}

/** `4GiB`, `700M`, `1.5G`, `650MB`, `100000`: K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB of 1000 (as split(1)). */
export function parseSize(text: string, what = 'volume size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?b)?|(b))?\s*$/i.exec(text);
  if (!m) throw new UsageError(`${what}: "${text}" is not a size`, { code: 'SPLIT_INVALID', hint: 'use a number of bytes with an optional unit: K, M, G, T (or KiB, MiB, GiB, TiB; KB, MB, GB, TB are powers of 1000), e.g. 4GiB' });
  const unit = (m[2] ?? '').toLowerCase();
  const decimal = m[3] !== undefined && m[3].toLowerCase() === 'b';
  const power = ' kmgt'.indexOf(unit || ' ');
  const n = Number(m[1]) * (decimal ? 1000 : 1024) ** Math.max(0, power);
  if (!Number.isFinite(n) || n < 1) throw new UsageError(`${what}: "${text}" is not a positive size`, { code: 'SPLIT_INVALID' });
  return Math.floor(n);
}

/** A bundle cut into volumes of `size` bytes, with `parity` recovery volumes. */
export interface SplitRequest {
  size: number;
  parity: number;
}

/**
 * The one check of a request to split a bundle (pack's options, and writeBundle's): volumes of at
 * least MIN_VOLUME_SIZE (bytes, or a size such as `4GiB`), 0 to MAX_PARITY recovery volumes, and
 * recovery volumes only for a bundle in volumes. Undefined when no volumes are asked for.
 */
export function checkSplit(size: number | string | undefined, parity: number | undefined): SplitRequest | undefined {
  let bytes: number | undefined;
  if (size !== undefined) {
    bytes = typeof size === 'string' ? parseSize(size) : size;
    if (!Number.isSafeInteger(bytes) || bytes < MIN_VOLUME_SIZE) {
      throw new UsageError(`volume size ${typeof size === 'string' ? size : `${size} bytes`} is too small: a volume needs at least ${MIN_VOLUME_SIZE / 1024} KiB`, { code: 'SPLIT_INVALID' });
    }
  }
  if (parity !== undefined && (!Number.isInteger(parity) || parity < 0 || parity > MAX_PARITY)) {
    throw new UsageError(`recovery volumes must be a whole number from 0 to ${MAX_PARITY}, got ${parity}`, { code: 'PARITY_INVALID' });
  }
  if (bytes === undefined) {
    if (parity) throw new UsageError('recovery volumes need a bundle in volumes: they rebuild lost volumes', { code: 'PARITY_WITHOUT_SPLIT', hint: 'give a volume size as well, e.g. 4GiB with 2 recovery volumes' });
    return undefined;
  }
  return { size: bytes, parity: parity ?? 0 };
}

/** Where a tar offset range falls among volumes: volume i covers [i·size, (i+1)·size). */
export function volumeRanges(layout: Pick<VolumeLayout, 'size' | 'count' | 'totalSize'>): { start: number; size: number }[] {
  return Array.from({ length: layout.count }, (_, i) => {
    const start = i * layout.size;
    return { start, size: Math.min(layout.size, layout.totalSize - start) };
  });
}

export function countVolumes(totalSize: number, size: number): number {
  return Math.max(1, Math.ceil(totalSize / size));
}

// ---------------------------------------------------------------------------------------------
// The checksum table

export interface VolumeTable {
  /** The bundle's identity: the digest of its airlock/inventory.json. */
  bundle: Digest;
  parity: number;
  totalSize: number;
  volumeSize: number;
  /** sha256 (hex) of each volume's bytes, the table's own bytes left out; its size. */
  volumes: { sha256: string; size: number }[];
}

const ZERO_SHA = '0'.repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;

function tableLine(t: VolumeTable): string {
  return canonicalJson({ bundle: t.bundle, parity: t.parity, totalSize: t.totalSize, volumeSize: t.volumeSize, volumes: t.volumes.map((v) => ({ sha256: v.sha256, size: v.size })) }, false);
}

/** The exact bytes of airlock/volumes.json. */
export function encodeVolumeTable(t: VolumeTable): Buffer {
  const line = tableLine(t);
  return Buffer.from(`${line}\nsha256:${createHash('sha256').update(line).digest('hex')}\n`);
}

/** What identifies one split of one bundle: parity volumes name it, so parity from another split is told apart. */
export function volumeSetId(t: VolumeTable): Digest {
  return `sha256:${createHash('sha256').update(tableLine(t)).digest('hex')}`;
}

/** The table a layout implies, every checksum zero: its length is the real table's length. */
export function placeholderTable(bundle: Digest, layout: VolumeLayout): VolumeTable {
  return { bundle, parity: layout.parity, totalSize: layout.totalSize, volumeSize: layout.size, volumes: volumeRanges(layout).map((r) => ({ sha256: ZERO_SHA, size: r.size })) };
}

export function tableLayout(t: VolumeTable): VolumeLayout {
  return { size: t.volumeSize, count: t.volumes.length, totalSize: t.totalSize, parity: t.parity };
}

/** The same split: volume size, count, total and recovery volumes alike. */
export function sameLayout(a: VolumeLayout, b: VolumeLayout): boolean {
  return a.size === b.size && a.count === b.count && a.totalSize === b.totalSize && a.parity === b.parity;
}

/** Parse and self-check airlock/volumes.json (or a parity header's copy); IntegrityError when damaged. */
export function parseVolumeTable(bytes: Buffer, what: string): VolumeTable {
  const text = bytes.toString('utf8');
  const m = /^([^\n]*)\nsha256:([0-9a-f]{64})\n$/.exec(text);
  if (!m) throw damagedTable(what, 'it is not the two lines airlock writes');
  if (createHash('sha256').update(m[1]!).digest('hex') !== m[2]) throw damagedTable(what, 'its checksum line does not match its content');
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(m[1]!) as Record<string, unknown>;
  } catch (e) {
    throw damagedTable(what, 'not valid JSON', e);
  }
  const t = validateTable(doc, what);
  if (tableLine(t) !== m[1]) throw damagedTable(what, 'not in canonical form');
  return t;
}

export function validateTable(doc: unknown, what: string): VolumeTable {
  const o = doc as Partial<Record<keyof VolumeTable, unknown>> | null;
  const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (typeof o !== 'object' || o === null || typeof o.bundle !== 'string' || !isDigest(o.bundle) || !isSize(o.parity) || !isSize(o.totalSize) || !isSize(o.volumeSize) || o.volumeSize === 0 || !Array.isArray(o.volumes)) {
    throw damagedTable(what, 'it lacks bundle, parity, totalSize, volumeSize or volumes');
  }
  const volumes = o.volumes.map((v: unknown, i) => {
    const x = v as { sha256?: unknown; size?: unknown } | null;
    if (typeof x !== 'object' || x === null || typeof x.sha256 !== 'string' || !HEX64.test(x.sha256) || !isSize(x.size)) throw damagedTable(what, `volumes[${i}] needs sha256 and size`);
    return { sha256: x.sha256, size: x.size };
  });
  const t: VolumeTable = { bundle: o.bundle, parity: o.parity, totalSize: o.totalSize, volumeSize: o.volumeSize, volumes };
  const expected = volumeRanges(tableLayout(t));
  if (volumes.length === 0 || countVolumes(t.totalSize, t.volumeSize) !== volumes.length || expected.some((r, i) => r.size !== volumes[i]!.size)) {
    throw damagedTable(what, 'its volume sizes do not add up to its total size');
  }
  return t;
}

function damagedTable(what: string, why: string, cause?: unknown): IntegrityError {
  return new IntegrityError(`${what} is damaged: ${why}`, { code: 'VOLUME_TABLE_INVALID', cause });
}

export interface TrailerPlace {
  /** Offset of the entry's header block. */
  header: number;
  /** Offset and length of its content (left out of every volume checksum). */
  offset: number;
  length: number;
}

/** Where airlock/volumes.json sits in a split bundle's tar, from the layout alone. */
export function trailerPlace(bundle: Digest, layout: VolumeLayout): TrailerPlace {
  const length = encodeVolumeTable(placeholderTable(bundle, layout)).length;
  const end = layout.totalSize - END_OF_ARCHIVE.length - paddingFor(length);
  return { header: end - length - BLOCK, offset: end - length, length };
}

export function trailerHeader(length: number): Buffer {
  return encodeHeader({ name: VOLUMES_PATH, type: 'file', size: length });
}

/** The byte ranges (file offsets) of volume `i` that its checksum covers: all but the table's content. */
export function checksumRanges(layout: VolumeLayout, place: Pick<TrailerPlace, 'offset' | 'length'>, i: number): { position: number; length: number }[] {
  const r = volumeRanges(layout)[i]!;
  const end = r.start + r.size;
  const out: { position: number; length: number }[] = [];
  const cut = (a: number, b: number): void => {
    if (b > a) out.push({ position: a - r.start, length: b - a });
  };
  cut(r.start, Math.min(end, place.offset));
  cut(Math.max(r.start, place.offset + place.length), end);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Finding the files of a bundle

export type BundleFiles =
  | { kind: 'file'; path: string }
  | {
      kind: 'volumes';
      /** `…/b.tar`: the name the volumes share (no file by that name is needed). */
      base: string;
      /** Data volumes found, by 1-based index. */
      data: Map<number, string>;
      /** Recovery volumes found, by 1-based index. */
      parity: Map<number, string>;
      /** Files given that look like they belong (b.tar.2, b.tar.001.bak) but are not volume names. */
      strays: string[];
    };

/**
 * The files of one bundle, from what a user typed: `b.tar` (a file, or the name its volumes
 * share), `b.tar.001`, or every file of `b.tar.*`. Volumes beside the named ones are found in
 * the same directory, so `verify b.tar.001` sees the whole set.
 */
export async function locateBundle(spec: string | readonly string[]): Promise<BundleFiles> {
  const groups = await groupBundlePaths(typeof spec === 'string' ? [spec] : spec);
  if (groups.length === 0) throw new UsageError('no bundle given');
  if (groups.length > 1) {
    throw new UsageError(`these files are more than one bundle: ${groups.map(describeFiles).join('; ')}`, {
      code: 'BUNDLE_AMBIGUOUS',
      hint: 'name one bundle: its .tar file, or its volumes (b.tar.*)',
    });
  }
  return groups[0]!;
}

export function describeFiles(f: BundleFiles): string {
  return f.kind === 'file' ? f.path : `${f.base} (${f.data.size} volume${f.data.size === 1 ? '' : 's'}${f.parity.size ? ` + ${f.parity.size} parity` : ''})`;
}

/** The bundles among several paths (serve/export take a base and its updates): volumes collapse into one. */
export async function groupBundlePaths(paths: readonly string[]): Promise<BundleFiles[]> {
  const out: BundleFiles[] = [];
  const byBase = new Map<string, Extract<BundleFiles, { kind: 'volumes' }>>();
  const volumeGroup = (base: string): Extract<BundleFiles, { kind: 'volumes' }> => {
    let g = byBase.get(base);
    if (!g) {
      g = { kind: 'volumes', base, data: new Map(), parity: new Map(), strays: [] };
      byBase.set(base, g);
      out.push(g);
    }
    return g;
  };
  const later: string[] = [];
  for (const raw of paths) {
    const abs = resolve(raw);
    const parts = parseVolumeName(abs);
    const info = await stat(abs).catch(() => undefined);
    if (parts) {
      const g = volumeGroup(parts.base);
      if (info?.isFile()) (parts.kind === 'data' ? g.data : g.parity).set(parts.index, abs);
      continue;
    }
    if (info?.isFile() || info?.isDirectory()) {
      later.push(abs);
      continue;
    }
    if ((await siblings(abs)).found) volumeGroup(abs);
    else throw new NotFoundError(`bundle ${abs} does not exist${await hintNear(abs)}`, { code: 'BUNDLE_NOT_FOUND' });
  }
  // A file next to a volume set and named after it (b.tar.2, b.tar.001.bak) is a stray of that set.
  for (const abs of later) {
    const owner = [...byBase.values()].find((g) => abs.startsWith(`${g.base}.`) && dirname(abs) === dirname(g.base));
    if (owner) owner.strays.push(abs);
    else out.push({ kind: 'file', path: abs });
  }
  for (const g of byBase.values()) {
    const found = await siblings(g.base);
    for (const [i, p] of found.data) if (!g.data.has(i)) g.data.set(i, p);
    for (const [i, p] of found.parity) if (!g.parity.has(i)) g.parity.set(i, p);
  }
  return out;
}

/** Every data and recovery volume file named after `base` in its directory. */
export async function volumeFilesOf(base: string): Promise<string[]> {
  const found = await siblings(resolve(base));
  return [...found.data.values(), ...found.parity.values()];
}

async function siblings(base: string): Promise<{ found: boolean; data: Map<number, string>; parity: Map<number, string> }> {
  const data = new Map<number, string>();
  const parity = new Map<number, string>();
  let names: string[] = [];
  try {
    names = await readdir(dirname(base));
  } catch {
    return { found: false, data, parity };
  }
  const prefix = `${basename(base)}.`;
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const p = parseVolumeName(join(dirname(base), n));
    if (!p || p.base !== base) continue;
    const full = join(dirname(base), n);
    if (!(await stat(full).catch(() => undefined))?.isFile()) continue;
    (p.kind === 'data' ? data : parity).set(p.index, full);
  }
  return { found: data.size + parity.size > 0, data, parity };
}

async function hintNear(abs: string): Promise<string> {
  try {
    const names = await readdir(dirname(abs));
    const near = names.filter((n) => n.startsWith(`${basename(abs)}.`)).slice(0, 3);
    return near.length > 0 ? ` (found ${near.join(', ')} beside it)` : '';
  } catch {
    return '';
  }
}
