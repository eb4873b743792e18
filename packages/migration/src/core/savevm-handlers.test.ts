import { ByteWriter, encodeVmsd, field, vmsd } from '@e2k-migrate/vmstate';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError } from '../errors.js';
import { ByteSource } from '../stream/byte-source.js';
import { StreamReader } from '../stream/stream-reader.js';
import { encodeFooter, encodeSectionHeader } from '../wire/section.js';
import { loaderRegistryOf } from './device-loader.js';
import { type DeviceStateHandler, SaveVmHandlers } from './savevm-handlers.js';

interface Counter {
  value: number;
  flags: number;
}
const counterVmsd = vmsd<Counter>({
  name: 'counter',
  version: 2,
  minimumVersion: 1,
  fields: [field.uint32('value'), field.uint8('flags', { version: 2 })],
  postLoad: (s) => {
    if (s.value > 1000) throw new Error(`value ${s.value} out of range`);
  },
});

function device(idstr: string, instanceId: number, state: Counter, loaded: Counter[]): DeviceStateHandler<Counter> {
  return {
    idstr,
    instanceId,
    vmsd: counterVmsd,
    save: () => state,
    loadTarget: () => ({ value: 0, flags: 0 }),
    load: (s) => loaded.push(s),
  };
}

function stream(sections: { id: number; idstr: string; instance: number; version: number; body: Uint8Array }[]) {
  const w = new ByteWriter();
  w.u32be(0x5145564d).u32be(3);
  for (const s of sections) {
    encodeSectionHeader(
      { kind: 'FULL', sectionId: s.id, idstr: s.idstr, instanceId: s.instance, versionId: s.version },
      w,
    );
    w.bytes(s.body);
    encodeFooter(s.id, w);
  }
  w.u8(0);
  return w.written();
}

describe('SaveVmHandlers', () => {
  it('assigns section ids at registration, in order, and lists live handlers and devices', () => {
    const h = new SaveVmHandlers();
    const loaded: Counter[] = [];
    expect(h.registerLive({ idstr: 'ram', instanceId: 0 })).toBe(0);
    expect(h.registerDevice(device('counter', 0, { value: 1, flags: 0 }, loaded))).toBe(1);
    expect(h.registerDevice(device('counter', 1, { value: 2, flags: 0 }, loaded))).toBe(2);
    expect(h.devices().map((d) => [d.sectionId, d.device.instanceId])).toEqual([
      [1, 0],
      [2, 1],
    ]);
    expect(h.live()).toEqual([]); // no save side registered
  });

  it('loads FULL sections into devices by idstr + instance, at the stream version', async () => {
    const h = new SaveVmHandlers();
    const loaded: Counter[] = [];
    h.registerDevice(device('counter', 0, { value: 0, flags: 0 }, loaded));
    h.registerDevice(device('counter', 1, { value: 0, flags: 0 }, loaded));
    const v2 = encodeVmsd(counterVmsd, { value: 7, flags: 3 }, new ByteWriter()).written();
    const v1 = Uint8Array.from([0, 0, 0, 9]);
    await new StreamReader(
      new ByteSource(
        stream([
          { id: 5, idstr: 'counter', instance: 1, version: 2, body: v2 },
          { id: 6, idstr: 'counter', instance: 0, version: 1, body: v1 },
        ]),
      ),
      { resolver: loaderRegistryOf(h) },
    ).read();
    expect(loaded).toEqual([
      { value: 7, flags: 3 },
      { value: 9, flags: 0 },
    ]);
  });

  it('rejects an unknown instance, a newer version and a failed post_load, naming section and offset', async () => {
    const h = new SaveVmHandlers();
    h.registerDevice(device('counter', 0, { value: 0, flags: 0 }, []));
    const read = (s: Parameters<typeof stream>[0]) =>
      new StreamReader(new ByteSource(stream(s)), { resolver: loaderRegistryOf(h) }).read().catch((e) => e);
    const body = Uint8Array.from([0, 0, 0, 1, 0]);
    const unknown = await read([{ id: 0, idstr: 'counter', instance: 3, version: 2, body }]);
    expect(unknown).toBeInstanceOf(MigrationStreamError);
    expect(unknown.code).toBe('E_UNKNOWN_SECTION');
    expect(unknown.offset).toBe(8);
    const newer = await read([{ id: 0, idstr: 'counter', instance: 0, version: 3, body }]);
    expect(newer.code).toBe('E_BAD_VALUE');
    expect(newer.section).toBe('counter (0)');
    expect(newer.message).toMatch(/stream version 3 outside supported \[1, 2\]/);
    const bad = await read([
      { id: 0, idstr: 'counter', instance: 0, version: 2, body: Uint8Array.from([0, 0, 9, 0, 0]) },
    ]);
    expect(bad.code).toBe('E_DEVICE_DECODE');
    expect(bad.message).toMatch(/value 2304 out of range/);
  });
});
