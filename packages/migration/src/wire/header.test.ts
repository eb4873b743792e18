import { ByteReader, ByteWriter } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError } from '../errors.js';
import { catchStreamError as catchErr } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import { decodeHeader, encodeHeader } from './header.js';

describe('file header', () => {
  const golden = hex(`
    51 45 56 4d   # QEMU_VM_FILE_MAGIC "QEVM"
    00 00 00 03   # QEMU_VM_FILE_VERSION 3
  `);

  it('encodes the golden bytes every fixture starts with', () => {
    expect(encodeHeader().written()).toEqual(golden);
  });

  it('round-trips', () => {
    expect(decodeHeader(new ByteReader(golden))).toEqual({ magic: 0x5145564d, version: 3 });
  });

  it('rejects a wrong magic with its offset', () => {
    const e = catchErr(() => decodeHeader(new ByteReader(hex('51 45 56 4e 00 00 00 03'))));
    expect(e.code).toBe('E_BAD_MAGIC');
    expect(e.offset).toBe(0);
  });

  it('rejects the obsolete version 2 and unknown versions', () => {
    const v2 = catchErr(() => decodeHeader(new ByteReader(hex('51 45 56 4d 00 00 00 02'))));
    expect(v2.code).toBe('E_BAD_VERSION');
    expect(v2.message).toMatch(/obsolete/);
    expect(v2.offset).toBe(4);
    expect(catchErr(() => decodeHeader(new ByteReader(hex('51 45 56 4d 00 00 00 04')))).code).toBe('E_BAD_VERSION');
  });

  it('reports truncation as a typed error', () => {
    const e = catchErr(() => decodeHeader(new ByteReader(hex('51 45 56'))));
    expect(e.code).toBe('E_TRUNCATED');
    expect(e.offset).toBe(0);
  });

  it('property: any 8 bytes decode to the header or a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 8 }), (b) => {
        try {
          const h = decodeHeader(new ByteReader(b));
          expect(new ByteWriter().u32be(h.magic).u32be(h.version).written()).toEqual(b);
        } catch (err) {
          expect(err).toBeInstanceOf(MigrationStreamError);
        }
      }),
    );
  });
});
