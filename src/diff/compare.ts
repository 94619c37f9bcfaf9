// Two sides compared, purely: what was added, removed and changed, and the bytes a reviewer has
// not seen before. An image whose tag moved (nginx:1.27 → nginx:1.28) is one change, not a removal
// and an addition: items are paired by their exact name first, then by what they are (an image's
// repository, a chart's name) when exactly one of each is left.
import { parseReference } from '../core/reference.ts';
import { compareStrings } from '../bundle/format.ts';
import type { DiffSide, SideChart, SideFile, SideImage, SideSigner, SideTool } from './side.ts';

export interface Changed<T> {
  old: T;
  new: T;
  /** The fields that differ, e.g. `reference`, `digest`, `platforms`, `size`, `version`. */
  fields: string[];
}

export interface ListDiff<T> {
  added: T[];
  removed: T[];
  changed: Changed<T>[];
  unchanged: number;
}

export interface DiffSideInfo {
  kind: 'bundle' | 'lock';
  path: string;
  name: string;
  version: string;
  toolVersion?: string;
  inventory?: string;
  signer?: SideSigner;
}

export interface BundleDiff {
  old: DiffSideInfo;
  new: DiffSideInfo;
  images: ListDiff<SideImage>;
  charts: ListDiff<SideChart>;
  files: ListDiff<SideFile>;
  tools: ListDiff<SideTool>;
  /**
   * Blobs of NEW's images that OLD lacks (what a reviewer has not seen), carried over from OLD, and
   * dropped. Only when both sides are bundles: a lock lists no blobs.
   */
  bytes?: { newBlobs: number; newBytes: number; carriedBlobs: number; carriedBytes: number; droppedBlobs: number; droppedBytes: number };
  /** The signer of each side and whether it differs (another key, signed ↔ unsigned). */
  signer: { changed: boolean; old?: SideSigner; new?: SideSigner };
  /** Nothing differs: same images, charts, files, tools and signer. */
  same: boolean;
}

export function compareSides(a: DiffSide, b: DiffSide): BundleDiff {
  const images = diffLists(a.images, b.images, (i) => i.reference, repositoryOf, imageFields);
  const charts = diffLists(a.charts, b.charts, (c) => c.reference, (c) => c.name, chartFields);
  const files = diffLists(a.files, b.files, (f) => f.name, (f) => f.name, fileFields);
  const tools = diffLists(a.tools, b.tools, (t) => t.path, (t) => t.path, (x, y) => (x.digest !== y.digest ? ['digest', ...(x.size !== y.size ? ['size'] : [])] : []));
  let bytes: BundleDiff['bytes'];
  if (a.blobs && b.blobs) {
    bytes = { newBlobs: 0, newBytes: 0, carriedBlobs: 0, carriedBytes: 0, droppedBlobs: 0, droppedBytes: 0 };
    for (const [d, size] of b.blobs) {
      if (a.blobs.has(d)) {
        bytes.carriedBlobs++;
        bytes.carriedBytes += size;
      } else {
        bytes.newBlobs++;
        bytes.newBytes += size;
      }
    }
    for (const [d, size] of a.blobs) {
      if (b.blobs.has(d)) continue;
      bytes.droppedBlobs++;
      bytes.droppedBytes += size;
    }
  }
  const signerChanged = (a.signer?.key ?? '') !== (b.signer?.key ?? '') || (a.signer?.verified ?? false) !== (b.signer?.verified ?? false);
  const lists = [images, charts, files, tools];
  return {
    old: info(a),
    new: info(b),
    images,
    charts,
    files,
    tools,
    ...(bytes ? { bytes } : {}),
    signer: { changed: signerChanged, ...(a.signer ? { old: a.signer } : {}), ...(b.signer ? { new: b.signer } : {}) },
    same: !signerChanged && lists.every((l) => l.added.length === 0 && l.removed.length === 0 && l.changed.length === 0),
  };
}

function info(s: DiffSide): DiffSideInfo {
  return {
    kind: s.kind,
    path: s.path,
    name: s.name,
    version: s.version,
    ...(s.toolVersion !== undefined ? { toolVersion: s.toolVersion } : {}),
    ...(s.inventory !== undefined ? { inventory: s.inventory } : {}),
    ...(s.signer ? { signer: s.signer } : {}),
  };
}

function repositoryOf(i: SideImage): string {
  try {
    const r = parseReference(i.reference);
    return `${r.registry}/${r.repository}`;
  } catch {
    return i.reference;
  }
}

function imageFields(x: SideImage, y: SideImage): string[] {
  const out: string[] = [];
  if (x.reference !== y.reference) out.push('reference');
  if (x.digest !== y.digest) out.push('digest');
  if (x.platforms.join(',') !== y.platforms.join(',')) out.push('platforms');
  if (x.size !== y.size) out.push('size');
  if (x.referrers !== y.referrers) out.push('referrers');
  return out;
}

function chartFields(x: SideChart, y: SideChart): string[] {
  const out: string[] = [];
  if (x.version !== y.version) out.push('version');
  if (x.reference !== y.reference && x.version === y.version) out.push('reference');
  if (x.digest !== y.digest) out.push('digest');
  if (x.size !== y.size) out.push('size');
  if (x.dependencies.join('\n') !== y.dependencies.join('\n')) out.push('dependencies');
  return out;
}

function fileFields(x: SideFile, y: SideFile): string[] {
  const out: string[] = [];
  if (x.digest !== y.digest) out.push('digest');
  if (x.size !== y.size) out.push('size');
  if (x.mode !== y.mode) out.push('mode');
  if ((x.version ?? '') !== (y.version ?? '')) out.push('version');
  return out;
}

/** Pair by `id`, then the leftovers by `kind` when exactly one of each remains; sorted by id. */
export function diffLists<T>(a: readonly T[], b: readonly T[], id: (t: T) => string, kind: (t: T) => string, fields: (x: T, y: T) => string[]): ListDiff<T> {
  const byId = new Map(b.map((t) => [id(t), t]));
  const pairs: [T, T][] = [];
  const removed: T[] = [];
  for (const x of a) {
    const y = byId.get(id(x));
    if (y === undefined) removed.push(x);
    else {
      pairs.push([x, y]);
      byId.delete(id(x));
    }
  }
  const added = [...byId.values()];
  const groups = (list: readonly T[]): Map<string, T[]> => {
    const m = new Map<string, T[]>();
    for (const t of list) m.set(kind(t), [...(m.get(kind(t)) ?? []), t]);
    return m;
  };
  const oldKinds = groups(removed);
  const newKinds = groups(added);
  for (const [k, olds] of oldKinds) {
    const news = newKinds.get(k);
    if (olds.length !== 1 || news?.length !== 1) continue;
    pairs.push([olds[0]!, news[0]!]);
    removed.splice(removed.indexOf(olds[0]!), 1);
    added.splice(added.indexOf(news[0]!), 1);
  }
  const changed: Changed<T>[] = [];
  let unchanged = 0;
  for (const [x, y] of pairs) {
    const f = fields(x, y);
    if (f.length === 0) unchanged++;
    else changed.push({ old: x, new: y, fields: f });
  }
  const order = (p: T, q: T): number => compareStrings(id(p), id(q));
  return { added: added.sort(order), removed: removed.sort(order), changed: changed.sort((p, q) => order(p.old, q.old)), unchanged };
}
