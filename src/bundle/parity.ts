// Recovery volumes for one-way transfer: `pack --split S --parity N` writes b.tar.par01 … parNN
// beside the data volumes, so that any N lost or damaged volumes can be rebuilt (repair.ts) without
// asking the other side again.
//
// Coding: systematic Reed–Solomon over GF(256) (src/parity), one shard per data volume, each shard
// S bytes (the last volume zero-padded), applied stripe by stripe: byte j of parity volume p is
// Σ_i C[p][i]·(byte j of volume i). Parity is computed in a second pass over the data volumes just
// written, one stripe (a chunk of every volume) at a time: memory is a chunk per volume, whatever
// the bundle's size.
//
// A parity file is a header, then S bytes of parity:
//
//   AIRLOCK-PARITY/1\n
//   {"coding":"reed-solomon-gf256-cauchy","data":"<sha256 of the S parity bytes>","index":p,
//    "set":"<volume set id>","shardSize":S,"table":{…the volume table, see volumes.ts…}}\n
//   sha256:<hex of the line above>\n
//
// The header repeats the volume table (sizes and checksums of every data volume), so a set that
// lost its first or last volume still knows what it is made of; `set` tells parity of another
// bundle (or of another split of the same one) apart. Its length is fixed by the table, so it is
// written first with a zero checksum and rewritten in place once the parity bytes are known.
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { IntegrityError, throwIfAborted } from '../core/errors.ts';
import { mulAddInto } from '../parity/gf256.ts';
import { ReedSolomon } from '../parity/reed-solomon.ts';
import { canonicalJson } from './format.ts';
import { readExactly } from './tar.ts';
import { writeAll } from '../util/atomic-file.ts';
import { validateTable, volumeSetId, type VolumeTable } from './volumes.ts';

export const PARITY_MAGIC = 'AIRLOCK-PARITY/1\n';
export const PARITY_CODING = 'reed-solomon-gf256-cauchy';
/** Headers are a few KiB even for hundreds of volumes; more is not a parity file airlock wrote. */
const MAX_HEADER = 1024 * 1024;
const ZERO_SHA = '0'.repeat(64);

export interface ParityHeader {
  /** 1-based row of the code (b.tar.parNN). */
  index: number;
  set: string;
  table: VolumeTable;
  shardSize: number;
  /** sha256 (hex) of the parity bytes. */
  data: string;
  /** Offset of the parity bytes in the file (the header's length). */
  dataOffset: number;
}

function headerLine(table: VolumeTable, index: number, data: string): string {
  return canonicalJson(
    {
      coding: PARITY_CODING,
      data,
      index,
      set: volumeSetId(table),
      shardSize: table.volumeSize,
      table: { bundle: table.bundle, parity: table.parity, totalSize: table.totalSize, volumeSize: table.volumeSize, volumes: table.volumes },
    },
    false,
  );
}

export function encodeParityHeader(table: VolumeTable, index: number, data: string): Buffer {
  const line = headerLine(table, index, data);
  return Buffer.from(`${PARITY_MAGIC}${line}\nsha256:${createHash('sha256').update(line).digest('hex')}\n`);
}

export function parityFileSize(table: VolumeTable, index: number): number {
  return encodeParityHeader(table, index, ZERO_SHA).length + table.volumeSize;
}

