import { ByteReader, ByteWriter } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { catchStreamError as catchErr } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import {
  decodeFooter,
  decodeSectionHeaderBody,
  encodeFooter,
  encodeSectionHeader,
  type SectionHeader,
} from './section.js';

describe('section headers and footer', () => {
  // Spec §12: the ram START section of a -M pc stream.
  const start = hex(`
    01            # QEMU_VM_SECTION_START
    00 00 00 02   # section_id 2
    03 "ram"      # idstr
    00 00 00 00   # instance_id 0
    00 00 00 04   # version_id 4
  `);
  // Spec §12: globalstate FULL header.
  const full = hex('04 0000002c 0b "globalstate" 00000000 00000001');

  it('encodes golden START/FULL/PART headers and the footer', () => {
    expect(
      encodeSectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 }).written(),
    ).toEqual(start);
    expect(
      encodeSectionHeader({ kind: 'FULL', sectionId: 44, idstr: 'globalstate', instanceId: 0, versionId: 1 }).written(),
    ).toEqual(full);
    expect(encodeSectionHeader({ kind: 'PART', sectionId: 2 }).written()).toEqual(hex('02 00000002'));
    expect(encodeFooter(2).written()).toEqual(hex('7e 00000002'));
  });

  it('decodes them back', () => {
    const r = new ByteReader(start, 0, 1);
    expect(decodeSectionHeaderBody(1, r)).toEqual({
      kind: 'START',
      sectionId: 2,
      idstr: 'ram',
      instanceId: 0,
      versionId: 4,
    });
    expect(r.atEnd).toBe(true);
    expect(decodeSectionHeaderBody(3, new ByteReader(hex('00000002')))).toEqual({ kind: 'END', sectionId: 2 });
  });

  it('rejects a missing or foreign footer with offset and section', () => {
    const wrongByte = catchErr(() => decodeFooter(new ByteReader(hex('00 00000002'), 100), 2, 'ram (2)'));
    expect(wrongByte.code).toBe('E_FOOTER_MISMATCH');
    expect(wrongByte.offset).toBe(100);
    expect(wrongByte.section).toBe('ram (2)');
    const wrongId = catchErr(() => decodeFooter(new ByteReader(hex('7e 00000003')), 2, 'ram (2)'));
    expect(wrongId.code).toBe('E_FOOTER_MISMATCH');
    expect(catchErr(() => decodeFooter(new ByteReader(hex('7e 0000')), 2, 'ram (2)')).code).toBe('E_TRUNCATED');
  });

  it('property: headers round-trip', () => {
    const header = fc.oneof(
      fc.record({
        kind: fc.constantFrom('START' as const, 'FULL' as const),
        sectionId: fc.nat({ max: 0xffffffff }),
        idstr: fc.string({ minLength: 0, maxLength: 255, unit: fc.constantFrom(...'abcxyz0123:/.-_'.split('')) }),
        instanceId: fc.nat({ max: 0xffffffff }),
        versionId: fc.nat({ max: 0xffffffff }),
      }),
      fc.record({ kind: fc.constantFrom('PART' as const, 'END' as const), sectionId: fc.nat({ max: 0xffffffff }) }),
    );
    fc.assert(
      fc.property(header, (h: SectionHeader) => {
        const b = encodeSectionHeader(h, new ByteWriter()).written();
        expect(decodeSectionHeaderBody(b[0] as 1 | 2 | 3 | 4, new ByteReader(b, 0, 1))).toEqual(h);
      }),
    );
  });
});
