import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex } from '../test-util/hex.js';
import { XBZRLE_OVERFLOW, xbzrleDecode, xbzrleEncode } from './xbzrle.js';

const TPS = 4096;

function encode(prev: Uint8Array, next: Uint8Array): number | Uint8Array {
  const out = new Uint8Array(TPS);
  const n = xbzrleEncode(prev, next, out);
  return n < 0 ? n : out.slice(0, n);
}

describe('XBZRLE', () => {
  it('decodes the captured record: skip 3860 bytes, then 1 new byte 0xa8', () => {
    const page = new Uint8Array(TPS).fill(0x11);
    expect(xbzrleDecode(hex('94 1e # zrun 0x14 | 0x1e<<7 = 3860\n 01 a8 # nzrun 1, byte'), page)).toBe(3861);
    expect(page[3860]).toBe(0xa8);
    expect(page[3859]).toBe(0x11);
    expect(page[3861]).toBe(0x11);
  });

  it('decodes the captured multi-run CONTINUE record', () => {
    const delta = hex('a8 1e 02 08 f4 02 02 08 f4 02 02 a8 e2 12 01 72');
    const page = new Uint8Array(TPS);
    expect(xbzrleDecode(delta, page)).toBe(3880 + 2 + 2 + 2 + 2 + 2 + 18 + 1);
    expect([...page.subarray(3880, 3890)]).toEqual([0x08, 0xf4, 0, 0, 0x08, 0xf4, 0, 0, 0xa8, 0xe2]);
    expect(page[3908]).toBe(0x72);
    // Re-encoding old → new reproduces the captured bytes (maximal runs, minimal ULEB128).
    expect(encode(new Uint8Array(TPS), page)).toEqual(delta);
  });

  it('fixture example: zrun 0x600 as the 2-byte ULEB 80 0c, 2 new bytes (pass counter at 0x600)', () => {
    const prev = new Uint8Array(TPS);
    const next = prev.slice();
    next[0x600] = 0x70;
    next[0x601] = 0x16;
    expect(encode(prev, next)).toEqual(hex('80 0c 02 70 16'));
    const b = new Uint8Array(TPS);
    next[0] = 0x5a;
    b[0] = 0x59;
    expect(encode(b, next)).toEqual(hex('00 01 5a ff 0b 02 70 16'));
  });

  it('an unchanged page encodes to length 0 (nothing is sent)', () => {
    const p = new Uint8Array(TPS).fill(7);
    expect(xbzrleEncode(p, p.slice(), new Uint8Array(TPS))).toBe(0);
  });

  it('7.2 overflow rule: checked at every iteration start even if the rest is unchanged', () => {
    const prev = new Uint8Array(TPS);
    const run = (len: number) => {
      const next = prev.slice();
      next.fill(1, 0, len);
      return xbzrleEncode(prev, next, new Uint8Array(TPS));
    };
    // zrun 0 (1 byte) + nzrun ULEB (2 bytes) + len bytes.
    expect(run(4091)).toBe(4094); // 5 unchanged bytes left: 4094 + 2 ≤ 4096, scan ends, returns
    expect(run(4092)).toBe(XBZRLE_OVERFLOW); // 4095 + 2 > 4096 at the next iteration start
    expect(run(4093)).toBe(XBZRLE_OVERFLOW); // nzrun bytes do not fit
    // Every other byte changed: 3 output bytes per 2 page bytes.
    const alt = prev.map((_, i) => (i % 2 ? 0 : 1));
    expect(xbzrleEncode(prev, alt, new Uint8Array(TPS))).toBe(XBZRLE_OVERFLOW);
  });

  it('rejects malformed deltas as QEMU 7.2 does', () => {
    const page = new Uint8Array(TPS);
    expect(xbzrleDecode(hex('00 01 aa 00 01 bb'), page)).toMatchObject({
      error: expect.stringMatching(/zero-run length 0/),
    });
    expect(xbzrleDecode(hex('00 00 aa'), page)).toMatchObject({
      error: expect.stringMatching(/non-zero-run length 0/),
    });
    expect(xbzrleDecode(hex('80 80 01 aa'), page)).toMatchObject({ error: expect.stringMatching(/ULEB/) });
    expect(xbzrleDecode(hex('80 20 01 aa'), page)).toMatchObject({
      error: expect.stringMatching(/non-zero run passes the end of the 4096-byte page/),
    });
    expect(xbzrleDecode(hex('81 20 01 aa'), page)).toMatchObject({
      error: expect.stringMatching(/zero run passes the end/),
    });
    expect(xbzrleDecode(hex('ff 1f 01 aa'), page)).toBe(4096);
    expect(xbzrleDecode(hex('00 05 aa'), page)).toMatchObject({ error: expect.stringMatching(/end of the input/) });
    expect(xbzrleDecode(hex('00'), page)).toMatchObject({ error: expect.stringMatching(/input ends/) });
    expect(xbzrleDecode(hex('00 01'), page)).toMatchObject({
      error: expect.stringMatching(/input ends inside a non-zero run/),
    });
  });

  it('property: decode(encode(prev, next)) onto prev gives next, or the encoder reports overflow', () => {
    const pages = fc
      .tuple(
        fc.uint8Array({ minLength: TPS, maxLength: TPS }),
        fc.array(fc.tuple(fc.nat({ max: TPS - 1 }), fc.nat({ max: 300 }), fc.nat({ max: 255 })), { maxLength: 40 }),
      )
      .map(([prev, edits]) => {
        const next = prev.slice();
        for (const [at, len, v] of edits) next.fill(v, at, Math.min(TPS, at + len));
        return [prev, next] as const;
      });
    fc.assert(
      fc.property(pages, ([prev, next]) => {
        const out = new Uint8Array(TPS);
        const n = xbzrleEncode(prev, next, out);
        if (n === XBZRLE_OVERFLOW) return;
        if (n === 0) {
          expect(next).toEqual(prev);
          return;
        }
        const page = prev.slice();
        expect(typeof xbzrleDecode(out.subarray(0, n), page)).toBe('number');
        expect(page).toEqual(next);
      }),
      { numRuns: 200 },
    );
  });

  it('property: arbitrary deltas decode or are rejected, never overrunning the page', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (d) => {
        const page = new Uint8Array(64);
        const r = xbzrleDecode(d, page);
        if (typeof r === 'number') expect(r).toBeLessThanOrEqual(64);
        else expect(r.error.length).toBeGreaterThan(0);
      }),
    );
  });
});
