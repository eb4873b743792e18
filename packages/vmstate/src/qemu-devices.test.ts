import { readFixture } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import { decodeVmsd, encodeVmsd } from './codec.js';
import { ByteReader } from './cursor.js';
import { element, field, type Vmsd, vmsd } from './schema.js';
import { describeDevice, formatVmdesc, parseVmdesc } from './vmdesc.js';

/**
 * Real QEMU 7.2 device sections (idle-pc-64M, `-M pc-i440fx-7.2`) described with the DSL: decoding
 * their bytes and encoding the result gives the same bytes, and the vmdesc the DSL derives equals
 * the one QEMU wrote into the stream.
 */
const stream = readFixture('idle-pc-64M/idle-pc-64M.mig');

const timer = vmsd({
  name: 'timer',
  version: 2,
  minimumVersion: 1,
  fields: [field.int64('cpu_ticks_offset'), field.unused(8), field.int64('cpu_clock_offset', { version: 2 })],
});

const globalstate = vmsd({
  name: 'globalstate',
  version: 1,
  fields: [field.uint32('size'), field.buffer('runstate', 100)],
});

const fdriveMediaRate = vmsd({ name: 'fdrive/media_rate', version: 1, fields: [field.uint8('media_rate')] });
const fdrive = vmsd({
  name: 'fdrive',
  version: 1,
  fields: [field.uint8('head'), field.uint8('track'), field.uint8('sect')],
  subsections: [fdriveMediaRate],
});
const fdcInner = vmsd({
  name: 'fdc',
  version: 2,
  fields: [
    ...['sra', 'srb', 'dor_vmstate', 'tdr', 'dsr', 'msr', 'status0', 'status1', 'status2'].map((n) => field.uint8(n)),
    field.array('fifo', element.uint8, 512),
    field.uint32('data_pos'),
    field.uint32('data_len'),
    ...['data_state', 'data_dir', 'eot', 'timer0', 'timer1', 'precomp_trk', 'config', 'lock', 'pwrd'].map((n) =>
      field.uint8(n),
    ),
    field.uint8('num_floppies', { check: 'equal' }),
    field.array('drives', element.struct(fdrive), 2),
  ],
});
const fdc = vmsd({ name: 'fdc', version: 2, fields: [field.struct('state', fdcInner)] });

const isVersion1 = (_s: unknown, v: number) => v === 1;
const fwCfg = vmsd({
  name: 'fw_cfg',
  version: 2,
  minimumVersion: 1,
  fields: [
    field.uint16('cur_entry'),
    field.uint16('cur_offset', { exists: isVersion1 }),
    field.uint32('cur_offset', { version: 2 }),
  ],
  subsections: [
    vmsd({ name: 'fw_cfg/dma', version: 0, fields: [field.uint64('dma_addr')] }),
    vmsd({
      name: 'fw_cfg/acpi_mr',
      version: 1,
      fields: [field.uint64('table_mr_size'), field.uint64('linker_mr_size'), field.uint64('rsdp_mr_size')],
    }),
  ],
});

const rtc = vmsd({
  name: 'mc146818rtc',
  version: 3,
  minimumVersion: 1,
  fields: [
    field.buffer('cmos_data', 128),
    field.uint8('cmos_index'),
    field.unused(28),
    field.timer('periodic_timer'),
    field.int64('next_periodic_time'),
    field.unused(24),
    field.uint32('irq_coalesced', { version: 2 }),
    field.uint32('period', { version: 2 }),
    field.uint64('base_rtc', { version: 3 }),
    field.uint64('last_update', { version: 3 }),
    field.int64('offset', { version: 3 }),
    field.timer('update_timer', { version: 3 }),
    field.uint64('next_alarm_time', { version: 3 }),
  ],
});

/** Finds FULL section `idstr` (instance 0) and returns its id, version and body offset. */
function findFull(idstr: string): { id: number; version: number; body: number } {
  const name = new TextEncoder().encode(idstr);
  const needle = Uint8Array.from([name.length, ...name, 0, 0, 0, 0]);
  for (let i = 5; i < stream.length - needle.length; i++) {
    if (stream[i - 5] !== 0x04) continue;
    let ok = true;
    for (let j = 0; j < needle.length && ok; j++) ok = stream[i + j] === needle[j];
    if (!ok) continue;
    const dv = new DataView(stream.buffer, stream.byteOffset);
    const id = dv.getUint32(i - 4);
    const version = dv.getUint32(i + needle.length);
    return { id, version, body: i + needle.length + 4 };
  }
  throw new Error(`section ${idstr} not found`);
}

