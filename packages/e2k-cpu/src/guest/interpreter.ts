import { E2K_NR_COUNT } from '../cpu/constants.js';
import { CPU_SLOT } from '../cpu/cpu-layout.js';
import type { CpuView } from '../cpu/cpu-view.js';
import { OP } from './isa.js';

/** The part of the machine's memory interface the interpreter uses (native `GuestMemory` fits). */
export interface GuestBus {
  readonly size: number;
  load8(addr: number): number;
  load16(addr: number): number;
  load32(addr: number): number;
  store8(addr: number, value: number): void;
  store16(addr: number, value: number): void;
  store32(addr: number, value: number): void;
}

export interface RunContext {
  cpu: CpuView;
  mem: GuestBus;
  /** The serial console's transmit register. */
  serialOut(byte: number): void;
}

/** Why `runBundles` returned: the step budget ran out, the guest halted, or it faulted. */
export type RunExit = 'budget' | 'halt' | 'fault';

export interface RunResult {
  /** Bundles completed (a faulting or halting bundle is not counted). */
  executed: number;
  exit: RunExit;
  /** For `fault`: what went wrong (ip still points at the faulting bundle). */
  fault?: string;
}

const TWO32 = 4294967296;
const RF = CPU_SLOT.rfLo * 2;
const TAG = CPU_SLOT.rfTag;
const IP = CPU_SLOT.ip * 2;
const PREGS = CPU_SLOT.pregs * 2;
const LSR = CPU_SLOT.lsr * 2;
const LCNT = CPU_SLOT.lsrLcnt * 2;
const ILCR = CPU_SLOT.ilcr * 2;
const ILCNT = CPU_SLOT.ilcrLcnt * 2;

/**
 * Executes up to `budget` bundles of the vCPU whose state is `ctx.cpu`. The interpreter keeps no
 * state of its own: the registers, predicates, loop counter and ip live in the CPU buffer and
 * everything else in guest RAM, so at every return the vCPU is at a bundle boundary.
 */
