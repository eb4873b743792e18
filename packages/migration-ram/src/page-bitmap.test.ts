import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PageBitmap, popcount } from './page-bitmap.js';

describe('PageBitmap', () => {
  it('sets, clears, counts and finds bits across word boundaries', () => {
    const b = new PageBitmap(100);
    b.setRange(30, 70);
    expect(b.count()).toBe(40);
    expect(b.nextSet(0)).toBe(30);
    expect(b.nextSet(69)).toBe(69);
    expect(b.nextSet(70)).toBe(-1);
    b.clearRange(31, 69);
    expect([b.get(30), b.get(31), b.get(68), b.get(69)]).toEqual([true, false, false, true]);
    b.setAll();
    expect(b.count()).toBe(100);
    expect(b.nextSet(99)).toBe(99);
    expect(b.nextSet(100)).toBe(-1);
  });

  it('ORs a collected bitmap in, reporting newly dirty pages and ignoring bits past the end', () => {
    const b = new PageBitmap(40);
    b.set(1);
    const collected = Uint32Array.from([0b111, 0xffff_ffff]);
    expect(b.or(collected)).toBe(2 + 8);
    expect(b.count()).toBe(11);
  });

  it('agrees with a Set model (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.nat()), { maxLength: 30 }),
        (pages, ops) => {
          const b = new PageBitmap(pages, { shared: true });
          const model = new Set<number>();
          for (const [set, a0, b0] of ops) {
            const s = a0 % pages;
            const e = s + (b0 % (pages - s + 1));
            for (let i = s; i < e; i++) {
              if (set) model.add(i);
              else model.delete(i);
            }
            if (set) b.setRange(s, e);
            else b.clearRange(s, e);
          }
          const seen: number[] = [];
          for (let i = b.nextSet(0); i !== -1; i = b.nextSet(i + 1)) seen.push(i);
          expect(seen).toEqual([...model].sort((x, y) => x - y));
          expect(b.count()).toBe(model.size);
        },
      ),
    );
  });

  it('popcount', () => {
    expect(popcount(0)).toBe(0);
    expect(popcount(0xffff_ffff)).toBe(32);
    expect(popcount(0x8000_0001)).toBe(2);
  });
});
