import { E2kError } from '../errors.js';
import { encodeBundle, OP, type Opcode } from './isa.js';

interface Pending {
  op: Opcode;
  dst: number;
  src1: number;
  src2: number;
  imm: number;
  /** Branch target label, resolved to `target - ip` at assembly. */
  label?: string;
}

/**
 * Builds guest code for {@link OP}: one method per mnemonic, labels for branch targets.
 * `assemble()` returns the little-endian bytes to place at `base`.
 */
export class Assembler {
  readonly base: number;
  private readonly code: Pending[] = [];
  private readonly labels = new Map<string, number>();

  constructor(base: number) {
    if (base % 8 !== 0) throw new E2kError('E_MACHINE_CONFIG', `code base 0x${base.toString(16)} not 8-byte aligned`);
    this.base = base;
  }

  /** Address of the next bundle. */
  get here(): number {
    return this.base + this.code.length * 8;
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new E2kError('E_MACHINE_CONFIG', `label ${name} defined twice`);
    this.labels.set(name, this.here);
    return this;
  }

  private emit(op: Opcode, dst = 0, src1 = 0, src2 = 0, imm = 0, label?: string): this {
    this.code.push({ op, dst, src1, src2, imm, ...(label === undefined ? {} : { label }) });
    return this;
  }

  nop = () => this.emit(OP.NOP);
  halt = () => this.emit(OP.HALT);
  addd = (d: number, a: number, b: number) => this.emit(OP.ADDD, d, a, b);
  adddi = (d: number, a: number, imm: number) => this.emit(OP.ADDDI, d, a, 0, imm);
  subd = (d: number, a: number, b: number) => this.emit(OP.SUBD, d, a, b);
  andd = (d: number, a: number, b: number) => this.emit(OP.ANDD, d, a, b);
  anddi = (d: number, a: number, imm: number) => this.emit(OP.ANDDI, d, a, 0, imm);
  ord = (d: number, a: number, b: number) => this.emit(OP.ORD, d, a, b);
  xord = (d: number, a: number, b: number) => this.emit(OP.XORD, d, a, b);
  shldi = (d: number, a: number, n: number) => this.emit(OP.SHLDI, d, a, 0, n);
  shrdi = (d: number, a: number, n: number) => this.emit(OP.SHRDI, d, a, 0, n);
  movdi = (d: number, imm: number) => this.emit(OP.MOVDI, d, 0, 0, imm);
  movhi = (d: number, imm: number) => this.emit(OP.MOVHI, d, 0, 0, imm);
  umodw = (d: number, a: number, b: number) => this.emit(OP.UMODW, d, a, b);
  ldb = (d: number, base: number, off = 0) => this.emit(OP.LDB, d, base, 0, off);
  ldh = (d: number, base: number, off = 0) => this.emit(OP.LDH, d, base, 0, off);
  ldw = (d: number, base: number, off = 0) => this.emit(OP.LDW, d, base, 0, off);
  ldd = (d: number, base: number, off = 0) => this.emit(OP.LDD, d, base, 0, off);
  stb = (base: number, off: number, v: number) => this.emit(OP.STB, 0, base, v, off);
  sth = (base: number, off: number, v: number) => this.emit(OP.STH, 0, base, v, off);
  stw = (base: number, off: number, v: number) => this.emit(OP.STW, 0, base, v, off);
  std = (base: number, off: number, v: number) => this.emit(OP.STD, 0, base, v, off);
  cmpeqd = (p: number, a: number, b: number) => this.emit(OP.CMPEQD, p, a, b);
  cmpbd = (p: number, a: number, b: number) => this.emit(OP.CMPBD, p, a, b);
  cmpeqdi = (p: number, a: number, imm: number) => this.emit(OP.CMPEQDI, p, a, 0, imm);
  ct = (label: string) => this.emit(OP.CT, 0, 0, 0, 0, label);
  /** Branch when `%predP` is set (or clear, with `negate`). */
  ctp = (p: number, label: string, negate = false) => this.emit(OP.CTP, negate ? 1 : 0, 0, p, 0, label);
  setlc = (a: number) => this.emit(OP.SETLC, 0, a);
  loop = (label: string) => this.emit(OP.LOOP, 0, 0, 0, 0, label);
  rdlc = (d: number) => this.emit(OP.RDLC, d);
  sout = (a: number) => this.emit(OP.SOUT, 0, a);
  souti = (c: number | string) => this.emit(OP.SOUTI, 0, 0, 0, typeof c === 'string' ? c.charCodeAt(0) : c);

  /** Resolves labels and returns the code bytes. */
  assemble(): Uint8Array {
    const out = new Uint8Array(this.code.length * 8);
    const dv = new DataView(out.buffer);
    this.code.forEach((b, i) => {
      let imm = b.imm;
      if (b.label !== undefined) {
        const target = this.labels.get(b.label);
        if (target === undefined) throw new E2kError('E_MACHINE_CONFIG', `undefined label ${b.label}`);
        imm = target - (this.base + i * 8);
      }
      const [lo, hi] = encodeBundle(b.op, b.dst, b.src1, b.src2, imm);
      dv.setUint32(i * 8, lo, true);
      dv.setUint32(i * 8 + 4, hi, true);
    });
    return out;
  }
}
