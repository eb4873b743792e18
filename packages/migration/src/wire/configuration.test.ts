import { ByteReader } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError, UnsupportedFeatureError } from '../errors.js';
import { catchStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import { type Configuration, decodeConfigurationBody, encodeConfiguration } from './configuration.js';

describe('configuration record', () => {
  // Spec §2.5, captured with x-ignore-shared + validate-uuid + -uuid 12345678-9abc-def0-1234-56789abcdef0.
  const captured = hex(`
    07                                 # QEMU_VM_CONFIGURATION
    0000000d "pc-i440fx-7.2"           # be32 len + machine name
    05 1a "configuration/capabilities" # subsection
    00000001                           #   version 1
    00000001                           #   1 capability
    0f "x-ignore-shared"
    05 12 "configuration/uuid"         # subsection
    00000001                           #   version 1
    12 34 56 78 9a bc de f0 12 34 56 78 9a bc de f0
  `);
  const capturedCfg: Configuration = {
    machine: 'pc-i440fx-7.2',
    subsections: [
      { name: 'configuration/capabilities', version: 1, capabilities: ['x-ignore-shared'] },
      { name: 'configuration/uuid', version: 1, uuid: hex('12 34 56 78 9a bc de f0 12 34 56 78 9a bc de f0') },
    ],
  };

  it('encodes the captured golden bytes', () => {
    expect(encodeConfiguration(capturedCfg).written()).toEqual(captured);
  });

  it('decodes them, stopping where the next record (ram START) begins', () => {
    const bytes = new Uint8Array([...captured, 0x01, 0, 0, 0, 2]);
    const r = new ByteReader(bytes, 0, 1);
    expect(decodeConfigurationBody(r)).toEqual(capturedCfg);
    expect(r.peekU8()).toBe(0x01);
  });

  it('decodes the plain -M none / pc / q35 forms', () => {
    for (const [machine, bytes] of [
      ['none', hex('00000004 "none" 01')],
      ['pc-i440fx-7.2', hex('0000000d "pc-i440fx-7.2" 01')],
      ['pc-q35-7.2', hex('0000000a "pc-q35-7.2" 01')],
    ] as const) {
      const r = new ByteReader(bytes);
      expect(decodeConfigurationBody(r)).toEqual({ machine, subsections: [] });
      expect(r.remaining).toBe(1);
    }
  });

  it('decodes target-page-bits (ARM style) and round-trips it', () => {
    const cfg: Configuration = {
      machine: 'virt-7.2',
      subsections: [{ name: 'configuration/target-page-bits', version: 1, targetPageBits: 12 }],
    };
    const b = encodeConfiguration(cfg).written();
    expect(b.subarray(13)).toEqual(hex('05 1e "configuration/target-page-bits" 00000001 0000000c'));
    expect(decodeConfigurationBody(new ByteReader(new Uint8Array([...b, 0x01]), 0, 1))).toEqual(cfg);
  });

  it('asks for more input rather than guessing when a subsection name is cut off', () => {
    for (const cut of [17, 18, 25]) {
      const b = encodeConfiguration(capturedCfg).written().subarray(0, cut);
      expect(catchStreamError(() => decodeConfigurationBody(new ByteReader(b, 0, 1))).code).toBe('E_TRUNCATED');
    }
  });

  it('leaves a 0x05 that is not a configuration subsection alone', () => {
    const r = new ByteReader(hex('00000004 "none" 05 03 "cpu"'));
    expect(decodeConfigurationBody(r).subsections).toEqual([]);
    expect(r.remaining).toBe(5);
  });

  it('rejects unknown configuration subsections, bad versions and page bits', () => {
    const unknown = catchStreamError(() =>
      decodeConfigurationBody(new ByteReader(hex('00000004 "none" 05 11 "configuration/foo" 00000001'), 1)),
    );
    expect(unknown.code).toBe('E_BAD_CONFIGURATION');
    expect(unknown.offset).toBe(9);
    expect(
      catchStreamError(() =>
        decodeConfigurationBody(new ByteReader(hex('00000004 "none" 05 12 "configuration/uuid" 00000002'))),
      ),
    ).toMatchObject({
      code: 'E_BAD_CONFIGURATION',
    });
    expect(
      catchStreamError(() =>
        decodeConfigurationBody(
          new ByteReader(hex('00000004 "none" 05 1e "configuration/target-page-bits" 00000001 00000020')),
        ),
      ).code,
    ).toBe('E_BAD_CONFIGURATION');
    expect(catchStreamError(() => decodeConfigurationBody(new ByteReader(hex('ffffffff')))).code).toBe(
      'E_BAD_CONFIGURATION',
    );
  });

  it('reports the 9.0+ mapped-ram capability as an unsupported feature with its offset', () => {
    const b = hex('00000004 "none" 05 1a "configuration/capabilities" 00000001 00000001 0a "mapped-ram"');
    const e = catchStreamError(() => decodeConfigurationBody(new ByteReader(b, 1000)));
    expect(e).toBeInstanceOf(UnsupportedFeatureError);
    expect((e as UnsupportedFeatureError).feature).toBe('mapped-ram');
    expect(e.offset).toBe(1000 + 8 + 2 + 26 + 8);
  });

  it('property: configurations round-trip', () => {
    const name = fc.string({
      maxLength: 40,
      unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-.0123456789'.split('')),
    });
    const sub = fc.oneof(
      fc.record({
        name: fc.constant('configuration/target-page-bits' as const),
        version: fc.constant(1),
        targetPageBits: fc.integer({ min: 10, max: 16 }),
      }),
      fc.record({
        name: fc.constant('configuration/capabilities' as const),
        version: fc.constant(1),
        capabilities: fc.array(
          name.filter((s) => s.length > 0 && s !== 'mapped-ram'),
          { maxLength: 4 },
        ),
      }),
      fc.record({
        name: fc.constant('configuration/uuid' as const),
        version: fc.constant(1),
        uuid: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      }),
    );
    fc.assert(
      fc.property(name, fc.array(sub, { maxLength: 3 }), (machine, subsections) => {
        const cfg = { machine, subsections } as Configuration;
        const b = new Uint8Array([...encodeConfiguration(cfg).written(), 0x01]);
        const r = new ByteReader(b, 0, 1);
        expect(decodeConfigurationBody(r)).toEqual(cfg);
        expect(r.remaining).toBe(1);
      }),
    );
  });

  it('property: arbitrary bytes give a configuration or a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          decodeConfigurationBody(new ByteReader(b));
        } catch (err) {
          expect(err).toBeInstanceOf(MigrationStreamError);
        }
      }),
    );
  });
});