export function runBundles(ctx: RunContext, budget: number): RunResult {
  const { mem } = ctx;
  const u32 = ctx.cpu.u32;
  const f64 = ctx.cpu.f64;
  const memSize = mem.size;
  const wdSize = f64[CPU_SLOT.wdSize] as number;
  const bpSize = f64[CPU_SLOT.bpSize] as number;
  const bpCur = f64[CPU_SLOT.bpCur] as number;
  const lcnt64 = (f64[CPU_SLOT.isa] as number) >= 5;
  const tags = f64[CPU_SLOT.tags] !== 0;
  let ip = (u32[IP + 1] as number) * TWO32 + (u32[IP] as number);
  let executed = 0;
  let fault: string | undefined;

  const badReg = (r: number) => r < E2K_NR_COUNT && r >= wdSize;
  const setReg = (r: number, lo: number, hi: number) => {
    u32[RF + 2 * r] = lo;
    u32[RF + 2 * r + 1] = hi;
    if (tags) f64[TAG + r] = 0;
  };
  const setPred = (p: number, v: boolean) => {
    const phys = p < bpSize ? (p + bpCur) % bpSize : p;
    const word = PREGS + (phys >>> 4);
    const bit = (phys & 15) * 2;
    let w = (u32[word] as number) & ~(3 << bit);
    if (v) w |= 1 << bit;
    u32[word] = w;
  };
  const getPred = (p: number) => {
    const phys = p < bpSize ? (p + bpCur) % bpSize : p;
    return (((u32[PREGS + (phys >>> 4)] as number) >>> ((phys & 15) * 2)) & 1) === 1;
  };

  try {
    run: while (executed < budget) {
      if (ip < 0 || ip % 8 !== 0 || ip + 8 > memSize) {
        fault = 'bundle fetch outside RAM or misaligned';
        break;
      }
      const w = mem.load32(ip);
      const imm = mem.load32(ip + 4) | 0;
      const op = w & 0xff;
      const d = (w >>> 8) & 0xff;
      const a = (w >>> 16) & 0xff;
      const b = w >>> 24;
      if (badReg(d) || badReg(a) || badReg(b)) {
        fault = `register operand outside the window (wd.size ${wdSize})`;
        break;
      }
      const alo = u32[RF + 2 * a] as number;
      const ahi = u32[RF + 2 * a + 1] as number;
      const blo = u32[RF + 2 * b] as number;
      const bhi = u32[RF + 2 * b + 1] as number;
      let next = ip + 8;
      switch (op) {
        case OP.NOP:
          break;
        case OP.HALT:
          break run;
        case OP.ADDD: {
          const lo = alo + blo;
          setReg(d, lo >>> 0, (ahi + bhi + (lo > 0xffffffff ? 1 : 0)) >>> 0);
          break;
        }
        case OP.ADDDI: {
          const lo = alo + (imm >>> 0);
          setReg(d, lo >>> 0, (ahi + (imm < 0 ? 0xffffffff : 0) + (lo > 0xffffffff ? 1 : 0)) >>> 0);
          break;
        }
        case OP.SUBD: {
          const lo = alo - blo;
          setReg(d, lo >>> 0, (ahi - bhi - (lo < 0 ? 1 : 0)) >>> 0);
          break;
        }
        case OP.ANDD:
          setReg(d, (alo & blo) >>> 0, (ahi & bhi) >>> 0);
          break;
        case OP.ANDDI:
          setReg(d, (alo & imm) >>> 0, (ahi & (imm < 0 ? 0xffffffff : 0)) >>> 0);
          break;
        case OP.ORD:
          setReg(d, (alo | blo) >>> 0, (ahi | bhi) >>> 0);
          break;
        case OP.XORD:
          setReg(d, (alo ^ blo) >>> 0, (ahi ^ bhi) >>> 0);
          break;
        case OP.SHLDI: {
          const n = imm & 63;
          if (n === 0) setReg(d, alo, ahi);
          else if (n < 32) setReg(d, (alo << n) >>> 0, ((ahi << n) | (alo >>> (32 - n))) >>> 0);
          else setReg(d, 0, (alo << (n - 32)) >>> 0);
          break;
        }
        case OP.SHRDI: {
          const n = imm & 63;
          if (n === 0) setReg(d, alo, ahi);
          else if (n < 32) setReg(d, ((alo >>> n) | (ahi << (32 - n))) >>> 0, ahi >>> n);
          else setReg(d, ahi >>> (n - 32), 0);
          break;
        }
        case OP.MOVDI:
          setReg(d, imm >>> 0, imm < 0 ? 0xffffffff : 0);
          break;
        case OP.MOVHI:
          setReg(d, u32[RF + 2 * d] as number, imm >>> 0);
          break;
        case OP.UMODW:
          if (blo === 0) {
            fault = 'umodw: division by zero';
            break run;
          }
          setReg(d, alo % blo, 0);
          break;
        case OP.LDB:
        case OP.LDH:
        case OP.LDW:
        case OP.LDD:
        case OP.STB:
        case OP.STH:
        case OP.STW:
        case OP.STD: {
          const n = 1 << (op & 3);
          const addr = ahi * TWO32 + alo + imm;
          if (addr < 0 || addr + n > memSize || addr % n !== 0) {
            fault = `${n}-byte access at 0x${addr.toString(16)} outside RAM or misaligned`;
            break run;
          }
          if (op < OP.STB) {
            if (n === 1) setReg(d, mem.load8(addr), 0);
            else if (n === 2) setReg(d, mem.load16(addr), 0);
            else if (n === 4) setReg(d, mem.load32(addr) >>> 0, 0);
            else setReg(d, mem.load32(addr) >>> 0, mem.load32(addr + 4) >>> 0);
          } else if (n === 1) mem.store8(addr, blo & 0xff);
          else if (n === 2) mem.store16(addr, blo & 0xffff);
          else if (n === 4) mem.store32(addr, blo);
          else {
            mem.store32(addr, blo);
            mem.store32(addr + 4, bhi);
          }
          break;
        }
        case OP.CMPEQD:
          setPred(d & 31, alo === blo && ahi === bhi);
          break;
        case OP.CMPBD:
          setPred(d & 31, ahi < bhi || (ahi === bhi && alo < blo));
          break;
        case OP.CMPEQDI:
          setPred(d & 31, alo === imm >>> 0 && ahi === (imm < 0 ? 0xffffffff : 0));
          break;
        case OP.CT:
          next = ip + imm;
          break;
        case OP.CTP:
          if (getPred(b & 31) !== ((d & 1) === 1)) next = ip + imm;
          break;
        case OP.SETLC: {
          const hi = lcnt64 ? ahi : 0;
          u32[LCNT] = alo;
          u32[LCNT + 1] = hi;
          u32[LSR] = alo;
          u32[LSR + 1] = (((u32[LSR + 1] as number) | (1 << 5)) & ~(1 << 6)) >>> 0; // vlc = 1, over = 0
          u32[ILCNT] = alo;
          u32[ILCNT + 1] = hi;
          u32[ILCR] = alo;
          break;
        }
        case OP.LOOP: {
          let lo = u32[LCNT] as number;
          let hi = u32[LCNT + 1] as number;
          if (lo !== 0 || hi !== 0) {
            if (lo === 0) hi = (hi - 1) >>> 0;
            lo = (lo - 1) >>> 0;
          }
          u32[LCNT] = lo;
          u32[LCNT + 1] = hi;
          u32[LSR] = lo;
          const done = lo === 0 && hi === 0;
          u32[LSR + 1] = (done ? (u32[LSR + 1] as number) | (1 << 6) : (u32[LSR + 1] as number) & ~(1 << 6)) >>> 0;
          if (!done) next = ip + imm;
          break;
        }
        case OP.RDLC:
          setReg(d, u32[LCNT] as number, u32[LCNT + 1] as number);
          break;
        case OP.SOUT:
          ctx.serialOut(alo & 0xff);
          break;
        case OP.SOUTI:
          ctx.serialOut(imm & 0xff);
          break;
        default:
          fault = `illegal opcode 0x${op.toString(16).padStart(2, '0')}`;
          break run;
      }
      if (next !== ip + 8 && (next < 0 || next % 8 !== 0 || next + 8 > memSize)) {
        fault = `branch target 0x${next.toString(16)} outside RAM or misaligned`;
        break;
      }
      ip = next;
      executed++;
    }
  } catch (err) {
    // The memory interface refused an access (region closed, …): a fault at this bundle.
    fault = `memory interface: ${(err as Error).message}`;
  }
  u32[IP] = ip % TWO32;
  u32[IP + 1] = Math.floor(ip / TWO32);
  if (fault !== undefined) return { executed, exit: 'fault', fault };
  return { executed, exit: executed < budget ? 'halt' : 'budget' };
}
