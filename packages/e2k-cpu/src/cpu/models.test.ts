import { describe, expect, it } from 'vitest';
import { E2kError } from '../errors.js';
import { CPU_MODELS, DEFAULT_CPU_MODEL, findCpuModel, isaFeatures } from './models.js';
import { cpuConfig, modelNameOf } from './state.js';

describe('CPU models', () => {
  it('knows ISA v1–v7 by every alias, defaulting to e8c (v4)', () => {
    expect(new Set(CPU_MODELS.map((m) => m.isa))).toEqual(new Set([1, 2, 3, 4, 5, 6, 7]));
    expect(findCpuModel('E2C+')?.name).toBe('es2');
    expect(findCpuModel('any')?.name).toBe(DEFAULT_CPU_MODEL);
    expect(findCpuModel('e8c')).toMatchObject({ isa: 4, idrModel: 7, gdbArch: 'elbrus-8c' });
    expect(findCpuModel('elbrus-v5')).toMatchObject({ name: 'elbrus-v5', isa: 5, idrModel: 9 });
    expect(findCpuModel('e4c')?.isa).toBe(3);
    expect(findCpuModel('pentium')).toBeUndefined();
    const names = CPU_MODELS.flatMap((m) => m.names);
    expect(new Set(names).size).toBe(names.length);
  });

  it('describes what differs between ISA versions', () => {
    expect(isaFeatures(4)).toMatchObject({
      quadRegisters: false,
      tagBits: 4,
      psSpillLayout: 'pairs',
      lsr1: false,
      coreMode: true,
    });
    expect(isaFeatures(5)).toMatchObject({
      quadRegisters: true,
      tagBits: 8,
      psSpillLayout: 'per-register',
      lsr1: true,
    });
    expect(isaFeatures(2)).toMatchObject({ coreMode: false, upsrV3Bits: false, idrVisible: true });
    expect(isaFeatures(1)).toMatchObject({ fapbAltLayout: true, idrVisible: false });
  });

  it('builds a configuration header, rejecting unknown models', () => {
    const c = cpuConfig({ model: 'e16c', tags: true });
    expect(c).toMatchObject({ isa: 6, idr: 11n, long_bits: 64, mode: 0, tags: true, nr: 224, gr: 32 });
    expect(c.model.length).toBe(32);
    expect(modelNameOf(c.model)).toBe('e16c');
    expect(() => cpuConfig({ model: 'z80' })).toThrow(E2kError);
    expect(() => cpuConfig({ model: 'z80' })).toThrow(expect.objectContaining({ code: 'E_CPU_MODEL' }));
  });
});
