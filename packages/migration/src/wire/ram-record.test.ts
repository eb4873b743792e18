import { ByteWriter } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError, UnsupportedFeatureError } from '../errors.js';
import { catchStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import {
  encodeRamCompressed,
  encodeRamEos,
  encodeRamPage,
  encodeRamXbzrle,
  encodeRamZero,
  newRamRecordScan,
  type RamRecordScan,
  scanRamRecord,
} from './ram-record.js';

function scan(b: Uint8Array, tps = 4096): { n: number; s: RamRecordScan } {
  const s = newRamRecordScan();
  const n = scanRamRecord(b, new DataView(b.buffer, b.byteOffset, b.byteLength), 0, b.length, tps, 0, s);
  return { n, s };
}

describe('RAM records', () => {
  const page = new Uint8Array(4096).map((_, i) => i & 0xff);

  it('golden: first page of a block (PAGE, named)', () => {
    const head = hex('00 00 00 00 00 00 00 08 # offset 0 | PAGE\n 06 "pc.ram" # block name');
    const b = encodeRamPage(new ByteWriter(), 0, 'pc.ram', page).written();
    expect(b.subarray(0, 15)).toEqual(head);
    expect(b.subarray(15)).toEqual(page);
    const { n, s } = scan(b);
    expect(n).toBe(15 + 4096);
    expect(s).toMatchObject({
      kind: 'PAGE',
      flags: 0x08,
      value: 0,
      nameStart: 9,
      nameLength: 6,
      dataStart: 15,
      dataLength: 4096,
    });
  });

  it('golden: zero page in the same block (ZERO|CONTINUE, fill 0), and EOS', () => {
    const z = hex('00 00 00 00 00 00 10 22 # offset 0x1000 | ZERO | CONTINUE\n 00 # fill byte');
    expect(encodeRamZero(new ByteWriter(), 0x1000, undefined).written()).toEqual(z);
    expect(scan(z)).toMatchObject({ n: 9, s: { kind: 'ZERO', flags: 0x22, value: 0x1000, nameStart: -1, fill: 0 } });
    const eos = hex('00 00 00 00 00 00 00 10');
    expect(encodeRamEos(new ByteWriter()).written()).toEqual(eos);
    expect(scan(eos)).toMatchObject({ n: 8, s: { kind: 'EOS' } });
  });

  it('golden: captured XBZRLE record for pc.ram page 0x7fde000', () => {
    const b = hex(`
      00 00 00 00 07 fd e0 40   # offset 0x7fde000 | XBZRLE
      06 "pc.ram"               # block name
      01                        # ENCODING_FLAG_XBZRLE
      00 04                     # be16 length 4
      94 1e 01 a8               # zrun 3860, nzrun 1, byte 0xa8
    `);
    expect(encodeRamXbzrle(new ByteWriter(), 0x7fde000, 'pc.ram', hex('94 1e 01 a8')).written()).toEqual(b);
    expect(scan(b)).toMatchObject({
      n: b.length,
      s: { kind: 'XBZRLE', value: 0x7fde000, dataStart: 18, dataLength: 4 },
    });
  });

  it('COMPRESS_PAGE carries a be32 length', () => {
    const b = encodeRamCompressed(new ByteWriter(), 0x2000, undefined, hex('78 01 aa bb')).written();
    expect(b).toEqual(hex('0000000000002120 00000004 78 01 aa bb'));
    expect(scan(b)).toMatchObject({ n: 16, s: { kind: 'COMPRESS_PAGE', value: 0x2000, dataStart: 12, dataLength: 4 } });
  });

  it('asks for exactly the bytes it still needs when a record is incomplete', () => {
    const b = encodeRamPage(new ByteWriter(), 0x3000, 'pc.ram', page).written();
    const s = newRamRecordScan();
    const dv = new DataView(b.buffer, b.byteOffset);
    expect(scanRamRecord(b, dv, 0, 5, 4096, 0, s)).toBe(-8);
    expect(scanRamRecord(b, dv, 0, 8, 4096, 0, s)).toBe(-9);
    expect(scanRamRecord(b, dv, 0, 9, 4096, 0, s)).toBe(-(15 + 4096));
    expect(scanRamRecord(b, dv, 0, b.length, 4096, 0, s)).toBe(b.length);
    const x = hex('0000000000000060 01 00');
    expect(scanRamRecord(x, new DataView(x.buffer), 0, x.length, 4096, 0, s)).toBe(-11);
  });

  it('rejects invalid flag combinations, obsolete FULL and bad lengths', () => {
    for (const flags of ['0a', '01', '18', '0c', '03', '00']) {
      const e = catchStreamError(() => scan(hex(`00000000000010${flags} 00`)));
      expect(e.code).toBe('E_BAD_RAM_FLAGS');
    }
    expect(catchStreamError(() => scan(hex('0000000000000040 06 "pc.ram" 02 0001 00'))).code).toBe('E_XBZRLE');
    expect(catchStreamError(() => scan(hex('0000000000000060 01 1001'))).code).toBe('E_XBZRLE');
    expect(catchStreamError(() => scan(hex('0000000000000120 0000100f'))).code).toBe('E_COMPRESS');
    expect(catchStreamError(() => scan(hex('0000000000000008 00'))).code).toBe('E_BAD_RAM_BLOCK');
    expect(catchStreamError(() => scan(hex('0040000000000028'))).code).toBe('E_BAD_RAM_OFFSET');
  });

  it('reports HOOK (RDMA) and MULTIFD_FLUSH (8.1+) as unsupported features', () => {
    const flush = catchStreamError(() => scan(hex('0000000000000200')));
    expect(flush).toBeInstanceOf(UnsupportedFeatureError);
    expect((flush as UnsupportedFeatureError).feature).toBe('MULTIFD_FLUSH');
    expect((catchStreamError(() => scan(hex('0000000000000080'))) as UnsupportedFeatureError).feature).toBe(
      'RAM_SAVE_FLAG_HOOK',
    );
  });

  it('uses the target page size as the flag mask', () => {
    // With 1 KiB target pages the 0x400 bit is part of the offset.
    expect(scan(hex('0000000000000408'), 1024).s).toMatchObject({ kind: 'PAGE', value: 0x400 });
  });

  it('property: encoded records scan back to their fields', () => {
    const rec = fc.record({
      kind: fc.constantFrom('ZERO', 'PAGE', 'XBZRLE', 'COMPRESS_PAGE'),
      page: fc.nat({ max: 2 ** 40 }),
      block: fc.option(fc.string({ minLength: 1, maxLength: 40, unit: fc.constantFrom(...'abc./0'.split('')) }), {
        nil: undefined,
      }),
      data: fc.uint8Array({ maxLength: 64 }),
    });
    fc.assert(
      fc.property(rec, ({ kind, page: p, block, data }) => {
        const off = p * 4096;
        const w = new ByteWriter();
        if (kind === 'ZERO') encodeRamZero(w, off, block, data[0] ?? 0);
        else if (kind === 'PAGE') encodeRamPage(w, off, block, page);
        else if (kind === 'XBZRLE') encodeRamXbzrle(w, off, block, data);
        else encodeRamCompressed(w, off, block, data);
        const b = w.written();
        const { n, s } = scan(b);
        expect(n).toBe(b.length);
        expect(s.kind).toBe(kind);
        expect(s.value).toBe(off);
        expect(
          s.nameStart >= 0
            ? Buffer.from(b.subarray(s.nameStart, s.nameStart + s.nameLength)).toString('latin1')
            : undefined,
        ).toBe(block);
        if (kind === 'XBZRLE' || kind === 'COMPRESS_PAGE')
          expect(b.subarray(s.dataStart, s.dataStart + s.dataLength)).toEqual(data);
      }),
    );
  });

  it('property: arbitrary bytes scan, ask for more, or fail typed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 32 }), (b) => {
        try {
          const { n } = scan(b);
          expect(n === 0 ? 1 : Math.abs(n)).toBeGreaterThan(0);
        } catch (err) {
          expect(err).toBeInstanceOf(MigrationStreamError);
        }
      }),
    );
  });
});
