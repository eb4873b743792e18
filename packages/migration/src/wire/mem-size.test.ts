import { ByteReader } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError } from '../errors.js';
import { catchStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import { decodeMemSizeList, encodeMemSizeList, type MemSizeList } from './mem-size.js';

describe('MEM_SIZE block list', () => {
  // Spec §12: the START section of a -M pc 128 MiB stream.
  const pc = hex(`
    00 00 00 00 09 0d 20 04                       # total 0x090d2000 | MEM_SIZE
    06 "pc.ram"                 0000000008000000
    15 "0000:00:02.0/vga.vram"  0000000001000000
    14 "/rom@etc/acpi/tables"   0000000000020000
    07 "pc.bios"                0000000000040000
    16 "0000:00:03.0/e1000.rom" 0000000000040000
    06 "pc.rom"                 0000000000020000
    14 "0000:00:02.0/vga.rom"   0000000000010000
    15 "/rom@etc/table-loader"  0000000000001000
    12 "/rom@etc/acpi/rsdp"     0000000000001000
  `);
  const pcList: MemSizeList = {
    total: 0x090d2000,
    blocks: [
      { name: 'pc.ram', usedLength: 0x8000000 },
      { name: '0000:00:02.0/vga.vram', usedLength: 0x1000000 },
      { name: '/rom@etc/acpi/tables', usedLength: 0x20000 },
      { name: 'pc.bios', usedLength: 0x40000 },
      { name: '0000:00:03.0/e1000.rom', usedLength: 0x40000 },
      { name: 'pc.rom', usedLength: 0x20000 },
      { name: '0000:00:02.0/vga.rom', usedLength: 0x10000 },
      { name: '/rom@etc/table-loader', usedLength: 0x1000 },
      { name: '/rom@etc/acpi/rsdp', usedLength: 0x1000 },
    ],
  };

  it('encodes and decodes the captured -M pc list', () => {
    expect(encodeMemSizeList(pcList).written()).toEqual(pc);
    const r = new ByteReader(pc, 0, 8);
    expect(decodeMemSizeList(r, 0x090d2000, { targetPageSize: 4096 })).toEqual(pcList.blocks);
    expect(r.atEnd).toBe(true);
  });

  it('reads mr_addr under x-ignore-shared (captured)', () => {
    const b = hex(
      '06 "pc.ram" 0000000008000000 0000000000000000 07 "pc.bios" 0000000000040000 00000000fffc0000 06 "pc.rom" 0000000000020000 00000000000c0000',
    );
    expect(decodeMemSizeList(new ByteReader(b), 0x8060000, { targetPageSize: 4096, ignoreShared: true })).toEqual([
      { name: 'pc.ram', usedLength: 0x8000000, mrAddr: 0 },
      { name: 'pc.bios', usedLength: 0x40000, mrAddr: 0xfffc0000 },
      { name: 'pc.rom', usedLength: 0x20000, mrAddr: 0xc0000 },
    ]);
  });

  it('recognises a postcopy huge-page block page_size from the ADVISE summary (holdout bytes)', () => {
    const b = hex(
      '03 "mem" 0000000004000000 0000000000200000 14 "/rom@etc/acpi/tables" 0000000000020000 0000000000000010',
    );
    const r = new ByteReader(b);
    expect(decodeMemSizeList(r, 0x4020000, { targetPageSize: 4096, postcopyPageSizeSummary: 0x201000 })).toEqual([
      { name: 'mem', usedLength: 0x4000000, pageSize: 0x200000 },
      { name: '/rom@etc/acpi/tables', usedLength: 0x20000 },
    ]);
    expect(r.remaining).toBe(8);
  });

  it('rejects lists that overrun their total, empty and duplicate names', () => {
    expect(
      catchStreamError(() =>
        decodeMemSizeList(new ByteReader(hex('03 "ram" 0000000000002000')), 0x1000, { targetPageSize: 4096 }),
      ).code,
    ).toBe('E_BAD_LENGTH');
    expect(
      catchStreamError(() =>
        decodeMemSizeList(new ByteReader(hex('00 0000000000001000')), 0x1000, { targetPageSize: 4096 }),
      ).code,
    ).toBe('E_BAD_RAM_BLOCK');
    const dup = hex('03 "ram" 0000000000001000 03 "ram" 0000000000001000');
    expect(catchStreamError(() => decodeMemSizeList(new ByteReader(dup), 0x2000, { targetPageSize: 4096 })).code).toBe(
      'E_BAD_RAM_BLOCK',
    );
    expect(
      catchStreamError(() => decodeMemSizeList(new ByteReader(hex('03 "ra"')), 0x1000, { targetPageSize: 4096 })).code,
    ).toBe('E_TRUNCATED');
  });

  it('property: lists round-trip', () => {
    const list = fc
      .uniqueArray(
        fc.record({
          name: fc.string({ minLength: 1, maxLength: 30, unit: fc.constantFrom(...'abc./0'.split('')) }),
          usedLength: fc.integer({ min: 1, max: 2 ** 40 }),
        }),
        { selector: (b) => b.name, maxLength: 8 },
      )
      .map((blocks) => ({ total: blocks.reduce((s, b) => s + b.usedLength, 0), blocks }));
    fc.assert(
      fc.property(list, fc.boolean(), (l, shared) => {
        const withAddr = { ...l, blocks: l.blocks.map((b, i) => (shared ? { ...b, mrAddr: i * 0x1000 } : b)) };
        const b = encodeMemSizeList(withAddr).written();
        const r = new ByteReader(b, 0, 8);
        expect(decodeMemSizeList(r, l.total, { targetPageSize: 4096, ignoreShared: shared })).toEqual(withAddr.blocks);
        expect(r.atEnd).toBe(true);
      }),
    );
  });

  it('property: arbitrary bytes decode or fail typed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat({ max: 2 ** 40 }), (b, total) => {
        try {
          decodeMemSizeList(new ByteReader(b), total, { targetPageSize: 4096, postcopyPageSizeSummary: 0x201000 });
        } catch (err) {
          expect(err).toBeInstanceOf(MigrationStreamError);
        }
      }),
    );
  });
});
