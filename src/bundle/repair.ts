// `airlock repair b.tar.*`: rebuild lost or damaged volumes of a split bundle from its recovery
// volumes, byte for byte. Nothing is guessed: the volume set is checked first (volume-check.ts),
// each rebuilt volume must match the checksum its table records before it replaces anything, and
// every file goes through the atomic writer (util/atomic-file.ts), all placed together at the end. Damaged or missing recovery
// volumes are written again too, once the data is whole.
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { IntegrityError, UsageError, throwIfAborted } from '../core/errors.ts';
import { ReedSolomon } from '../parity/reed-solomon.ts';
import { checkTargets, commitAll, discardAll, openAtomic, removeLeftovers, writeAll, writeFailure, type AtomicFile } from '../util/atomic-file.ts';
import { stripeChunk, writeParityFiles } from './parity.ts';
import { readExactly } from './tar.ts';
import { checkVolumes, describeVolumeProblems, type CheckVolumesOptions, type VolumeSetReport } from './volume-check.ts';
import { checksumRanges, locateBundle, parityName, tableLayout, volumeName, volumeRanges, type BundleFiles } from './volumes.ts';

export interface RepairOptions extends CheckVolumesOptions {
  /** Bytes rebuilt so far (data and recovery volumes), of the total to rebuild. */
  onRepairProgress?: ((e: { done: number; total: number }) => void) | undefined;
}

export interface RepairResult {
  base: string;
  /** The state before repair. */
  before: VolumeSetReport;
  /** Data volumes written again. */
  restored: string[];
  /** Recovery volumes written again. */
  parityRestored: string[];
  /** Temp files an earlier, killed run left beside the volumes, removed by this one. */
  cleaned: string[];
}

export async function repairBundle(spec: string | readonly string[] | BundleFiles, opts: RepairOptions = {}): Promise<RepairResult> {
  const files = typeof spec === 'object' && !Array.isArray(spec) && 'kind' in spec ? spec : await locateBundle(spec as string | readonly string[]);
  if (files.kind === 'file') {
    throw new UsageError(`${files.path} is one file, not a split bundle: there are no volumes to rebuild`, { code: 'NOT_SPLIT', hint: 'repair works on bundles packed in volumes with recovery volumes' });
  }
  const cleaned = await removeLeftovers(files.base);
  const check = await checkVolumes(files, opts);
  const { report, table, place } = check;
  const base = files.base;
  if (!table || !place) {
    throw new IntegrityError(`cannot repair ${base}: no readable volume table says what its volumes should be`, {
      code: 'REPAIR_IMPOSSIBLE',
      hint: report.layout?.parity ? 'every recovery volume is missing or damaged as well' : 'the bundle was packed without recovery volumes',
    });
  }
  const layout = tableLayout(table);
  const k = layout.count;
  const lost = [...check.data.entries()].filter(([, r]) => r.state !== 'ok').map(([i]) => i);
  if (lost.length > check.parity.size) {
    const problems = describeVolumeProblems(report).map((p) => p.message);
    throw new IntegrityError(`cannot repair ${base}: ${lost.length} volume${lost.length === 1 ? '' : 's'} lost, ${check.parity.size} usable recovery volume${check.parity.size === 1 ? '' : 's'}\n  ${problems.join('\n  ')}`, {
      code: 'REPAIR_IMPOSSIBLE',
      hint: 'copy some of the lost volumes again from the source; then repair rebuilds the rest',
    });
  }
  if (lost.length === 0 && check.parityToWrite.length === 0) return { base, before: report, restored: [], parityRestored: [], cleaned };

  const ranges = volumeRanges(layout);
  const finals = new Map(lost.map((i) => [i, volumeName(base, i)]));
  const parityFinals = new Map(check.parityToWrite.map((p) => [p, parityName(base, p)]));
  // Everything rebuilt, placed together at the end once it all checks out.
  const outputs: AtomicFile[] = [];
  const temps = new Map<number, AtomicFile>();
  const total = lost.reduce((a, i) => a + ranges[i - 1]!.size, 0) + check.parityToWrite.length * layout.size;
  let done = 0;
  const progress = (n: number): void => {
    done += n;
    opts.onRepairProgress?.({ done, total });
  };
  try {
    await checkTargets([...finals.values(), ...parityFinals.values()]);
    if (lost.length > 0) {
      for (const i of lost) {
        const f = await openAtomic(finals.get(i)!, { signal: opts.signal });
        outputs.push(f);
        temps.set(i, f);
      }
      const rs = new ReedSolomon(k, table.parity);
      const present = Array.from({ length: k + table.parity }, (_, s) => (s < k ? check.data.get(s + 1)?.state === 'ok' : check.parity.has(s - k + 1)));
      const decoder = rs.decoder(present)!;
      await rebuildData(decoder, lost, { files, check, ranges, temps, signal: opts.signal, progress });
      for (const i of lost) {
        const actual = await hashVolume(temps.get(i)!.tempPath, checksumRanges(layout, place, i - 1));
        if (actual !== table.volumes[i - 1]!.sha256) {
          throw new IntegrityError(`rebuilt ${basename(finals.get(i)!)} does not match its checksum: the volumes used to rebuild it are damaged in a way their checksums did not show`, { code: 'REPAIR_FAILED' });
        }
      }
    }
    if (check.parityToWrite.length > 0) {
      const dataPaths = ranges.map((_, i) => temps.get(i + 1)?.tempPath ?? files.data.get(i + 1)!);
      const targets: { index: number; fh: FileHandle }[] = [];
      for (const p of check.parityToWrite) {
        const f = await openAtomic(parityFinals.get(p)!, { signal: opts.signal });
        outputs.push(f);
        targets.push({ index: p, fh: f.handle });
      }
      await writeParityFiles(dataPaths, table, targets, { signal: opts.signal, onBytes: (n) => progress(n / k) });
    }
    await commitAll(outputs, { signal: opts.signal });
  } catch (e) {
    await discardAll(outputs);
    throw writeFailure(e, base, outputs);
  }
  opts.onRepairProgress?.({ done: total, total });
  return { base, before: report, restored: [...finals.values()], parityRestored: [...parityFinals.values()], cleaned };
}

