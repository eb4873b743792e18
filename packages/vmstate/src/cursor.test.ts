import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from './cursor.js';
import { TruncatedError, VmstateError } from './errors.js';

describe('ByteReader', () => {
  it('reads big-endian and little-endian integers at the right offsets', () => {
    const bytes = Uint8Array.from([
      0x51,
      0x45,
      0x56,
      0x4d, // u32be "QEVM" magic = 0x5145564d
      0x00,
      0x03, // u16be 3
      0xff,
      0xfe, // i16be -2
      0x00,
      0x00,
      0x00,
      0x00,
      0x09,
      0x0d,
      0x20,
      0x04, // u64be 0x090d2004
      0x34,
      0x12, // u16le 0x1234
      0x03,
      0x72,
      0x61,
      0x6d, // idstr "ram"
    ]);
    const r = new ByteReader(bytes, 100);
    expect(r.u32be()).toBe(0x5145564d);
    expect(r.u16be()).toBe(3);
    expect(r.i16be()).toBe(-2);
    expect(r.offset).toBe(108);
    expect(r.u64beNumber()).toBe(0x090d2004);
    expect(r.u16le()).toBe(0x1234);
    expect(r.idstr()).toBe('ram');
    expect(r.atEnd).toBe(true);
  });

  it('throws TruncatedError naming what, the absolute offset and the shortfall', () => {
    const r = new ByteReader(Uint8Array.from([1, 2, 3]), 1000);
    r.u8();
    try {
      r.u32be('section_id');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TruncatedError);
      const t = e as TruncatedError;
      expect(t.code).toBe('E_TRUNCATED');
      expect(t.offset).toBe(1001);
      expect(t.what).toBe('section_id');
      expect(t.needed).toBe(4);
      expect(t.available).toBe(2);
    }
    // nothing was consumed by the failed read
    expect(r.u16be()).toBe(0x0203);
  });

  it('rejects an idstr whose length runs past the end', () => {
    const r = new ByteReader(Uint8Array.from([0x10, 0x61, 0x62]));
    expect(() => r.idstr('block name')).toThrow(/block name at byte offset 1: need 16/);
  });

  it('refuses 64-bit values beyond 2^53 as numbers', () => {
    const r = new ByteReader(Uint8Array.from([0x00, 0x20, 0, 0, 0, 0, 0, 0]));
    expect(() => r.u64beNumber('length')).toThrow(VmstateError);
    expect(new ByteReader(Uint8Array.from([0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).u64beNumber()).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });

  it('sub-readers share absolute offsets and bounds', () => {
    const r = new ByteReader(new Uint8Array(10), 50);
    r.skip(2);
    const s = r.sub(4);
    expect(s.offset).toBe(52);
    s.skip(4);
    expect(() => s.u8()).toThrow(TruncatedError);
    expect(r.offset).toBe(56);
  });
});

describe('ByteWriter', () => {
  it('writes what the reader reads (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ k: fc.constant('u8' as const), v: fc.integer({ min: 0, max: 0xff }) }),
            fc.record({ k: fc.constant('u16be' as const), v: fc.integer({ min: 0, max: 0xffff }) }),
            fc.record({ k: fc.constant('i32be' as const), v: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
            fc.record({ k: fc.constant('u32be' as const), v: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
            fc.record({ k: fc.constant('u64be' as const), v: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
            fc.record({ k: fc.constant('i64be' as const), v: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
            fc.record({ k: fc.constant('idstr' as const), v: fc.string({ maxLength: 40, unit: 'binary-ascii' }) }),
          ),
        ),
        (ops) => {
          const w = new ByteWriter(1);
          for (const op of ops) (w[op.k] as (v: unknown) => ByteWriter)(op.v);
          const r = new ByteReader(w.finish());
          for (const op of ops) expect((r[op.k] as () => unknown).call(r)).toEqual(op.v);
          expect(r.atEnd).toBe(true);
        },
      ),
    );
  });

  it('rejects out-of-range values instead of wrapping', () => {
    const w = new ByteWriter();
    expect(() => w.u8(256)).toThrow(VmstateError);
    expect(() => w.u32be(-1)).toThrow(VmstateError);
    expect(() => w.u64be(-1n)).toThrow(VmstateError);
    expect(() => w.idstr('x'.repeat(256))).toThrow(/longer than 255/);
    expect(w.length).toBe(0);
  });
});
