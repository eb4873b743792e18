import { XBZRLE_OVERFLOW, xbzrleDecode, xbzrleEncode } from '@e2k-migrate/migration';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { xbzrleEncodeFast } from './xbzrle-encode.js';

const TPS = 4096;

/** A page and a changed copy: `edits` runs of changed bytes at arbitrary positions. */
const pagePair = fc
  .tuple(
    fc.uint8Array({ minLength: 64, maxLength: 64 }),
    fc.array(fc.tuple(fc.nat({ max: TPS - 1 }), fc.integer({ min: 1, max: 300 }), fc.nat({ max: 255 })), {
      maxLength: 40,
    }),
    fc.integer({ min: 0, max: 3 }),
  )
  .map(([seed, edits, misalign]) => {
    const backing = new Uint8Array(TPS * 2 + 8);
    const prev = backing.subarray(misalign, misalign + TPS);
    for (let i = 0; i < TPS; i++) prev[i] = seed[i % 64] as number;
    const next = new Uint8Array(TPS);
    next.set(prev);
    for (const [at, len, v] of edits)
      for (let i = at; i < Math.min(TPS, at + len); i++) next[i] = (next[i] as number) ^ (v | 1);
    return { prev, next };
  });

describe('xbzrleEncodeFast', () => {
  it('produces exactly the reference encoder output, overflow included (property)', () => {
    fc.assert(
      fc.property(pagePair, fc.constantFrom(TPS, 256, 64), ({ prev, next }, budget) => {
        const a = new Uint8Array(budget);
        const b = new Uint8Array(budget);
        const ra = xbzrleEncode(prev, next, a);
        const rb = xbzrleEncodeFast(prev, next, b);
        expect(rb).toBe(ra);
        if (ra > 0) expect(b.subarray(0, rb)).toEqual(a.subarray(0, ra));
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips through the decoder', () => {
    fc.assert(
      fc.property(pagePair, ({ prev, next }) => {
        const out = new Uint8Array(TPS);
        const n = xbzrleEncodeFast(prev, next, out);
        fc.pre(n !== XBZRLE_OVERFLOW);
        const page = Uint8Array.from(prev);
        expect(xbzrleDecode(out.subarray(0, n), page)).toBeTypeOf('number');
        expect(page).toEqual(next);
      }),
      { numRuns: 200 },
    );
  });

  it('golden: one changed byte at 0x600, and the unchanged page', () => {
    const prev = new Uint8Array(TPS);
    const next = new Uint8Array(TPS);
    next[0x600] = 0x70;
    next[0x601] = 0x16;
    const out = new Uint8Array(TPS);
    // zrun 0x600 as ULEB 80 0c, nzrun 2, bytes 70 16 (the bootblock-xbzrle fixture record)
    expect(out.subarray(0, xbzrleEncodeFast(prev, next, out))).toEqual(Uint8Array.from([0x80, 0x0c, 0x02, 0x70, 0x16]));
    expect(xbzrleEncodeFast(prev, prev, out)).toBe(0);
  });

  it('overflows on a page whose every other byte changed', () => {
    const prev = new Uint8Array(TPS);
    const next = new Uint8Array(TPS);
    for (let i = 0; i < TPS; i += 2) next[i] = 1;
    expect(xbzrleEncodeFast(prev, next, new Uint8Array(TPS))).toBe(XBZRLE_OVERFLOW);
  });
});