async function rebuildData(
  decoder: NonNullable<ReturnType<ReedSolomon['decoder']>>,
  lost: number[],
  ctx: {
    files: Extract<BundleFiles, { kind: 'volumes' }>;
    check: Awaited<ReturnType<typeof checkVolumes>>;
    ranges: { start: number; size: number }[];
    temps: Map<number, AtomicFile>;
    signal: AbortSignal | undefined;
    progress: (n: number) => void;
  },
): Promise<void> {
  const k = ctx.ranges.length;
  const S = ctx.ranges[0]!.size;
  const chunk = stripeChunk(k + lost.length);
  const handles: FileHandle[] = [];
  try {
    const sources: { fh: FileHandle; offset: number; size: number; buf: Buffer }[] = [];
    for (const s of decoder.sources) {
      if (s < k) {
        const fh = await open(ctx.files.data.get(s + 1)!, 'r');
        handles.push(fh);
        sources.push({ fh, offset: 0, size: ctx.ranges[s]!.size, buf: Buffer.alloc(chunk) });
      } else {
        const p = ctx.check.parity.get(s - k + 1)!;
        const fh = await open(p.path, 'r');
        handles.push(fh);
        sources.push({ fh, offset: p.header.dataOffset, size: S, buf: Buffer.alloc(chunk) });
      }
    }
    const outputs: { index: number; fh: FileHandle; size: number; buf: Buffer }[] = [];
    for (const m of lost) outputs.push({ index: m, fh: ctx.temps.get(m)!.handle, size: ctx.ranges[m - 1]!.size, buf: Buffer.alloc(chunk) });
    for (let j = 0; j < S; j += chunk) {
      throwIfAborted(ctx.signal);
      const len = Math.min(chunk, S - j);
      for (const src of sources) {
        const n = Math.max(0, Math.min(len, src.size - j));
        if (n > 0) await readExactly(src.fh, src.buf.subarray(0, n), src.offset + j);
        src.buf.fill(0, n, len);
      }
      for (const out of outputs) {
        const n = Math.max(0, Math.min(len, out.size - j));
        if (n === 0) continue;
        ReedSolomon.combine(decoder.rows.get(out.index - 1)!, sources.map((x) => x.buf), out.buf, n);
        await writeAll(out.fh, out.buf.subarray(0, n), j);
        ctx.progress(n);
      }
    }
    for (const m of lost) await ctx.temps.get(m)!.finish();
  } finally {
    await Promise.allSettled(handles.map((h) => h.close()));
  }
}

async function hashVolume(path: string, ranges: { position: number; length: number }[]): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const h: Hash = createHash('sha256');
    const buf = Buffer.alloc(1024 * 1024);
    for (const r of ranges) {
      for (let done = 0; done < r.length; ) {
        const n = Math.min(buf.length, r.length - done);
        await readExactly(fh, buf.subarray(0, n), r.position + done);
        h.update(buf.subarray(0, n));
        done += n;
      }
    }
    return h.digest('hex');
  } finally {
    await fh.close();
  }
}
