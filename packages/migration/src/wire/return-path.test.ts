import { ByteReader } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError, UnsupportedFeatureError } from '../errors.js';
import { catchStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import {
  decodeRpMessage,
  encodeRpMessage,
  type RpMessage,
  recvBitmapSet,
  recvBitmapSize,
  recvBitmapTest,
} from './return-path.js';

const dec = (b: Uint8Array) => decodeRpMessage(new ByteReader(b));

describe('return-path messages', () => {
  // Spec §8.2 (captured RP of a postcopy run).
  const golden: [RpMessage, Uint8Array][] = [
    [{ type: 'PONG', value: 1 }, hex('0002 0004 00000001')],
    [
      { type: 'REQ_PAGES_ID', start: 0x7f3f000, length: 0x1000, block: 'pc.ram' },
      hex('0003 0013 # REQ_PAGES_ID, 19 bytes\n 0000000007f3f000 # start\n 00001000 # length\n 06 "pc.ram"'),
    ],
    [{ type: 'REQ_PAGES', start: 0x100000, length: 0x1000 }, hex('0004 000c 0000000000100000 00001000')],
    [{ type: 'SHUT', value: 0 }, hex('0001 0004 00000000')],
    [{ type: 'RESUME_ACK', value: 1 }, hex('0006 0004 00000001')],
    [
      { type: 'RECV_BITMAP', block: 'mem', bitmap: hex('ff 01 00 00 00 00 00 80') },
      hex(`
        0005 0004 03 "mem"          # RECV_BITMAP, name
        0000000000000008            # blob size
        ff 01 00 00 00 00 00 80     # pages 0-8 and 63 received
        0123456789abcdef            # end mark
      `),
    ],
  ];

  it('encodes and decodes the golden bytes', () => {
    for (const [m, b] of golden) {
      expect(encodeRpMessage(m).written()).toEqual(b);
      expect(dec(b)).toEqual(m);
    }
  });

  it('rejects type 0, unknown types, oversized and wrong-length messages', () => {
    expect(catchStreamError(() => dec(hex('0000 0000'))).code).toBe('E_BAD_RP_MESSAGE');
    expect(catchStreamError(() => dec(hex('0008 0000'))).code).toBe('E_BAD_RP_MESSAGE');
    expect(catchStreamError(() => dec(hex('0002 0005 0000000100'))).code).toBe('E_BAD_RP_MESSAGE');
    expect(catchStreamError(() => dec(new Uint8Array([0, 3, 2, 1, ...new Uint8Array(513)]))).code).toBe(
      'E_BAD_RP_MESSAGE',
    );
    expect(catchStreamError(() => dec(hex('0006 0004 00000002'))).code).toBe('E_BAD_RP_MESSAGE');
    expect(catchStreamError(() => dec(hex('0003 0013 0000000007f3f000 00001000 07 "pc.ram"'))).code).toBe(
      'E_BAD_RP_MESSAGE',
    );
    const mark = catchStreamError(() =>
      dec(hex('0005 0004 03 "mem" 0000000000000008 0000000000000000 0123456789abcdee')),
    );
    expect(mark).toMatchObject({ code: 'E_BAD_RP_MESSAGE', offset: 24 });
  });

  it('reports SWITCHOVER_ACK (8.1+) as unsupported', () => {
    const e = catchStreamError(() => dec(hex('0007 0000')));
    expect(e).toBeInstanceOf(UnsupportedFeatureError);
    expect((e as UnsupportedFeatureError).feature).toBe('SWITCHOVER_ACK');
  });

  it('RECV_BITMAP blob helpers: one bit per page, LSB first, size rounded to 8 bytes', () => {
    expect(recvBitmapSize(8192)).toBe(1024);
    expect(recvBitmapSize(65)).toBe(16);
    const b = new Uint8Array(recvBitmapSize(70));
    recvBitmapSet(b, 0);
    recvBitmapSet(b, 69);
    expect(b[0]).toBe(1);
    expect(b[8]).toBe(0x20);
    expect(recvBitmapTest(b, 69)).toBe(true);
    expect(recvBitmapTest(b, 68)).toBe(false);
  });

  it('property: messages round-trip', () => {
    const name = fc.string({ minLength: 1, maxLength: 30, unit: fc.constantFrom(...'abc.-/0'.split('')) });
    const m: fc.Arbitrary<RpMessage> = fc.oneof(
      fc.record({ type: fc.constantFrom('SHUT' as const, 'PONG' as const), value: fc.nat({ max: 0xffffffff }) }),
      fc.record({
        type: fc.constant('REQ_PAGES_ID' as const),
        start: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        length: fc.nat({ max: 0xffffffff }),
        block: name,
      }),
      fc.record({
        type: fc.constant('REQ_PAGES' as const),
        start: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        length: fc.nat({ max: 0xffffffff }),
      }),
      fc.record({
        type: fc.constant('RECV_BITMAP' as const),
        block: name,
        bitmap: fc.nat({ max: 8 }).chain((n) => fc.uint8Array({ minLength: 8 * n, maxLength: 8 * n })),
      }),
      fc.constant<RpMessage>({ type: 'RESUME_ACK', value: 1 }),
    );
    fc.assert(
      fc.property(m, (x) => {
        expect(dec(encodeRpMessage(x).written())).toEqual(x);
      }),
    );
  });

  it('property: arbitrary bytes decode or fail typed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), (b) => {
        try {
          dec(b);
        } catch (err) {
          expect(err).toBeInstanceOf(MigrationStreamError);
        }
      }),
    );
  });
});
