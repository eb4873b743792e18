/**
 * The guest instruction set: a small E2K-flavoured encoding executed by the interpreter.
 *
 * A bundle is one little-endian 64-bit word at an 8-byte aligned `ip`:
 *
 * | bits   | field | meaning |
 * |--------|-------|---------|
 * | 7:0    | op    | opcode (below) |
 * | 15:8   | dst   | destination RF index, or predicate number |
 * | 23:16  | src1  | first source RF index |
 * | 31:24  | src2  | second source RF index, or predicate number |
 * | 63:32  | imm   | 32-bit immediate (sign-extended unless noted) |
 *
 * RF index 0..223 names `%r0..%r223` (must be below `wd.size`), 224..255 names `%g0..%g31`.
 * Branch targets are `ip + imm` (imm a multiple of 8). Loads and stores use the address
 * `src1 + imm`, must be naturally aligned, and go through the machine's memory interface.
 */
export const OP = {
  NOP: 0x00,
  HALT: 0x01,
  ADDD: 0x02,
  ADDDI: 0x03,
  SUBD: 0x04,
  ANDD: 0x05,
  ORD: 0x06,
  XORD: 0x07,
  SHLDI: 0x08,
  SHRDI: 0x09,
  MOVDI: 0x0a,
  MOVHI: 0x0b,
  UMODW: 0x0c,
  ANDDI: 0x0d,
  LDB: 0x10,
  LDH: 0x11,
  LDW: 0x12,
  LDD: 0x13,
  STB: 0x14,
  STH: 0x15,
  STW: 0x16,
  STD: 0x17,
  CMPEQD: 0x20,
  CMPBD: 0x21,
  CMPEQDI: 0x22,
  CT: 0x30,
  CTP: 0x31,
  SETLC: 0x32,
  LOOP: 0x33,
  RDLC: 0x34,
  SOUT: 0x40,
  SOUTI: 0x41,
} as const;

export type Opcode = (typeof OP)[keyof typeof OP];

