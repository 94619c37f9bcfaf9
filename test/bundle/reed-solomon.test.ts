// The erasure code under the recovery volumes: GF(256) arithmetic and Reed–Solomon, checked as
// properties over random shapes, data and losses.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gfDiv, gfInv, gfMul, invertMatrix, mulAddInto } from '../../src/parity/gf256.ts';
import { ReedSolomon } from '../../src/parity/reed-solomon.ts';

const byte = fc.integer({ min: 0, max: 255 });
const nonzero = fc.integer({ min: 1, max: 255 });

describe('GF(256)', () => {
  test('multiplication is a commutative, associative group on the non-zero bytes, distributing over XOR', () => {
    fc.assert(
      fc.property(byte, byte, byte, (a, b, c) => {
        assert.equal(gfMul(a, b), gfMul(b, a));
        assert.equal(gfMul(gfMul(a, b), c), gfMul(a, gfMul(b, c)));
        assert.equal(gfMul(a, b ^ c), gfMul(a, b) ^ gfMul(a, c));
        assert.equal(gfMul(a, 1), a);
        assert.equal(gfMul(a, 0), 0);
      }),
    );
    fc.assert(
      fc.property(nonzero, byte, (a, b) => {
        assert.equal(gfMul(a, gfInv(a)), 1);
        assert.equal(gfMul(gfDiv(b, a), a), b);
      }),
    );
    // 0x11d is primitive: 2 generates every non-zero element.
    const seen = new Set<number>();
    for (let x = 1, i = 0; i < 255; i++, x = gfMul(x, 2)) seen.add(x);
    assert.equal(seen.size, 255);
  });

  test('mulAddInto is the table form of gfMul', () => {
    fc.assert(
      fc.property(byte, fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (c, data, start) => {
        const n = Math.min(data.length, start.length);
        const out = Uint8Array.from(start);
        mulAddInto(out, data, c, n);
        for (let i = 0; i < start.length; i++) assert.equal(out[i], i < n ? start[i]! ^ gfMul(c, data[i]!) : start[i]);
      }),
    );
  });

  test('invertMatrix: M · M⁻¹ = I for Cauchy-extended generators; a singular matrix is refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 6 }), fc.array(fc.nat(), { maxLength: 8 }), (k, n, picks) => {
        const rs = new ReedSolomon(k, n);
        // k distinct shards out of k + n, chosen by the random picks.
        const pool = Array.from({ length: k + n }, (_, i) => i);
        const rows: number[] = [];
        for (let i = 0; i < k; i++) rows.push(pool.splice((picks[i] ?? 0) % pool.length, 1)[0]!);
        const m = rows.map((r) => rs.generatorRow(r));
        const inv = invertMatrix(m);
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            let sum = 0;
            for (let x = 0; x < k; x++) sum ^= gfMul(m[i]![x]!, inv[x]![j]!);
            assert.equal(sum, i === j ? 1 : 0);
          }
        }
      }),
    );
    assert.throws(() => invertMatrix([[1, 2], [1, 2]]), /singular/);
  });
});

describe('Reed–Solomon', () => {
  test('property: any n of k + n shards can be lost and the data comes back byte for byte', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 80 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.integer(),
        (k, n, length, losses, seed) => {
          const rs = new ReedSolomon(k, n);
          let x = seed >>> 0;
          const rand = (): number => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24;
          // Data shards of uneven length (the last volume is short): shorter ones count as zero-padded.
          const data = Array.from({ length: k }, (_, i) => Uint8Array.from({ length: i === k - 1 ? Math.floor(length / 2) : length }, rand));
          const parity = Array.from({ length: n }, () => new Uint8Array(length));
          rs.encode(data, parity, length);
          const shards = [...data.map((d) => { const p = new Uint8Array(length); p.set(d); return p; }), ...parity];
          const present = shards.map(() => true);
          for (const l of losses.slice(0, n)) present[l % (k + n)] = false;
          const dec = rs.decoder(present);
          assert.ok(dec, 'at most n shards lost: decodable');
          for (const [m, coeffs] of dec.rows) {
            const out = new Uint8Array(length);
            ReedSolomon.combine(coeffs, dec.sources.map((s) => shards[s]!), out, length);
            assert.deepEqual(out, shards[m], `data shard ${m} rebuilt`);
          }
          // The sources are present shards, data preferred.
          assert.ok(dec.sources.every((s) => present[s]));
          assert.equal(dec.sources.length, k);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('more losses than parity shards cannot be decoded; shapes beyond GF(256) are refused', () => {
    const rs = new ReedSolomon(4, 2);
    assert.equal(rs.decoder([false, false, false, true, true, true]), undefined);
    assert.ok(rs.decoder([false, false, true, true, true, true]));
    assert.throws(() => new ReedSolomon(200, 57), /at most 256 shards/);
    assert.throws(() => new ReedSolomon(0, 1), /at least 1 data shard/);
  });
});