/** Read and self-check a parity file's header; IntegrityError naming the file when it is not one or is damaged. */
export async function readParityHeader(fh: FileHandle, path: string): Promise<ParityHeader> {
  const size = (await fh.stat()).size;
  const head = Buffer.alloc(Math.min(size, MAX_HEADER));
  await readExactly(fh, head, 0);
  if (!head.subarray(0, PARITY_MAGIC.length).equals(Buffer.from(PARITY_MAGIC))) {
    throw new IntegrityError(`${path} is not an airlock recovery volume (it does not start with ${JSON.stringify(PARITY_MAGIC.trim())})`, { code: 'PARITY_VOLUME_INVALID' });
  }
  const lineEnd = head.indexOf(0x0a, PARITY_MAGIC.length);
  const sumEnd = lineEnd < 0 ? -1 : head.indexOf(0x0a, lineEnd + 1);
  if (lineEnd < 0 || sumEnd < 0) throw new IntegrityError(`${path}: the recovery volume's header is damaged (cut short)`, { code: 'PARITY_VOLUME_INVALID' });
  const line = head.toString('utf8', PARITY_MAGIC.length, lineEnd);
  const sum = head.toString('latin1', lineEnd + 1, sumEnd);
  if (sum !== `sha256:${createHash('sha256').update(line).digest('hex')}`) {
    throw new IntegrityError(`${path}: the recovery volume's header is damaged (its checksum line does not match)`, { code: 'PARITY_VOLUME_INVALID' });
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(line) as Record<string, unknown>;
  } catch (e) {
    throw new IntegrityError(`${path}: the recovery volume's header is not valid JSON`, { code: 'PARITY_VOLUME_INVALID', cause: e });
  }
  if (doc.coding !== PARITY_CODING) throw new IntegrityError(`${path}: unknown coding ${JSON.stringify(doc.coding)}`, { code: 'PARITY_VOLUME_INVALID' });
  const table = validateTable(doc.table, `${path}: the volume table in its header`);
  const index = doc.index;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 1 || typeof doc.data !== 'string' || !/^[0-9a-f]{64}$/.test(doc.data) || doc.shardSize !== table.volumeSize) {
    throw new IntegrityError(`${path}: the recovery volume's header lacks index, data or shardSize`, { code: 'PARITY_VOLUME_INVALID' });
  }
  const set = volumeSetId(table);
  if (doc.set !== set || headerLine(table, index, doc.data) !== line) {
    throw new IntegrityError(`${path}: the recovery volume's header is inconsistent`, { code: 'PARITY_VOLUME_INVALID' });
  }
  return { index, set, table, shardSize: table.volumeSize, data: doc.data, dataOffset: sumEnd + 1 };
}

/** Chunk per shard: a stripe of every volume fits in ~64 MiB, and no chunk is over 1 MiB. */
export function stripeChunk(shards: number): number {
  return Math.max(64 * 1024, Math.min(1024 * 1024, Math.floor((64 * 1024 * 1024) / Math.max(1, shards))));
}

export interface ParityTarget {
  /** 1-based row. */
  index: number;
  /** An empty file open for writing (an atomic writer's temp file: the caller flushes and places it). */
  fh: FileHandle;
}

/**
 * Compute parity rows `targets` from the data volumes (in order, each its table size) and write
 * each as a complete parity file into its handle, which stays open for the caller.
 */
export async function writeParityFiles(
  dataPaths: readonly string[],
  table: VolumeTable,
  targets: readonly ParityTarget[],
  opts: { signal?: AbortSignal | undefined; onBytes?: ((n: number) => void) | undefined } = {},
): Promise<void> {
  if (targets.length === 0) return;
  const k = table.volumes.length;
  if (dataPaths.length !== k) throw new RangeError(`writeParityFiles: ${dataPaths.length} data volumes, the table has ${k}`);
  const rs = new ReedSolomon(k, table.parity);
  const S = table.volumeSize;
  const chunk = stripeChunk(k + targets.length);
  const inputs: FileHandle[] = [];
  const outputs: { fh: FileHandle; target: ParityTarget; hash: Hash; header: Buffer; buf: Buffer }[] = [];
  try {
    for (const p of dataPaths) inputs.push(await open(p, 'r'));
    for (const t of targets) {
      const header = encodeParityHeader(table, t.index, ZERO_SHA);
      outputs.push({ fh: t.fh, target: t, hash: createHash('sha256'), header, buf: Buffer.alloc(chunk) });
      await writeAll(t.fh, header, 0);
    }
    const inBuf = Buffer.alloc(chunk);
    for (let j = 0; j < S; j += chunk) {
      throwIfAborted(opts.signal);
      const len = Math.min(chunk, S - j);
      for (const o of outputs) o.buf.fill(0, 0, len);
      for (let i = 0; i < k; i++) {
        const n = Math.max(0, Math.min(len, table.volumes[i]!.size - j));
        if (n === 0) continue;
        await readExactly(inputs[i]!, inBuf.subarray(0, n), j);
        for (const o of outputs) mulAddInto(o.buf, inBuf, rs.coefficient(o.target.index - 1, i), n);
        opts.onBytes?.(n);
      }
      for (const o of outputs) {
        const part = o.buf.subarray(0, len);
        o.hash.update(part);
        await writeAll(o.fh, part, o.header.length + j);
      }
    }
    for (const o of outputs) await writeAll(o.fh, encodeParityHeader(table, o.target.index, o.hash.digest('hex')), 0);
  } finally {
    await Promise.allSettled(inputs.map((f) => f.close()));
  }
}