/** Mnemonic, operand syntax and effect of each opcode (the README's table is generated from this). */
export const OPCODE_INFO: Readonly<Record<Opcode, { name: string; syntax: string; effect: string }>> = {
  [OP.NOP]: { name: 'nop', syntax: 'nop', effect: 'nothing' },
  [OP.HALT]: { name: 'halt', syntax: 'halt', effect: 'the vCPU halts; ip stays on the bundle' },
  [OP.ADDD]: { name: 'addd', syntax: 'addd d, s1, s2', effect: 'd = s1 + s2 (mod 2^64)' },
  [OP.ADDDI]: { name: 'adddi', syntax: 'adddi d, s1, imm', effect: 'd = s1 + sext(imm)' },
  [OP.SUBD]: { name: 'subd', syntax: 'subd d, s1, s2', effect: 'd = s1 - s2' },
  [OP.ANDD]: { name: 'andd', syntax: 'andd d, s1, s2', effect: 'd = s1 & s2' },
  [OP.ORD]: { name: 'ord', syntax: 'ord d, s1, s2', effect: 'd = s1 | s2' },
  [OP.XORD]: { name: 'xord', syntax: 'xord d, s1, s2', effect: 'd = s1 ^ s2' },
  [OP.SHLDI]: { name: 'shldi', syntax: 'shldi d, s1, imm', effect: 'd = s1 << (imm & 63)' },
  [OP.SHRDI]: { name: 'shrdi', syntax: 'shrdi d, s1, imm', effect: 'd = s1 >>> (imm & 63) (logical)' },
  [OP.MOVDI]: { name: 'movdi', syntax: 'movdi d, imm', effect: 'd = sext(imm)' },
  [OP.MOVHI]: { name: 'movhi', syntax: 'movhi d, imm', effect: 'd[63:32] = imm (low word kept)' },
  [OP.UMODW]: { name: 'umodw', syntax: 'umodw d, s1, s2', effect: 'd = s1[31:0] mod s2[31:0]; s2 = 0 faults' },
  [OP.ANDDI]: { name: 'anddi', syntax: 'anddi d, s1, imm', effect: 'd = s1 & sext(imm)' },
  [OP.LDB]: { name: 'ldb', syntax: 'ldb d, [s1 + imm]', effect: 'd = zext(mem8)' },
  [OP.LDH]: { name: 'ldh', syntax: 'ldh d, [s1 + imm]', effect: 'd = zext(mem16)' },
  [OP.LDW]: { name: 'ldw', syntax: 'ldw d, [s1 + imm]', effect: 'd = zext(mem32)' },
  [OP.LDD]: { name: 'ldd', syntax: 'ldd d, [s1 + imm]', effect: 'd = mem64' },
  [OP.STB]: { name: 'stb', syntax: 'stb [s1 + imm], s2', effect: 'mem8 = s2[7:0]' },
  [OP.STH]: { name: 'sth', syntax: 'sth [s1 + imm], s2', effect: 'mem16 = s2[15:0]' },
  [OP.STW]: { name: 'stw', syntax: 'stw [s1 + imm], s2', effect: 'mem32 = s2[31:0]' },
  [OP.STD]: { name: 'std', syntax: 'std [s1 + imm], s2', effect: 'mem64 = s2' },
  [OP.CMPEQD]: { name: 'cmpeqd', syntax: 'cmpeqd %predD, s1, s2', effect: 'pred = (s1 == s2)' },
  [OP.CMPBD]: { name: 'cmpbd', syntax: 'cmpbd %predD, s1, s2', effect: 'pred = (s1 < s2) unsigned' },
  [OP.CMPEQDI]: { name: 'cmpeqdi', syntax: 'cmpeqdi %predD, s1, imm', effect: 'pred = (s1 == sext(imm))' },
  [OP.CT]: { name: 'ct', syntax: 'ct imm', effect: 'ip = ip + imm' },
  [OP.CTP]: {
    name: 'ctp',
    syntax: 'ctp [~]%predS, imm',
    effect: 'if pred (negated when dst bit 0 is set) then ip = ip + imm',
  },
  [OP.SETLC]: {
    name: 'setlc',
    syntax: 'setlc s1',
    effect: 'LSR.lcnt/LSR1 = s1 (32 bits below ISA v5), vlc = 1, over = 0; ILCR loads the same count',
  },
  [OP.LOOP]: {
    name: 'loop',
    syntax: 'loop imm',
    effect: 'lcnt = lcnt - 1 (saturating); over = (lcnt == 0); if lcnt != 0 then ip = ip + imm',
  },
  [OP.RDLC]: { name: 'rdlc', syntax: 'rdlc d', effect: 'd = LSR1 (the 64-bit loop counter)' },
  [OP.SOUT]: { name: 'sout', syntax: 'sout s1', effect: 'serial console <- s1[7:0]' },
  [OP.SOUTI]: { name: 'souti', syntax: 'souti imm', effect: 'serial console <- imm[7:0]' },
};

/** First RF index of the global registers: `%gN` is `G(N)`. */
export const GLOBAL_BASE = 224;
export const G = (n: number): number => GLOBAL_BASE + n;

/** Encodes one bundle as [low word, high word] (both u32). */
export function encodeBundle(op: Opcode, dst = 0, src1 = 0, src2 = 0, imm = 0): [number, number] {
  return [(op | ((dst & 0xff) << 8) | ((src1 & 0xff) << 16) | ((src2 & 0xff) << 24)) >>> 0, imm >>> 0];
}

/** A decoded bundle, for disassembly and tests. */
export interface Bundle {
  op: number;
  dst: number;
  src1: number;
  src2: number;
  imm: number;
}

export function decodeBundle(lo: number, hi: number): Bundle {
  return { op: lo & 0xff, dst: (lo >>> 8) & 0xff, src1: (lo >>> 16) & 0xff, src2: lo >>> 24, imm: hi | 0 };
}
