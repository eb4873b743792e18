import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeVmsd, encodeVmsd } from './codec.js';
import { ByteReader, ByteWriter } from './cursor.js';
import { TruncatedError, VmstateError } from './errors.js';
import { element, field, vmsd } from './schema.js';

/** A small device exercising every field kind, with two subsections and a nested struct. */
const point = vmsd({ name: 'point', version: 1, fields: [field.int16('x'), field.int16('y')] });
const media = vmsd({
  name: 'demo/media',
  version: 3,
  needed: (s: { media?: number }) => (s.media ?? 0) !== 0,
  fields: [field.uint8('media')],
});
const late = vmsd({
  name: 'demo/late',
  version: 1,
  needed: (s: { late?: bigint }) => s.late !== undefined,
  fields: [field.uint64('late')],
});
const demo = vmsd({
  name: 'demo',
  version: 3,
  minimumVersion: 1,
  fields: [
    field.bool('on'),
    field.int8('i8'),
    field.uint16('u16'),
    field.int32('i32'),
    field.uint32('magic', { check: 'equal' }),
    field.int64('i64'),
    field.unused(2),
    field.uint32('n'),
    field.array('regs', element.uint64, { field: 'n' }),
    field.buffer('blob', 3),
    field.struct('pos', point),
    field.array('pts', element.struct(point), 2),
    field.timer('deadline'),
    field.uint32('only_v3', { version: 3 }),
    field.uint8('env.flags'),
  ],
  subsections: [media, late],
});

const state = () => ({
  on: true,
  i8: -2,
  u16: 0x1234,
  i32: -1,
  magic: 0xcafe,
  i64: -3n,
  n: 2,
  regs: [0x1122334455667788n, 1n],
  blob: Uint8Array.from([0xaa, 0xbb, 0xcc]),
  pos: { x: 1, y: -1 },
  pts: [
    { x: 2, y: 3 },
    { x: 4, y: 5 },
  ],
  deadline: -1n,
  only_v3: 7,
  env: { flags: 0x80 },
  media: 9,
  late: undefined as bigint | undefined,
});

// biome-ignore format: one field per line, commented
const GOLDEN = [
  0x01, //                                         on: bool true
  0xfe, //                                         i8: -2
  0x12, 0x34, //                                   u16: 0x1234
  0xff, 0xff, 0xff, 0xff, //                       i32: -1
  0x00, 0x00, 0xca, 0xfe, //                       magic: uint32 equal 0xcafe
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, // i64: -3
  0x00, 0x00, //                                   unused(2)
  0x00, 0x00, 0x00, 0x02, //                       n: 2 (count of regs, sent as its own field)
  0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // regs[0]
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // regs[1]  (no count prefix)
  0xaa, 0xbb, 0xcc, //                             blob: buffer(3)
  0x00, 0x01, 0xff, 0xff, //                       pos: struct point {x: 1, y: -1}
  0x00, 0x02, 0x00, 0x03, 0x00, 0x04, 0x00, 0x05, // pts[0], pts[1]
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // deadline: timer not armed (-1)
  0x00, 0x00, 0x00, 0x07, //                       only_v3: present at version 3
  0x80, //                                         env.flags (dotted path)
  0x05, //                                         QEMU_VM_SUBSECTION
  0x0a, 0x64, 0x65, 0x6d, 0x6f, 0x2f, 0x6d, 0x65, 0x64, 0x69, 0x61, // idstr "demo/media"
  0x00, 0x00, 0x00, 0x03, //                       subsection version 3
  0x09, //                                         media: 9
  //                                               demo/late not needed: nothing written
];

