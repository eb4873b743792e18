/**
 * The CPU models qemu-e2k knows (spec/e2k-cpu.md §2.1) and what differs between ISA versions (§2.2).
 * One state layout serves every model; the ISA only changes which bits mean something.
 */

export type IsaVersion = 1 | 2 | 3 | 4 | 5 | 6 | 7;

export interface CpuModel {
  /** Canonical `-cpu` name (the first of `names`). */
  readonly name: string;
  /** Every name accepted for this model (aliases included). */
  readonly names: readonly string[];
  readonly isa: IsaVersion;
  /** gdb architecture string (sent as `<gdbArch>:<long bits>`). */
  readonly gdbArch: string;
  /** IDR.mdl, the model number in the identification register. */
  readonly idrModel: number;
  readonly description: string;
}

function model(names: string[], isa: IsaVersion, gdbArch: string, idrModel: number, description: string): CpuModel {
  return { name: names[0] as string, names, isa, gdbArch, idrModel, description };
}

/** §2.1, in qemu-e2k's order. */
export const CPU_MODELS: readonly CpuModel[] = [
  model(['elbrus-v1', 'generic', 'elbrus', 'e3m'], 1, 'elbrus-v1', 0, 'Elbrus / Elbrus-3M1'),
  model(['elbrus-v2', 'elbrus-s'], 2, 'elbrus-v2', 1, 'Elbrus-S'),
  model(['e3s'], 2, 'elbrus-v2', 2, 'Elbrus-3S'),
  model(['es2', 'e2c+', 'e2cplus'], 2, 'elbrus-v2', 4, 'Elbrus-2C+ (Monocube)'),
  model(['e2cm'], 2, 'elbrus-v2', 6, 'Elbrus-2CM (ES2 without DSP)'),
  model(['elbrus-v3', 'e2s', 'e4c'], 3, 'elbrus-v3', 3, 'Elbrus-4C'),
  model(['elbrus-v4'], 4, 'elbrus-v4', 7, 'Elbrus-8C'),
  model(['e8c'], 4, 'elbrus-8c', 7, 'Elbrus-8C'),
  model(['e1c+', 'e1cplus'], 4, 'elbrus-1c+', 8, 'Elbrus-1C+'),
  model(['elbrus-v5', 'e8c2'], 5, 'elbrus-v5', 9, 'Elbrus-8C2'),
  model(['elbrus-v6', 'e16c'], 6, 'elbrus-v6', 11, 'Elbrus-16C'),
  model(['e12c'], 6, 'elbrus-12c', 10, 'Elbrus-12C'),
  model(['e2c3'], 6, 'elbrus-2c3', 12, 'Elbrus-2C3'),
  model(['elbrus-v7', 'e48c'], 7, 'elbrus-v7', 13, 'Elbrus-48C'),
  model(['e8v7'], 7, 'elbrus-v7', 14, 'Elbrus-8V7'),
];

/** The default model (`any` in linux-user also maps here). */
export const DEFAULT_CPU_MODEL = 'e8c';

/** Finds a model by any of its names (case-insensitive); `any` means the default. */
export function findCpuModel(name: string): CpuModel | undefined {
  const n = name.toLowerCase() === 'any' ? DEFAULT_CPU_MODEL : name.toLowerCase();
  return CPU_MODELS.find((m) => m.names.includes(n));
}

/** Models whose canonical or alias name is `name`, for ISA consistency checks (C1). */
export function modelMatchesIsa(name: string, isa: number): boolean {
  const m = findCpuModel(name);
  return m !== undefined && m.isa === isa;
}

/** What the ISA version changes in the state (§2.2). */
export interface IsaFeatures {
  /** `regs[].hi` holds the upper half of a 128-bit value (v5+); below, only the 16-bit FP extension. */
  readonly quadRegisters: boolean;
  /** Tag bits meaningful per RF entry: 4 below v5, 8 from v5. */
  readonly tagBits: 4 | 8;
  /** PS spill order: `pairs` (v,v,x,x) below v5, `per-register` (v,x) from v5. */
  readonly psSpillLayout: 'pairs' | 'per-register';
  /** 64-bit loop counters LSR1/ILCR1 (v5+). */
  readonly lsr1: boolean;
  /** IDR visible to gdb (v2+). */
  readonly idrVisible: boolean;
  /** CORE_MODE register (v3+). */
  readonly coreMode: boolean;
  /** UPSR fsm/impt/iuc bits 8..10 (v3+; model dependent on v2, see §8.9). */
  readonly upsrV3Bits: boolean;
  /** AAU `fapb` alternative layout when si = 1 (v1 only). */
  readonly fapbAltLayout: boolean;
}

export function isaFeatures(isa: IsaVersion): IsaFeatures {
  return {
    quadRegisters: isa >= 5,
    tagBits: isa >= 5 ? 8 : 4,
    psSpillLayout: isa >= 5 ? 'per-register' : 'pairs',
    lsr1: isa >= 5,
    idrVisible: isa >= 2,
    coreMode: isa >= 3,
    upsrV3Bits: isa >= 3,
    fapbAltLayout: isa === 1,
  };
}
