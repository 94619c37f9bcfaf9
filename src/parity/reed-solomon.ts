// A systematic Reed–Solomon erasure code over GF(256): k data shards stay as they are, n parity
// shards are linear combinations of them, and any k of the k + n shards give the data back.
// The parity rows are a Cauchy matrix, C[p][i] = 1 / (x_p + y_i) with y_i = i and x_p = k + p:
// every square submatrix of a Cauchy matrix is invertible, so [I; C] loses nothing to any n
// erasures. k + n ≤ 256 (the field has 256 distinct elements for the x and y).
//
// The code works on equal-length byte runs; callers stream shards chunk by chunk (a stripe is the
// same byte range of every shard), so no shard is ever held whole.
import { gfInv, invertMatrix, mulAddInto } from './gf256.ts';

export const MAX_SHARDS = 256;

export interface Decoder {
  /** The k shard indices (data 0…k−1, parity k…k+n−1) the missing data is computed from. */
  sources: number[];
  /** For each missing data shard: its coefficients over `sources`. */
  rows: Map<number, number[]>;
}

export class ReedSolomon {
  readonly dataShards: number;
  readonly parityShards: number;
  readonly #parity: number[][];

  constructor(dataShards: number, parityShards: number) {
    if (!Number.isInteger(dataShards) || dataShards < 1) throw new RangeError(`Reed–Solomon: need at least 1 data shard, got ${dataShards}`);
    if (!Number.isInteger(parityShards) || parityShards < 0) throw new RangeError(`Reed–Solomon: invalid parity shard count ${parityShards}`);
    if (dataShards + parityShards > MAX_SHARDS) throw new RangeError(`Reed–Solomon over GF(256): at most ${MAX_SHARDS} shards in all, got ${dataShards} + ${parityShards}`);
    this.dataShards = dataShards;
    this.parityShards = parityShards;
    this.#parity = Array.from({ length: parityShards }, (_, p) => Array.from({ length: dataShards }, (_, i) => gfInv((dataShards + p) ^ i)));
  }

  /** C[p][i]: what data shard i contributes to parity shard p. */
  coefficient(p: number, i: number): number {
    return this.#parity[p]![i]!;
  }

  /** Row of the generator matrix for shard s: a unit row for data, a Cauchy row for parity. */
  generatorRow(s: number): number[] {
    if (s < this.dataShards) return Array.from({ length: this.dataShards }, (_, j) => (j === s ? 1 : 0));
    const row = this.#parity[s - this.dataShards];
    if (!row) throw new RangeError(`no shard ${s}`);
    return [...row];
  }

  /**
   * parity[p][0…length) = Σ_i C[p][i]·data[i]: one stripe. Output buffers are overwritten.
   * Data shards shorter than `length` count as zero-padded.
   */
  encode(data: readonly Uint8Array[], parity: readonly Uint8Array[], length: number): void {
    if (data.length !== this.dataShards || parity.length !== this.parityShards) throw new RangeError('encode: wrong number of shards');
    for (const out of parity) out.fill(0, 0, length);
    data.forEach((d, i) => {
      parity.forEach((out, p) => mulAddInto(out, d, this.coefficient(p, i), Math.min(length, d.length)));
    });
  }

  /**
   * How to rebuild the data shards missing from `present` (indexed by shard, data first), or
   * undefined when fewer than k shards are left. Data shards are preferred as sources.
   */
  decoder(present: readonly boolean[]): Decoder | undefined {
    const k = this.dataShards;
    const sources: number[] = [];
    for (let s = 0; s < k + this.parityShards && sources.length < k; s++) if (present[s]) sources.push(s);
    if (sources.length < k) return undefined;
    const inverse = invertMatrix(sources.map((s) => this.generatorRow(s)));
    const rows = new Map<number, number[]>();
    for (let m = 0; m < k; m++) if (!present[m]) rows.set(m, inverse[m]!);
    return { sources, rows };
  }

  /** out = Σ_j coeffs[j]·shards[j] over one stripe (`shards` in the order of decoder().sources). */
  static combine(coeffs: readonly number[], shards: readonly Uint8Array[], out: Uint8Array, length: number): void {
    out.fill(0, 0, length);
    coeffs.forEach((c, j) => mulAddInto(out, shards[j]!, c, Math.min(length, shards[j]!.length)));
  }
}
