import { ByteReader, type VmdescDevice } from '@e2k-migrate/vmstate';
import { describe, expect, it } from 'vitest';
import { catchStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import { pyJsonDumps, toPlainJson } from './py-json.js';
import { decodeDeviceBody } from './vmdesc-decode.js';

describe('vmdesc-driven device decoding (analyze-migration.py -d state shape)', () => {
  const device: VmdescDevice = {
    name: 'dev',
    instance_id: 0,
    vmsd_name: 'dev',
    version: 1,
    fields: [
      { name: 's32', type: 'int32', size: 4 },
      { name: 'u32', type: 'uint32', size: 4 },
      { name: 'eq', type: 'uint8 equal', size: 1 },
      { name: 'le', type: 'int32 le', size: 4 },
      { name: 'flag', type: 'bool', size: 1 },
      { name: 'buf', type: 'buffer', size: 3 },
      { name: 't', type: 'timer', size: 8 },
      { name: 'arr', array_len: 3, type: 'uint16', size: 2 },
      {
        name: 'tmp',
        type: 'tmp',
        vmsd_name: 'x_tmp',
        version: 0,
        fields: [{ name: 'a', type: 'uint64', size: 8 }],
        size: 2,
      },
      {
        name: 'drives',
        index: 0,
        type: 'struct',
        struct: {
          vmsd_name: 'fdrive',
          version: 1,
          fields: [{ name: 'head', type: 'uint8', size: 1 }],
          subsections: [
            { vmsd_name: 'fdrive/media_rate', version: 1, fields: [{ name: 'media_rate', type: 'uint8', size: 1 }] },
          ],
        },
        size: 24,
      },
      {
        name: 'drives',
        index: 1,
        type: 'struct',
        struct: { vmsd_name: 'fdrive', version: 1, fields: [{ name: 'head', type: 'uint8', size: 1 }] },
        size: 1,
      },
    ],
    subsections: [{ vmsd_name: 'dev/extra', version: 1, fields: [{ name: 'x', type: 'int8', size: 1 }] }],
  };
  const body = hex(`
    fffffffe                        # s32 = -2
    ffffffff                        # u32
    80                              # uint8 equal: signed in the script's table
    00000002                        # int32 le (big-endian on the wire)
    02                              # bool: any non-zero is true
    61 62 63                        # buffer
    ffffffffffffffff                # timer: raw bytes
    0001 0002 0003                  # compressed array
    aa bb                           # tmp: raw bytes of its size
    07                              # drives[0].head
    05 11 "fdrive/media_rate" 00000001 09   # drives[0] subsection
    08                              # drives[1].head
    05 09 "dev/extra" 00000001 ff   # top-level subsection
  `);

  it('formats every kind of field as the script does', () => {
    const r = new ByteReader(body);
    const v = decodeDeviceBody(r, device);
    expect(r.atEnd).toBe(true);
    expect(toPlainJson(v)).toEqual({
      s32: '0xfffffffe (-2)',
      u32: '0xffffffff',
      eq: '0x80 (-128)',
      le: '0x00000002',
      flag: true,
      buf: '61 62 63',
      t: 'ff ff ff ff ff ff ff ff',
      arr: ['0x0001', '0x0002', '0x0003'],
      tmp: 'aa bb',
      drives: [{ head: '0x07', 'fdrive/media_rate': { media_rate: '0x09' } }, { head: '0x08' }],
      'dev/extra': { x: '0xff (-1)' },
    });
    expect(pyJsonDumps(v).split('\n')[1]).toBe('    "s32": "0xfffffffe (-2)",');
  });

  it('stops before bytes that are not one of its subsections (the footer)', () => {
    const r = new ByteReader(new Uint8Array([...body.subarray(0, body.length - 16), 0x7e, 0, 0, 0, 1]));
    decodeDeviceBody(r, device);
    expect(r.remaining).toBe(5);
  });

  it('rejects a subsection with the parent prefix that the vmdesc does not list', () => {
    const r = new ByteReader(
      new Uint8Array([...body.subarray(0, body.length - 16), ...hex('05 07 "dev/zzz" 00000001 00')]),
      100,
    );
    const e = catchStreamError(() => decodeDeviceBody(r, device));
    expect(e.code).toBe('E_DEVICE_DECODE');
    expect(e.offset).toBe(100 + body.length - 16);
  });

  it('rejects a vmdesc that cannot describe anything (bad sizes, absurd arrays)', () => {
    const bad = (f: object) =>
      catchStreamError(() =>
        decodeDeviceBody(new ByteReader(new Uint8Array(8)), { name: 'd', instance_id: 0, fields: [f] } as VmdescDevice),
      );
    expect(bad({ name: 'x', type: 'uint8', size: -1 }).code).toBe('E_BAD_VMDESC');
    expect(bad({ name: 'x', type: 'uint8', size: 1, array_len: 1e12 }).code).toBe('E_BAD_VMDESC');
    const zero = { name: 'z', type: 'buffer', size: 0 };
    const many = {
      name: 's',
      type: 'struct',
      array_len: 1 << 20,
      struct: { vmsd_name: 's', version: 1, fields: [zero, zero] },
      size: 0,
    };
    expect(bad(many).message).toMatch(/more than \d+ values/);
    expect(bad({ type: 'uint8', size: 1 }).code).toBe('E_BAD_VMDESC');
  });
});
