import { E2kError } from '../errors.js';
import { type E2kAauState, resetAau } from './aau.js';
import {
  E2K_GR_COUNT,
  E2K_MODE_SYSTEM,
  E2K_MODEL_NAME_LEN,
  E2K_NR_COUNT,
  E2K_REG_COUNT,
  FPCR_RESET,
  PFPFR_RESET,
  PSP_LO_READ,
  PSP_LO_WRITE,
  PSR_PM,
  UPSR_FE,
  UPSR_NMIE,
} from './constants.js';
import { DEFAULT_CPU_MODEL, findCpuModel } from './models.js';

/**
 * The architectural state of one E2K vCPU (spec/e2k-cpu.md §1), shaped and named as the
 * `e2k-cpu` VMState carries it (§5): each property name is the VMState field name.
 * 64-bit values are bigints, narrower ones numbers.
 *
 * Packed forms are kept where the wire keeps them: `lsr`/`ilcr` are the architectural packed
 * registers (lcnt truncated to 32 bits) next to the full 64-bit `lsr_lcnt`/`ilcr_lcnt`.
 */
export interface E2kCpuState {
  cfg: E2kCpuCfg;
  // control
  ip: bigint;
  nip: bigint;
  /** CTPR1..3. */
  ctpr: bigint[];
  // status
  psr: number;
  upsr: number;
  cuir: number;
  // window (wd_base is always 0 in the qemu model)
  wd_base: number;
  wd_size: number;
  wd_psize: number;
  /** 0/1 on the wire (u8), checked by W5. */
  wd_fx: number;
  wdbl: number;
  // rotation
  bn_base: number;
  bn_size: number;
  bn_cur: number;
  bp_size: number;
  bp_cur: number;
  bgr: number;
  /** 32 predicates × (value bit 2i, tag bit 2i+1). */
  pregs: bigint;
  // loop
  lsr: bigint;
  lsr_lcnt: bigint;
  ilcr: bigint;
  ilcr_lcnt: bigint;
  // stacks
  sbr: bigint;
  usd_lo: bigint;
  usd_hi: bigint;
  psp_lo: bigint;
  psp_hi: bigint;
  psp_tagbase: bigint;
  pcsp_lo: bigint;
  pcsp_hi: bigint;
  pcsp_tagbase: bigint;
  // fpu
  pfpfr: number;
  fpcr: number;
  fpsr: number;
  // register file
  /** `regs[i].lo`, 256 entries (0..223 window, 224..255 %g0..%g31). */
  rf_lo: bigint[];
  /** Tag byte per entry. */
  rf_tag: number[];
  /** `regs[i].hi` (subsection `e2k-cpu/rf-hi`). */
  rf_hi: bigint[];
  /** Subsection `e2k-cpu/aau`. */
  aau: E2kAauState;
  // subsection `e2k-cpu/sys`
  oscud: E2kRwap;
  osgd: E2kRwap;
  cud: E2kRwap;
  gd: E2kRwap;
  cs: E2kRwap;
  ds: E2kRwap;
  es: E2kRwap;
  fs: E2kRwap;
  gs: E2kRwap;
  ss: E2kRwap;
  osr0: bigint;
  core_mode: bigint;
  // subsection `e2k-cpu/dam`
  dam: bigint[];
  /** `last_val0/1` of a lock-load / conditional-store pair. */
  lock_val: bigint[];
  // subsection `e2k-cpu/user`
  is_bp: number;
  elf_flags: number;
}

/** The configuration header (§5.1): compared on load, never silently adopted. */
export interface E2kCpuCfg {
  isa: number;
  /** `def.name`, NUL-padded to 32 bytes (see {@link modelNameOf}). */
  model: Uint8Array;
  idr: bigint;
  long_bits: number;
  /** 0 = system, 1 = linux-user. */
  mode: number;
  tags: boolean;
  nr: number;
  gr: number;
  force_save_alc_dst: boolean;
}

/** A descriptor / segment register (`E2KRwap`). */
export interface E2kRwap {
  lo: bigint;
  hi: bigint;
}

/** Names of the ten descriptor registers of `e2k-cpu/sys`, in wire order. */
export const DESCRIPTOR_NAMES = ['oscud', 'osgd', 'cud', 'gd', 'cs', 'ds', 'es', 'fs', 'gs', 'ss'] as const;
export type DescriptorName = (typeof DESCRIPTOR_NAMES)[number];

export interface CpuConfigInit {
  /** CPU model name (default `e8c`). */
  model?: string;
  /** `enable_tags` (default false). */
  tags?: boolean;
  /** 64 (e2k) or 32 (e2k32). */
  longBits?: 64 | 32;
  /** 0 system (default) or 1 linux-user. */
  mode?: 0 | 1;
  forceSaveAlcDst?: boolean;
}

