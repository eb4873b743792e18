import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bitmapWords, popcount, setBits, takeBits, testBit } from './control.js';

describe('page bitmaps', () => {
  it('takeBits returns exactly the set bits of any sub-range, shifted to bit 0, and clears them', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(199), { maxLength: 80 }), fc.nat(199), fc.nat(200), (set, first, count0) => {
        const count = Math.min(count0, 200 - first);
        const bm = new Int32Array(bitmapWords(200));
        for (const p of set) setBits(bm, p, 1, true);
        const out = new Uint32Array(bitmapWords(count) + 1);
        const n = takeBits(bm, first, count, out);
        const want = set.filter((p) => p >= first && p < first + count).sort((a, b) => a - b);
        const got: number[] = [];
        for (let i = 0; i < count; i++) if ((out[i >>> 5]! >>> (i & 31)) & 1) got.push(first + i);
        expect(got).toEqual(want);
        expect(n).toBe(want.length);
        for (const p of set) expect(testBit(bm, p)).toBe(!want.includes(p));
      }),
      { numRuns: 300 },
    );
  });

  it('popcount counts 32-bit words', () => {
    expect(popcount(0)).toBe(0);
    expect(popcount(-1)).toBe(32);
    expect(popcount(0x80000001)).toBe(2);
  });
});