describe('VMState codec', () => {
  it('encodes the golden bytes field by field', () => {
    expect([...encodeVmsd(demo, state()).finish()]).toEqual(GOLDEN);
  });

  it('decodes the golden bytes back into the state (round trip)', () => {
    const local = { magic: 0xcafe };
    const out = decodeVmsd(demo, new ByteReader(Uint8Array.from(GOLDEN)), 3, local);
    const { late: _late, ...expected } = state();
    expect(out).toEqual(expected);
  });

  it('leaves fields gated to a later version out, in both directions', () => {
    const v3 = vmsd({ ...demo, subsections: [] });
    // A writer at version 2 omits only_v3 (4 bytes); a version-3 loader reading a version-2 body skips it.
    const w = encodeVmsd(vmsd({ ...demo, version: 2, subsections: [] }), state()).finish();
    expect(w.length).toBe(encodeVmsd(v3, state()).length - 4);
    const r = new ByteReader(w);
    const decoded = decodeVmsd(v3, r, 2, { magic: 0xcafe, only_v3: 42 });
    expect(r.atEnd).toBe(true);
    expect(decoded.only_v3).toBe(42);
    expect(decoded.env).toEqual({ flags: 0x80 });
  });

  it('sends a subsection only when needed and reads it back', () => {
    const s = { ...state(), media: 0, late: 0x99n };
    const bytes = encodeVmsd(demo, s).finish();
    const tail = new TextDecoder('latin1').decode(bytes.subarray(bytes.length - 21));
    expect(tail).toContain('demo/late');
    const out = decodeVmsd(demo, new ByteReader(bytes), 3, { magic: 0xcafe, media: 5 });
    expect(out.late).toBe(0x99n);
    expect(out.media).toBe(5); // absent subsection keeps the local value
  });

  it('stops the subsection list at a byte that is not a subsection of this VMSD', () => {
    // footer-like byte after the body: not consumed
    const r = new ByteReader(Uint8Array.from([...GOLDEN, 0x7e, 0, 0, 0, 1]));
    decodeVmsd(demo, r, 3, { magic: 0xcafe });
    expect(r.remaining).toBe(5);
    // a subsection of another VMSD (prefix does not match): not consumed either
    const other = [0x05, 0x09, ...new TextEncoder().encode('other/abc'), 0, 0, 0, 1];
    const r2 = new ByteReader(Uint8Array.from([...GOLDEN, ...other]));
    decodeVmsd(demo, r2, 3, { magic: 0xcafe });
    expect(r2.remaining).toBe(other.length);
  });

  it('rejects an unknown subsection with our prefix, naming it and its offset', () => {
    const bad = [0x05, 0x0a, ...new TextEncoder().encode('demo/nope!'), 0, 0, 0, 1];
    const err = catchErr(() =>
      decodeVmsd(demo, new ByteReader(Uint8Array.from([...GOLDEN, ...bad])), 3, { magic: 0xcafe }),
    );
    expect(err.code).toBe('E_UNKNOWN_SUBSECTION');
    expect(err.what).toBe('demo/nope!');
    expect(err.offset).toBe(GOLDEN.length);
  });

  it('rejects versions outside [minimumVersion, version]', () => {
    expect(catchErr(() => decodeVmsd(demo, new ByteReader(Uint8Array.from(GOLDEN)), 4, {})).code).toBe('E_VERSION');
    expect(catchErr(() => decodeVmsd(demo, new ByteReader(Uint8Array.from(GOLDEN)), 0, {})).code).toBe('E_VERSION');
  });

  it('enforces `equal` and `le` load checks against the local value', () => {
    const err = catchErr(() => decodeVmsd(demo, new ByteReader(Uint8Array.from(GOLDEN)), 3, { magic: 1 }));
    expect(err.code).toBe('E_EQUAL_MISMATCH');
    expect(err.what).toBe('demo.magic');
    expect(err.offset).toBe(8);
    const le = vmsd({ name: 'le', version: 1, fields: [field.int32('version_id', { check: 'le' })] });
    expect(decodeVmsd(le, new ByteReader(Uint8Array.from([0, 0, 0, 2])), 1, { version_id: 2 }).version_id).toBe(2);
    expect(
      catchErr(() => decodeVmsd(le, new ByteReader(Uint8Array.from([0, 0, 0, 3])), 1, { version_id: 2 })).code,
    ).toBe('E_LE_RANGE');
  });

  it('reports truncation with the field path and offset, and never allocates a hostile count', () => {
    for (let cut = 0; cut < GOLDEN.length - 25; cut++) {
      const err = catchErr(() =>
        decodeVmsd(demo, new ByteReader(Uint8Array.from(GOLDEN.slice(0, cut))), 3, { magic: 0xcafe }),
      );
      expect(err).toBeInstanceOf(TruncatedError);
      expect(err.offset).toBeLessThanOrEqual(cut);
      expect(err.what).toMatch(/^demo\.|^point\./);
    }
    const counted = vmsd({
      name: 'c',
      version: 1,
      fields: [field.uint32('n'), field.array('a', element.uint64, { field: 'n' })],
    });
    const err = catchErr(() =>
      decodeVmsd(counted, new ByteReader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 1, 2])), 1, {}),
    );
    expect(err).toBeInstanceOf(TruncatedError);
    expect(err.what).toContain('4294967295 elements');
  });

  it('with `more`, asks for input instead of ending the subsection list early', () => {
    const err = catchErr(() =>
      decodeVmsd(demo, new ByteReader(Uint8Array.from(GOLDEN.slice(0, 64))), 3, { magic: 0xcafe }, { more: true }),
    );
    expect(err).toBeInstanceOf(TruncatedError);
    const full = encodeVmsd(demo, { ...state(), media: 0 }).finish();
    const err2 = catchErr(() => decodeVmsd(demo, new ByteReader(full), 3, { magic: 0xcafe }, { more: true }));
    expect(err2).toBeInstanceOf(TruncatedError);
    expect(err2.what).toBe('subsection probe');
  });

  it('rejects values that do not fit their field on encode', () => {
    expect(catchErr(() => encodeVmsd(demo, { ...state(), u16: 0x10000 })).code).toBe('E_BAD_VALUE');
    expect(catchErr(() => encodeVmsd(demo, { ...state(), i64: 1.5 })).code).toBe('E_BAD_VALUE');
    expect(catchErr(() => encodeVmsd(demo, { ...state(), regs: [1n] })).code).toBe('E_BAD_VALUE');
    expect(catchErr(() => encodeVmsd(demo, { ...state(), blob: new Uint8Array(2) })).code).toBe('E_BAD_VALUE');
  });

  it('rejects schemas QEMU could not load', () => {
    expect(() => vmsd({ name: 'x', version: 1, minimumVersion: 2, fields: [] })).toThrow(/minimumVersion/);
    expect(() =>
      vmsd({ name: 'x', version: 1, fields: [], subsections: [vmsd({ name: 'y/z', version: 1, fields: [] })] }),
    ).toThrow(/must be named "x\/…"/);
    expect(() =>
      vmsd({ name: 'x', version: 1, fields: [field.array('a', element.uint8, { field: 'later' })] }),
    ).toThrow(/declared earlier/);
  });

  it('round-trips random states (property)', () => {
    const i = (bits: number, signed: boolean) =>
      signed
        ? fc.integer({ min: -(2 ** (bits - 1)), max: 2 ** (bits - 1) - 1 })
        : fc.integer({ min: 0, max: 2 ** bits - 1 });
    const pt = fc.record({ x: i(16, true), y: i(16, true) });
    const arb = fc
      .record({
        on: fc.boolean(),
        i8: i(8, true),
        u16: i(16, false),
        i32: i(32, true),
        i64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        regs: fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { maxLength: 8 }),
        blob: fc.uint8Array({ minLength: 3, maxLength: 3 }),
        pos: pt,
        pts: fc.tuple(pt, pt),
        deadline: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        only_v3: i(32, false),
        env: fc.record({ flags: i(8, false) }),
        media: i(8, false),
        late: fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { nil: undefined }),
      })
      .map((s) => ({ ...s, magic: 0xcafe, n: s.regs.length }));
    fc.assert(
      fc.property(arb, (s) => {
        const bytes = encodeVmsd(demo, s).finish();
        const out = decodeVmsd(demo, new ByteReader(bytes), 3, { magic: 0xcafe, media: s.media, late: s.late });
        expect(out).toEqual({ ...s, pts: [...s.pts] });
        expect(encodeVmsd(demo, out, new ByteWriter()).finish()).toEqual(bytes);
      }),
    );
  });
});

function catchErr(fn: () => unknown): VmstateError {
  try {
    fn();
  } catch (e) {
    if (e instanceof VmstateError) return e;
    throw e;
  }
  throw new Error('expected a VmstateError');
}
