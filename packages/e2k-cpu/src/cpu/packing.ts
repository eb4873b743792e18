/**
 * Packed architectural register forms (spec/e2k-cpu.md §1.2–§1.5, §1.7) and their fields.
 * All functions are pure; bit positions are LSB = 0.
 */

const bits = (v: bigint, lo: number, width: number): number => Number((v >> BigInt(lo)) & ((1n << BigInt(width)) - 1n));

/** LSR [K]: lcnt [31:0], ecnt [36:32], vlc 37, over 38, ldmc 39, ldovl [47:40], pcnt [52:48], strmd [59:53], semc 60. */
export interface LsrFields {
  lcnt: number;
  ecnt: number;
  vlc: number;
  over: number;
  ldmc: number;
  ldovl: number;
  pcnt: number;
  strmd: number;
  semc: number;
}

export function unpackLsr(lsr: bigint): LsrFields {
  return {
    lcnt: bits(lsr, 0, 32),
    ecnt: bits(lsr, 32, 5),
    vlc: bits(lsr, 37, 1),
    over: bits(lsr, 38, 1),
    ldmc: bits(lsr, 39, 1),
    ldovl: bits(lsr, 40, 8),
    pcnt: bits(lsr, 48, 5),
    strmd: bits(lsr, 53, 7),
    semc: bits(lsr, 60, 1),
  };
}

export function packLsr(f: LsrFields): bigint {
  return (
    BigInt(f.lcnt >>> 0) |
    (BigInt(f.ecnt & 0x1f) << 32n) |
    (BigInt(f.vlc & 1) << 37n) |
    (BigInt(f.over & 1) << 38n) |
    (BigInt(f.ldmc & 1) << 39n) |
    (BigInt(f.ldovl & 0xff) << 40n) |
    (BigInt(f.pcnt & 0x1f) << 48n) |
    (BigInt(f.strmd & 0x7f) << 53n) |
    (BigInt(f.semc & 1) << 60n)
  );
}

/** ILCR [K]: lcnt [31:0], ecnt [36:32], pcnt [52:48]. */
export interface IlcrFields {
  lcnt: number;
  ecnt: number;
  pcnt: number;
}

export function unpackIlcr(ilcr: bigint): IlcrFields {
  return { lcnt: bits(ilcr, 0, 32), ecnt: bits(ilcr, 32, 5), pcnt: bits(ilcr, 48, 5) };
}

/** WD in bytes (base [10:0], size [26:16], psize [42:32], fx 48), as `rrd %wd` and gdb see it. */
export function packWd(size: number, psize: number, fx: number): bigint {
  return (BigInt((size * 8) & 0x7ff) << 16n) | (BigInt((psize * 8) & 0x7ff) << 32n) | (BigInt(fx & 1) << 48n);
}

/** BR (28 bits): rbs [5:0], rsz [11:6], rcur [17:12], psz [22:18], pcur [27:23], from unpacked units. */
export function packBr(bnBase: number, bnSize: number, bnCur: number, bpSize: number, bpCur: number): number {
  const rbs = (bnBase / 2) & 0x3f;
  const rsz = (bnSize / 2 - 1) & 0x3f;
  const rcur = (bnCur / 2) & 0x3f;
  const psz = (bpSize - 1) & 0x1f;
  const pcur = bpCur & 0x1f;
  return (rbs | (rsz << 6) | (rcur << 12) | (psz << 18) | (pcur << 23)) >>> 0;
}

/** CTPR: target [47:0], tag [56:54], opc [58:57], ipd [60:59]. */
export interface CtprFields {
  target: bigint;
  tag: number;
  opc: number;
  ipd: number;
}

export function unpackCtpr(v: bigint): CtprFields {
  return { target: v & 0xffff_ffff_ffffn, tag: bits(v, 54, 3), opc: bits(v, 57, 2), ipd: bits(v, 59, 2) };
}

/** PSP/PCSP: lo base [47:0], stub [58:56], readable 59, writable 60, itag [63:61]; hi index [31:0], size [63:32]. */
export interface StackPointerFields {
  base: bigint;
  index: number;
  size: number;
  read: boolean;
  write: boolean;
  itag: number;
}

export function unpackStackPointer(lo: bigint, hi: bigint): StackPointerFields {
  return {
    base: lo & 0xffff_ffff_ffffn,
    index: bits(hi, 0, 32),
    size: bits(hi, 32, 32),
    read: bits(lo, 59, 1) === 1,
    write: bits(lo, 60, 1) === 1,
    itag: bits(lo, 61, 3),
  };
}

/** RWAP/USD: lo base [47:0], protected 58, read 59, write 60, itag [63:61]; hi curptr [31:0], size [63:32]. */
export interface RwapFields {
  base: bigint;
  curptr: number;
  size: number;
  protected: boolean;
  read: boolean;
  write: boolean;
  itag: number;
}

export function unpackRwap(lo: bigint, hi: bigint): RwapFields {
  return {
    base: lo & 0xffff_ffff_ffffn,
    curptr: bits(hi, 0, 32),
    size: bits(hi, 32, 32),
    protected: bits(lo, 58, 1) === 1,
    read: bits(lo, 59, 1) === 1,
    write: bits(lo, 60, 1) === 1,
    itag: bits(lo, 61, 3),
  };
}

/** FPCR.pc [9:8] (0 single, 1 reserved, 2 double, 3 extended). */
export function fpcrPrecision(fpcr: number): number {
  return (fpcr >>> 8) & 3;
}

/** Physical predicate index of logical `%predI` under the rotating predicate base. */
export function physicalPredicate(i: number, bpSize: number, bpCur: number): number {
  return i < bpSize ? (i + bpCur) % bpSize : i;
}

/** Hex with a `0x` prefix, for messages and dumps. */
export function hex(v: bigint | number, width = 0): string {
  const s = (typeof v === 'bigint' ? (v < 0n ? v & 0xffff_ffff_ffff_ffffn : v) : v < 0 ? v >>> 0 : v).toString(16);
  return `0x${s.padStart(width, '0')}`;
}