function vmdescOfStream() {
  const start = new TextDecoder('latin1').decode(stream).lastIndexOf('{"page_size"');
  const len = new DataView(stream.buffer, stream.byteOffset).getUint32(start - 4);
  expect(stream[start - 5]).toBe(0x06); // QEMU_VM_VMDESCRIPTION
  expect(start + len).toBe(stream.length);
  return { json: stream.subarray(start, start + len), parsed: parseVmdesc(stream.subarray(start, start + len)) };
}

const cases: [string, Vmsd, Record<string, unknown>][] = [
  ['timer', timer, {}],
  ['globalstate', globalstate, {}],
  ['fdc', fdc, { state: { num_floppies: 2 } }],
  ['fw_cfg', fwCfg, {}],
  ['mc146818rtc', rtc, {}],
];

describe('real QEMU 7.2 device sections through the DSL', () => {
  const { parsed } = vmdescOfStream();
  for (const [idstr, d, local] of cases) {
    it(`${idstr}: bytes round-trip and the derived vmdesc equals QEMU's`, () => {
      const { id, version, body } = findFull(idstr);
      const r = new ByteReader(stream, 0, body);
      const state = decodeVmsd(d, r, version, structuredClone(local));
      // the body ends exactly at the section footer: 7e + be32 section id
      expect(stream[r.position]).toBe(0x7e);
      expect(new DataView(stream.buffer, stream.byteOffset).getUint32(r.position + 1)).toBe(id);
      expect(encodeVmsd(d, state).finish()).toEqual(stream.subarray(body, r.position));
      const qemu = parsed.devices.find((x) => x.name === idstr);
      expect(describeDevice(idstr, 0, d, state)).toEqual(qemu);
    });
  }

  it('decodes known values: globalstate "paused", fdc media rates via nested subsections', () => {
    const g = findFull('globalstate');
    const gs = decodeVmsd(globalstate, new ByteReader(stream, 0, g.body), 1, {});
    expect(gs.size).toBe(7);
    expect(new TextDecoder().decode(gs.runstate.subarray(0, 6))).toBe('paused');
    const f = findFull('fdc');
    const st = decodeVmsd(fdc, new ByteReader(stream, 0, f.body), 2, { state: { num_floppies: 2 } });
    expect(st.state.drives).toHaveLength(2);
    expect(st.state.drives[0]).toHaveProperty('media_rate');
    expect(st.state.fifo).toHaveLength(512);
  });

  it("the vmdesc formatter reproduces QEMU's 99 KB vmdesc byte for byte", () => {
    const { json, parsed: p } = vmdescOfStream();
    expect(formatVmdesc(p)).toBe(new TextDecoder().decode(json));
  });
});

describe('vmdesc escaping and validation', () => {
  it("escapes like QEMU's JSON writer (upper-case \\u, DEL and non-ASCII escaped, / kept)", () => {
    expect(formatVmdesc({ vmsd_name: 'a"b\\c/d\n\u0001\u007f\u00e9\u{1f600}', version: 1, fields: [] })).toBe(
      '{"vmsd_name": "a\\"b\\\\c/d\\n\\u0001\\u007F\\u00E9\\uD83D\\uDE00", "version": 1, "fields": []}',
    );
  });

  it('rejects malformed descriptions with a typed error', () => {
    expect(() => parseVmdesc('{"page_size": 4096}')).toThrow(/devices/);
    expect(() => parseVmdesc('{"page_size": 4096, "devices": [{"name": "x"}]}')).toThrow(/instance_id/);
    expect(() =>
      parseVmdesc('{"page_size": 4096, "devices": [{"name": "x", "instance_id": 0, "fields": [{"name": "f"}]}]}'),
    ).toThrow(/non-negative "size"/);
    expect(() => parseVmdesc('{not json')).toThrow(/not valid JSON/);
  });
});