/** Builds the configuration header for a model; an unknown model is an `E_CPU_MODEL` error. */
export function cpuConfig(init: CpuConfigInit = {}): E2kCpuCfg {
  const name = init.model ?? DEFAULT_CPU_MODEL;
  const m = findCpuModel(name);
  if (!m) throw new E2kError('E_CPU_MODEL', `unknown E2K CPU model "${name}" (try e8c, e8c2, e16c, elbrus-v1…v7)`);
  return {
    isa: m.isa,
    model: encodeModelName(m.names.includes(name.toLowerCase()) ? name.toLowerCase() : m.name),
    idr: BigInt(m.idrModel),
    long_bits: init.longBits ?? 64,
    mode: init.mode ?? E2K_MODE_SYSTEM,
    tags: init.tags ?? false,
    nr: E2K_NR_COUNT,
    gr: E2K_GR_COUNT,
    force_save_alc_dst: init.forceSaveAlcDst ?? false,
  };
}

/** `name` as the NUL-padded 32-byte `cfg.model` buffer. */
export function encodeModelName(name: string): Uint8Array {
  const out = new Uint8Array(E2K_MODEL_NAME_LEN);
  if (name.length > E2K_MODEL_NAME_LEN) throw new E2kError('E_CPU_MODEL', `model name "${name}" exceeds 32 bytes`);
  for (let i = 0; i < name.length; i++) out[i] = name.charCodeAt(i) & 0xff;
  return out;
}

/** The model name in a `cfg.model` buffer (bytes up to the first NUL, latin1). */
export function modelNameOf(model: Uint8Array): string {
  let s = '';
  for (const b of model) {
    if (b === 0) break;
    s += String.fromCharCode(b);
  }
  return s;
}

/**
 * A CPU as reset leaves it (§1.14, e2k-v5 branch), with the PS/PCS descriptors marked readable and
 * writable (invariant S1) and, when tags are on, a PS tag area right after the PS (S6).
 */
export function resetCpuState(cfg: E2kCpuCfg = cpuConfig()): E2kCpuState {
  const rwap = (): E2kRwap => ({ lo: 0n, hi: 0n });
  const pspBase = 0x81_0000n;
  const pspSize = 0x10_0000n;
  return {
    cfg: { ...cfg, model: cfg.model.slice() },
    ip: 0n,
    nip: 0n,
    ctpr: [0n, 0n, 0n],
    psr: PSR_PM,
    upsr: UPSR_NMIE | UPSR_FE,
    cuir: 0,
    wd_base: 0,
    wd_size: 16,
    wd_psize: 8,
    wd_fx: 0,
    wdbl: 0,
    bn_base: 8,
    bn_size: 8,
    bn_cur: 0,
    bp_size: 1,
    bp_cur: 0,
    bgr: 0,
    pregs: 0n,
    lsr: 0n,
    lsr_lcnt: 0n,
    ilcr: 0n,
    ilcr_lcnt: 0n,
    sbr: 0n,
    usd_lo: 0n,
    usd_hi: 0n,
    psp_lo: pspBase | PSP_LO_READ | PSP_LO_WRITE,
    psp_hi: pspSize << 32n,
    psp_tagbase: cfg.tags ? pspBase + pspSize : 0n,
    pcsp_lo: 0x91_0000n | PSP_LO_READ | PSP_LO_WRITE,
    pcsp_hi: 0xa1_0000n << 32n,
    pcsp_tagbase: 0n,
    pfpfr: PFPFR_RESET,
    fpcr: FPCR_RESET,
    fpsr: 0,
    rf_lo: new Array<bigint>(E2K_REG_COUNT).fill(0n),
    rf_tag: new Array<number>(E2K_REG_COUNT).fill(0),
    rf_hi: new Array<bigint>(E2K_REG_COUNT).fill(0n),
    aau: resetAau(),
    oscud: rwap(),
    osgd: rwap(),
    cud: rwap(),
    gd: rwap(),
    cs: rwap(),
    ds: rwap(),
    es: rwap(),
    fs: rwap(),
    gs: rwap(),
    ss: rwap(),
    osr0: 0n,
    core_mode: 0n,
    dam: new Array<bigint>(32).fill(0n),
    lock_val: [0n, 0n],
    is_bp: 0,
    elf_flags: 0,
  };
}

/** A deep copy (arrays and nested objects are fresh). */
export function cloneCpuState(s: E2kCpuState): E2kCpuState {
  return structuredClone(s);
}
