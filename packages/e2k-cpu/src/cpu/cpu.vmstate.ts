import { element, field, type Vmsd, vmsd } from '@e2k-migrate/vmstate';
import type { InvariantViolation } from '../errors.js';
import { vmstateE2kCpuAau } from './aau.vmstate.js';
import { E2K_MODE_USER, E2K_MODEL_NAME_LEN, E2K_REG_COUNT } from './constants.js';
import type { CheckedState } from './invariant.js';
import { DESCRIPTOR_NAMES, type E2kCpuCfg, type E2kCpuState } from './state.js';
import { validateCpuState } from './validate.js';

/** Subsection `e2k-cpu/rf-hi`: the upper halves, sent when any is non-zero (always in full 64 bits). */
export const vmstateE2kCpuRfHi: Vmsd<E2kCpuState> = vmsd<E2kCpuState>({
  name: 'e2k-cpu/rf-hi',
  version: 1,
  needed: (s) => s.rf_hi.some((v) => v !== 0n),
  fields: [field.array('rf_hi', element.uint64, E2K_REG_COUNT)],
});

/** Subsection `e2k-cpu/sys`: descriptors, OSR0 and CORE_MODE, sent when any is non-zero. */
export const vmstateE2kCpuSys: Vmsd<E2kCpuState> = vmsd<E2kCpuState>({
  name: 'e2k-cpu/sys',
  version: 1,
  needed: (s) => s.osr0 !== 0n || s.core_mode !== 0n || DESCRIPTOR_NAMES.some((n) => s[n].lo !== 0n || s[n].hi !== 0n),
  fields: [
    ...DESCRIPTOR_NAMES.flatMap((n) => [field.uint64(`${n}.lo`), field.uint64(`${n}.hi`)]),
    field.uint64('osr0'),
    field.uint64('core_mode'),
  ],
});

/** Subsection `e2k-cpu/dam`: DAM entries and the lock-load values, sent when any is non-zero. */
export const vmstateE2kCpuDam: Vmsd<E2kCpuState> = vmsd<E2kCpuState>({
  name: 'e2k-cpu/dam',
  version: 1,
  needed: (s) => s.dam.some((v) => v !== 0n) || s.lock_val.some((v) => v !== 0n),
  fields: [field.array('dam', element.uint64, 32), field.array('lock_val', element.uint64, 2)],
});

/** Subsection `e2k-cpu/user`: linux-user only. */
export const vmstateE2kCpuUser: Vmsd<E2kCpuState> = vmsd<E2kCpuState>({
  name: 'e2k-cpu/user',
  version: 1,
  needed: (s) => s.cfg.mode === E2K_MODE_USER,
  fields: [field.uint8('is_bp'), field.uint32('elf_flags')],
});

/**
 * Subsection `e2k-cpu/unmodelled` (optional, spec §5.1): registers a non-qemu producer may hold.
 * This model never sends it; on load it is accepted only when PSHTP = PCSHTP = 0 (S9), then dropped.
 */
export const vmstateE2kCpuUnmodelled: Vmsd<CheckedState> = vmsd<CheckedState>({
  name: 'e2k-cpu/unmodelled',
  version: 1,
  needed: (s) => s.unmodelled !== undefined,
  fields: [field.uint64('unmodelled.pshtp'), field.uint64('unmodelled.pcshtp'), field.uint64('unmodelled.cwd')],
});

/** The configuration header and the core fields, in spec §5.1 order. */
const CORE_FIELDS = [
  // header (configuration; compared on load by C1–C3)
  field.uint8('cfg.isa'),
  field.buffer('cfg.model', E2K_MODEL_NAME_LEN),
  field.uint64('cfg.idr'),
  field.uint8('cfg.long_bits'),
  field.uint8('cfg.mode'),
  field.bool('cfg.tags'),
  field.uint16('cfg.nr'),
  field.uint8('cfg.gr'),
  field.bool('cfg.force_save_alc_dst'),
  // control
  field.uint64('ip'),
  field.uint64('nip'),
  field.array('ctpr', element.uint64, 3),
  // status
  field.uint32('psr'),
  field.uint32('upsr'),
  field.uint32('cuir'),
  // window
  field.int32('wd_base'),
  field.int32('wd_size'),
  field.int32('wd_psize'),
  field.uint8('wd_fx'),
  field.uint8('wdbl'),
  // rotation
  field.uint32('bn_base'),
  field.uint32('bn_size'),
  field.uint32('bn_cur'),
  field.uint32('bp_size'),
  field.uint32('bp_cur'),
  field.uint32('bgr'),
  // predicates
  field.uint64('pregs'),
  // loop
  field.uint64('lsr'),
  field.uint64('lsr_lcnt'),
  field.uint64('ilcr'),
  field.uint64('ilcr_lcnt'),
  // stacks
  field.uint64('sbr'),
  field.uint64('usd_lo'),
  field.uint64('usd_hi'),
  field.uint64('psp_lo'),
  field.uint64('psp_hi'),
  field.uint64('psp_tagbase'),
  field.uint64('pcsp_lo'),
  field.uint64('pcsp_hi'),
  field.uint64('pcsp_tagbase'),
  // fpu
  field.uint32('pfpfr'),
  field.uint32('fpcr'),
  field.uint32('fpsr'),
  // register file
  field.array('rf_lo', element.uint64, E2K_REG_COUNT),
  field.array('rf_tag', element.uint8, E2K_REG_COUNT),
];

export interface E2kCpuVmsdOptions {
  /** The destination's configuration: C2 rejects a stream whose tags/long_bits/mode/ISA/model differ. */
  dest?: E2kCpuCfg;
  /** Soft invariants reject too. */
  strict?: boolean;
  /** Accept another model name of the same ISA. */
  allowModelMismatch?: boolean;
  /** Receives each soft violation accepted (not called for errors). */
  onWarning?: (w: InvariantViolation) => void;
  /** vCPU index for messages. */
  cpuIndex?: number;
}

/**
 * The `e2k-cpu` VMSD, version 1 (spec §5.1), whose post_load runs every §6 invariant
 * against `opts.dest`: a hard violation throws `CpuInvariantError` (code `E_CPU_INVARIANT`),
 * a soft one is passed to `onWarning` (thrown in strict mode).
 *
 * post_load steps 2–6 of §5.2 have nothing to do in this model: LSR/ILCR stay packed next to the
 * 64-bit counters, and there are no window pointers, softfloat status or caches to rebuild.
 */
export function e2kCpuVmsd(opts: E2kCpuVmsdOptions = {}): Vmsd<E2kCpuState> {
  return vmsd<E2kCpuState>({
    name: 'e2k-cpu',
    version: 1,
    minimumVersion: 1,
    fields: CORE_FIELDS,
    subsections: [
      vmstateE2kCpuRfHi,
      vmstateE2kCpuAau,
      vmstateE2kCpuSys,
      vmstateE2kCpuDam,
      vmstateE2kCpuUser,
      vmstateE2kCpuUnmodelled as Vmsd<E2kCpuState>,
    ],
    postLoad: (s) => {
      const warnings = validateCpuState(s, opts);
      for (const w of warnings) opts.onWarning?.(w);
      // S9 passed: everything is spilled, so the unmodelled registers carry nothing for this model.
      delete (s as CheckedState).unmodelled;
    },
  });
}

/** The `e2k-cpu` VMSD without a destination (decoding/analysis: C2 is not checked). */
export const vmstateE2kCpu: Vmsd<E2kCpuState> = e2kCpuVmsd();
