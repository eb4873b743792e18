import { E2kError } from '../errors.js';
import { type E2kCpuState, resetCpuState } from './state.js';

/**
 * Where each leaf of {@link E2kCpuState} lives in a vCPU's shared state buffer.
 *
 * Every leaf takes one 8-byte slot: bigints in a `BigUint64Array`, numbers and booleans in a
 * `Float64Array` (exact for every 8–32-bit value), the 32-byte `cfg.model` in 4 slots of bytes.
 * The order is the reset state's key order; an array's elements take consecutive slots, so
 * `regs[i].lo` is slot `slotOf('rf_lo.0') + i`, which the interpreter reads as two little-endian
 * 32-bit words (`u32[2·slot]`, `u32[2·slot + 1]`).
 */
export type LeafKind = 'u64' | 'num' | 'bool' | 'bytes';

export interface Leaf {
  /** Path into the state object (array indices as numbers). */
  readonly path: readonly (string | number)[];
  readonly kind: LeafKind;
  /** First slot. */
  readonly slot: number;
  /** Byte length for `bytes`. */
  readonly bytes?: number;
}

export interface CpuLayout {
  readonly leaves: readonly Leaf[];
  readonly slots: number;
  readonly byteLength: number;
  /** Slot of a leaf by its dotted path (`rf_lo.0`, `ip`, `cfg.isa`). */
  slotOf(path: string): number;
}

function buildLayout(template: E2kCpuState): CpuLayout {
  const leaves: Leaf[] = [];
  let slot = 0;
  const walk = (v: unknown, path: (string | number)[]) => {
    if (typeof v === 'bigint') leaves.push({ path, kind: 'u64', slot: slot++ });
    else if (typeof v === 'number') leaves.push({ path, kind: 'num', slot: slot++ });
    else if (typeof v === 'boolean') leaves.push({ path, kind: 'bool', slot: slot++ });
    else if (v instanceof Uint8Array) {
      leaves.push({ path, kind: 'bytes', slot, bytes: v.length });
      slot += Math.ceil(v.length / 8);
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) walk(v[i], [...path, i]);
    } else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    else throw new E2kError('E_MACHINE_STATE', `cpu layout: unsupported leaf at ${path.join('.')}`);
  };
  walk(template, []);
  const index = new Map(leaves.map((l) => [l.path.join('.'), l.slot]));
  return {
    leaves,
    slots: slot,
    byteLength: slot * 8,
    slotOf(path: string): number {
      const s = index.get(path);
      if (s === undefined) throw new E2kError('E_MACHINE_STATE', `cpu layout: no field ${path}`);
      return s;
    },
  };
}

/** The one layout every vCPU buffer uses (the shape does not depend on the model). */
export const CPU_LAYOUT: CpuLayout = buildLayout(resetCpuState());

/** Slots the interpreter touches on its hot path. */
export const CPU_SLOT = {
  rfLo: CPU_LAYOUT.slotOf('rf_lo.0'),
  rfTag: CPU_LAYOUT.slotOf('rf_tag.0'),
  ip: CPU_LAYOUT.slotOf('ip'),
  pregs: CPU_LAYOUT.slotOf('pregs'),
  lsr: CPU_LAYOUT.slotOf('lsr'),
  lsrLcnt: CPU_LAYOUT.slotOf('lsr_lcnt'),
  ilcr: CPU_LAYOUT.slotOf('ilcr'),
  ilcrLcnt: CPU_LAYOUT.slotOf('ilcr_lcnt'),
  wdSize: CPU_LAYOUT.slotOf('wd_size'),
  bpSize: CPU_LAYOUT.slotOf('bp_size'),
  bpCur: CPU_LAYOUT.slotOf('bp_cur'),
  isa: CPU_LAYOUT.slotOf('cfg.isa'),
  tags: CPU_LAYOUT.slotOf('cfg.tags'),
} as const;
