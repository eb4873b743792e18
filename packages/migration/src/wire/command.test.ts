import { ByteReader } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError, UnsupportedFeatureError } from '../errors.js';
import { catchStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import { decodeCommandBody, encodeCommand, encodePackaged, type MigCommand } from './command.js';

const dec = (b: Uint8Array) => decodeCommandBody(new ByteReader(b, 0, 1));

describe('QEMU_VM_COMMAND', () => {
  // Spec §8.1, verified on the postcopy fixture's main channel.
  const golden: [MigCommand, Uint8Array][] = [
    [{ cmd: 'OPEN_RETURN_PATH' }, hex('08 0001 0000')],
    [{ cmd: 'PING', value: 1 }, hex('08 0002 0004 00000001')],
    [
      { cmd: 'POSTCOPY_ADVISE', pageSizeSummary: 4096, targetPageSize: 4096 },
      hex(
        '08 0003 0010 # ADVISE, 16 bytes\n 0000000000001000 # page-size summary\n 0000000000001000 # target page size',
      ),
    ],
    [
      {
        cmd: 'POSTCOPY_RAM_DISCARD',
        version: 0,
        block: 'pc.ram',
        ranges: [
          { start: 0, length: 0x1000 },
          { start: 0x100000, length: 0x1e00000 },
        ],
      },
      hex(`
        08 0006 0029                        # DISCARD, 41 bytes
        00                                  # version 0
        06 "pc.ram" 00                      # block name + NUL
        0000000000000000 0000000000001000   # [0, 0x1000)
        0000000000100000 0000000001e00000   # [1 MiB, +30 MiB)
      `),
    ],
    [{ cmd: 'PACKAGED', length: 0x348f }, hex('08 0007 0004 0000348f')],
    [{ cmd: 'POSTCOPY_LISTEN' }, hex('08 0004 0000')],
    [{ cmd: 'POSTCOPY_RUN' }, hex('08 0005 0000')],
    [{ cmd: 'ENABLE_COLO' }, hex('08 0008 0000')],
    [{ cmd: 'POSTCOPY_RESUME' }, hex('08 0009 0000')],
    [{ cmd: 'RECV_BITMAP', block: 'pc.ram' }, hex('08 000a 0007 06 "pc.ram"')],
    [{ cmd: 'POSTCOPY_ADVISE' }, hex('08 0003 0000')],
  ];

  it('encodes and decodes the golden bytes', () => {
    for (const [c, b] of golden) {
      expect(encodeCommand(c).written()).toEqual(b);
      expect(dec(b)).toEqual(c);
    }
  });

  it('writes a package after its PACKAGED command', () => {
    const pkg = hex('08 0004 0000 08 0005 0000');
    expect(encodePackaged(pkg).written()).toEqual(hex('08 0007 0004 0000000a 08 0004 0000 08 0005 0000'));
  });

  it('rejects command 0, numbers past 7.2, and wrong fixed lengths', () => {
    expect(catchStreamError(() => dec(hex('08 0000 0000'))).code).toBe('E_BAD_COMMAND');
    expect(catchStreamError(() => dec(hex('08 000c 0000'))).code).toBe('E_BAD_COMMAND');
    const ping = catchStreamError(() => dec(hex('08 0002 0005 0000000100')));
    expect(ping.code).toBe('E_BAD_COMMAND');
    expect(ping.offset).toBe(1);
    expect(catchStreamError(() => dec(hex('08 0003 0008 0000000000001000'))).code).toBe('E_BAD_COMMAND');
  });

  it('reports SWITCHOVER_START (10.0+) as an unsupported feature', () => {
    const e = catchStreamError(() => decodeCommandBody(new ByteReader(hex('08 000b 0000'), 500, 1)));
    expect(e).toBeInstanceOf(UnsupportedFeatureError);
    expect(e).toMatchObject({ code: 'E_UNSUPPORTED_FEATURE', feature: 'SWITCHOVER_START', offset: 501 });
  });

  it('rejects malformed discards', () => {
    expect(
      catchStreamError(() => dec(hex('08 0006 0019 01 06 "pc.ram" 00 0000000000000000 0000000000001000'))).code,
    ).toBe('E_BAD_COMMAND');
    expect(
      catchStreamError(() => dec(hex('08 0006 0019 00 06 "pc.ram" 01 0000000000000000 0000000000001000'))).code,
    ).toBe('E_BAD_COMMAND');
    expect(catchStreamError(() => dec(hex('08 0006 0009 00 06 "pc.ram" 00'))).code).toBe('E_BAD_COMMAND');
    expect(catchStreamError(() => dec(hex('08 0006 0011 00 06 "pc.ram" 00 00000000 00000000'))).code).toBe(
      'E_BAD_COMMAND',
    );
    expect(catchStreamError(() => dec(hex('08 0006 0003 00 20 "pc"'))).code).toBe('E_BAD_COMMAND');
    expect(catchStreamError(() => dec(hex('08 000a 0003 06 "pc"'))).code).toBe('E_BAD_COMMAND');
  });

  it('reports a payload longer than the input as truncation', () => {
    expect(catchStreamError(() => dec(hex('08 0002 0004 0000'))).code).toBe('E_TRUNCATED');
  });

  it('property: commands round-trip', () => {
    const name = fc.string({ minLength: 1, maxLength: 40, unit: fc.constantFrom(...'abc.-/0123'.split('')) });
    const u53 = fc.nat({ max: Number.MAX_SAFE_INTEGER });
    const cmd: fc.Arbitrary<MigCommand> = fc.oneof(
      fc.constantFrom<MigCommand>(
        { cmd: 'OPEN_RETURN_PATH' },
        { cmd: 'POSTCOPY_LISTEN' },
        { cmd: 'POSTCOPY_RUN' },
        { cmd: 'ENABLE_COLO' },
        { cmd: 'POSTCOPY_RESUME' },
      ),
      fc.record({ cmd: fc.constant('PING' as const), value: fc.nat({ max: 0xffffffff }) }),
      fc.record({ cmd: fc.constant('POSTCOPY_ADVISE' as const), pageSizeSummary: u53, targetPageSize: u53 }),
      fc.record({ cmd: fc.constant('PACKAGED' as const), length: fc.nat({ max: 0xffffffff }) }),
      fc.record({ cmd: fc.constant('RECV_BITMAP' as const), block: name }),
      fc.record({
        cmd: fc.constant('POSTCOPY_RAM_DISCARD' as const),
        version: fc.constant(0),
        block: name,
        ranges: fc.array(fc.record({ start: u53, length: u53 }), { minLength: 1, maxLength: 12 }),
      }),
    );
    fc.assert(
      fc.property(cmd, (c) => {
        expect(dec(encodeCommand(c).written())).toEqual(c);
      }),
    );
  });

  it('property: arbitrary payloads decode or fail typed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 12 }), fc.uint8Array({ maxLength: 40 }), (num, payload) => {
        const b = new Uint8Array([8, 0, num, 0, payload.length, ...payload]);
        try {
          dec(b);
        } catch (err) {
          expect(err).toBeInstanceOf(MigrationStreamError);
        }
      }),
    );
  });
});
