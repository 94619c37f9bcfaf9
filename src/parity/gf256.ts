// Arithmetic in GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d, the one RAID-6 and
// most Reed–Solomon codes use), generator 2. Addition is XOR; multiplication goes through
// log/exp tables, and a full 256×256 product table serves the hot loops (64 KiB, built once).

const POLY = 0x11d;

/** exp[i] = 2^i, doubled in length so exp[log a + log b] needs no modulo. */
const EXP = new Uint8Array(512);
/** log[a] for a ≠ 0 (log[0] is unused). */
const LOG = new Uint8Array(256);

{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= POLY;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]!;
}

export function gfAdd(a: number, b: number): number {
  return a ^ b;
}

export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return EXP[LOG[a]! + LOG[b]!]!;
}

export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('GF(256): 0 has no inverse');
  return EXP[255 - LOG[a]!]!;
}

export function gfDiv(a: number, b: number): number {
  if (b === 0) throw new RangeError('GF(256): division by 0');
  if (a === 0) return 0;
  return EXP[LOG[a]! + 255 - LOG[b]!]!;
}

let table: Uint8Array | undefined;

/** The 256 products c·x for x = 0…255: index it with a data byte. */
export function mulRow(c: number): Uint8Array {
  if (!table) {
    table = new Uint8Array(256 * 256);
    for (let a = 1; a < 256; a++) for (let b = 1; b < 256; b++) table[a * 256 + b] = EXP[LOG[a]! + LOG[b]!]!;
  }
  return table.subarray(c * 256, c * 256 + 256);
}

/** out[i] ^= c · data[i] for i < length: the one loop parity and repair spend their time in. */
export function mulAddInto(out: Uint8Array, data: Uint8Array, c: number, length = data.length): void {
  if (c === 0) return;
  if (c === 1) {
    for (let i = 0; i < length; i++) out[i]! ^= data[i]!;
    return;
  }
  const row = mulRow(c);
  for (let i = 0; i < length; i++) out[i]! ^= row[data[i]!]!;
}

/** Inverse of a square matrix over GF(256) (Gauss–Jordan); throws if it is singular. */
export function invertMatrix(m: readonly (readonly number[])[]): number[][] {
  const n = m.length;
  const a = m.map((row, i) => {
    if (row.length !== n) throw new RangeError('invertMatrix: not a square matrix');
    return [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))];
  });
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && a[pivot]![col] === 0) pivot++;
    if (pivot === n) throw new RangeError('invertMatrix: the matrix is singular');
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const row = a[col]!;
    const inv = gfInv(row[col]!);
    for (let j = 0; j < 2 * n; j++) row[j] = gfMul(row[j]!, inv);
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const other = a[r]!;
      const f = other[col]!;
      if (f === 0) continue;
      for (let j = 0; j < 2 * n; j++) other[j]! ^= gfMul(f, row[j]!);
    }
  }
  return a.map((row) => row.slice(n));
}
