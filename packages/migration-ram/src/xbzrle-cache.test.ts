import { describe, expect, it } from 'vitest';
import { RamError } from './errors.js';
import { XbzrleCache } from './xbzrle-cache.js';

const page = (b: number) => new Uint8Array(4096).fill(b);

describe('XbzrleCache (QEMU 7.2 page cache rules)', () => {
  it('requires a power-of-two size no smaller than a page', () => {
    expect(() => new XbzrleCache(3 * 4096)).toThrow(RamError);
    expect(() => new XbzrleCache(2048)).toThrow(/power of two/);
    expect(new XbzrleCache(16 << 20).slots).toBe(4096);
  });

  it('is direct-mapped on (address / page) mod slots: the fixture cache of 16 MiB holds 4096 pages', () => {
    const c = new XbzrleCache(16 << 20);
    expect(c.insert(0, page(1), 1)).toBe(true);
    // 16 MiB further maps to the same slot; the slot is fresh (age 1 + lifetime 2 > 2): not replaced
    expect(c.insert(16 << 20, page(2), 2)).toBe(false);
    expect(c.isCached(0, 2)).toBe(true);
    expect(c.get(0)?.[0]).toBe(1);
    // once stale (age 2 + 2 <= 4) a different page takes the slot
    expect(c.insert(16 << 20, page(3), 4)).toBe(true);
    expect(c.isCached(0, 4)).toBe(false);
    expect(c.get(16 << 20)?.[0]).toBe(3);
  });

  it('a hit refreshes the age, and re-inserting the same address always updates the copy', () => {
    const c = new XbzrleCache(4096);
    c.insert(0, page(1), 0);
    expect(c.isCached(0, 5)).toBe(true); // age := 5
    expect(c.insert(4096, page(9), 6)).toBe(false); // 5 + 2 > 6: fresh
    expect(c.insert(0, page(7), 6)).toBe(true);
    expect(c.get(0)?.[4095]).toBe(7);
  });
});
