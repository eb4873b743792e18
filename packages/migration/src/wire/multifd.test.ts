import { ByteReader } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError, UnsupportedFeatureError } from '../errors.js';
import { catchStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import {
  decodeMultifdInit,
  decodeMultifdPacketHeader,
  encodeMultifdInit,
  encodeMultifdPacketHeader,
  type MultifdPacketHeader,
  multifdHeaderSize,
  multifdPayloadLength,
} from './multifd.js';

describe('multifd', () => {
  it('init packet golden bytes (every fixture channel)', () => {
    const golden = hex(`
      11223344                           # MULTIFD_MAGIC
      00000001                           # version 1
      00000000000000000000000000000000   # uuid (no -uuid)
      01                                 # channel id 1
      ${'00'.repeat(39)}                 # reserved
    `);
    expect(golden.length).toBe(64);
    expect(encodeMultifdInit({ uuid: new Uint8Array(16), id: 1 }).written()).toEqual(golden);
    expect(decodeMultifdInit(new ByteReader(golden))).toMatchObject({ id: 1, uuid: new Uint8Array(16) });
  });

  const header: MultifdPacketHeader = {
    flags: 1,
    pagesAlloc: 128,
    normalPages: 2,
    nextPacketSize: 8192,
    packetNum: 11,
    block: 'pc.ram',
    offsets: [0x1ef0000, 0],
  };

  it('packet header: 1344 bytes for 4 KiB pages, fields at their offsets', () => {
    expect(multifdHeaderSize(4096)).toBe(1344);
    const b = encodeMultifdPacketHeader(header, 4096).written();
    expect(b.length).toBe(1344);
    expect(b.subarray(0, 32)).toEqual(
      hex(`
        11223344 00000001          # magic, version
        00000001                   # flags: SYNC
        00000080                   # pages_alloc 128
        00000002                   # normal_pages 2
        00002000                   # next_packet_size 8192
        000000000000000b           # packet_num 11
      `),
    );
    expect(Buffer.from(b.subarray(64, 71)).toString('latin1')).toBe('pc.ram\0');
    expect(b.subarray(320, 336)).toEqual(hex('0000000001ef0000 0000000000000000'));
    const d = decodeMultifdPacketHeader(new ByteReader(b), 4096);
    expect(d).toMatchObject({ ...header });
    expect(multifdPayloadLength(d, 4096)).toBe(8192);
    expect(encodeMultifdPacketHeader(d, 4096).written()).toEqual(b);
  });

  it('empty packets carry no payload even with a stale next_packet_size (7.2)', () => {
    const b = encodeMultifdPacketHeader(
      { ...header, flags: 0, normalPages: 0, offsets: [], nextPacketSize: 524288 },
      4096,
    ).written();
    expect(multifdPayloadLength(decodeMultifdPacketHeader(new ByteReader(b), 4096), 4096)).toBe(0);
  });

  it('rejects bad magic, version, pages_alloc, normal_pages and unknown flags', () => {
    const good = encodeMultifdPacketHeader(header, 4096).written();
    const patch = (at: number, v: number) => {
      const b = good.slice();
      new DataView(b.buffer).setUint32(at, v);
      return decodeMultifdPacketHeader(new ByteReader(b, 1000), 4096);
    };
    expect(catchStreamError(() => patch(0, 0x11223345))).toMatchObject({ code: 'E_BAD_MAGIC', offset: 1000 });
    expect(catchStreamError(() => patch(4, 2))).toMatchObject({ code: 'E_BAD_VERSION', offset: 1004 });
    expect(catchStreamError(() => patch(12, 129)).code).toBe('E_MULTIFD');
    expect(catchStreamError(() => patch(16, 129)).code).toBe('E_MULTIFD');
    expect(catchStreamError(() => patch(8, 0x0e)).code).toBe('E_MULTIFD');
    expect(catchStreamError(() => patch(8, 0x81)).code).toBe('E_MULTIFD');
  });

  it('reports later-QEMU packet layouts as unsupported features', () => {
    const good = encodeMultifdPacketHeader(header, 4096).written();
    const patch = (at: number, v: number) => {
      const b = good.slice();
      new DataView(b.buffer).setUint32(at, v);
      return decodeMultifdPacketHeader(new ByteReader(b), 4096);
    };
    for (const [at, v, feature] of [
      [32, 5, 'multifd zero_pages'],
      [8, 0x40, 'multifd device state'],
      [8, 0x08, 'multifd-compression qpl'],
      [8, 0x10, 'multifd-compression uadk'],
      [8, 0x20, 'multifd-compression qatzip'],
    ] as const) {
      const e = catchStreamError(() => patch(at, v));
      expect(e).toBeInstanceOf(UnsupportedFeatureError);
      expect((e as UnsupportedFeatureError).feature).toBe(feature);
    }
  });

  it('property: headers round-trip', () => {
    const h = fc.nat({ max: 128 }).chain((n) =>
      fc.record({
        flags: fc.constantFrom(0, 1, 2, 3, 4, 5),
        pagesAlloc: fc.constant(128),
        normalPages: fc.constant(n),
        nextPacketSize: fc.nat({ max: 0xffffffff }),
        packetNum: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        block: fc.string({ maxLength: 255, unit: fc.constantFrom(...'abc./0'.split('')) }),
        offsets: fc.array(fc.nat({ max: 2 ** 40 }), { minLength: n, maxLength: n }),
      }),
    );
    fc.assert(
      fc.property(h, (x) => {
        expect(
          decodeMultifdPacketHeader(new ByteReader(encodeMultifdPacketHeader(x, 4096).written()), 4096),
        ).toMatchObject(x);
      }),
      { numRuns: 50 },
    );
  });

  it('property: arbitrary headers decode or fail typed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 1344 }), (b) => {
        const x = new Uint8Array(1344);
        x.set(hex('11223344 00000001'));
        x.set(b.subarray(0, 1336), 8);
        try {
          decodeMultifdPacketHeader(new ByteReader(x), 4096);
        } catch (err) {
          expect(err).toBeInstanceOf(MigrationStreamError);
        }
      }),
      { numRuns: 50 },
    );
  });
});
