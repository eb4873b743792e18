import { describe, expect, it } from 'vitest';
import { packBr, packLsr, packWd, physicalPredicate, unpackCtpr, unpackLsr, unpackStackPointer } from './packing.js';

describe('packed registers', () => {
  it('LSR packs and unpacks at the kernel bit positions', () => {
    const f = {
      lcnt: 0xdead_beef,
      ecnt: 0x1f,
      vlc: 1,
      over: 1,
      ldmc: 1,
      ldovl: 0xa5,
      pcnt: 0x11,
      strmd: 0x7f,
      semc: 1,
    };
    const v = packLsr(f);
    expect(v).toBe(0x1fe0_a5ff_dead_beefn | (0x11n << 48n));
    expect(unpackLsr(v)).toEqual(f);
    expect(v >> 61n).toBe(0n);
  });

  it('WD is in bytes, BR in the hardware field layout', () => {
    expect(packWd(16, 8, 1)).toBe((128n << 16n) | (64n << 32n) | (1n << 48n));
    // rbs=4 (base 8), rsz=3 (size 8), rcur=1 (cur 2), psz=3 (size 4), pcur=2
    expect(packBr(8, 8, 2, 4, 2)).toBe(4 | (3 << 6) | (1 << 12) | (3 << 18) | (2 << 23));
  });

  it('CTPR and stack pointers unpack their fields', () => {
    expect(unpackCtpr(0x1234n | (3n << 54n) | (1n << 57n) | (2n << 59n))).toEqual({
      target: 0x1234n,
      tag: 3,
      opc: 1,
      ipd: 2,
    });
    expect(unpackStackPointer(0x810000n | (1n << 59n), (0x1000n << 32n) | 0x40n)).toMatchObject({
      base: 0x810000n,
      index: 0x40,
      size: 0x1000,
      read: true,
      write: false,
    });
  });

  it('maps logical predicates through the rotating base', () => {
    expect(physicalPredicate(0, 4, 3)).toBe(3);
    expect(physicalPredicate(2, 4, 3)).toBe(1);
    expect(physicalPredicate(5, 4, 3)).toBe(5);
    expect(physicalPredicate(0, 1, 0)).toBe(0);
  });
});
