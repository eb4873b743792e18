import { TARGET_PAGE_SIZE } from '../cpu/constants.js';
import { E2kError } from '../errors.js';
import { Assembler } from './assembler.js';
import { CODE_BASE, CODE_LIMIT, dataSlices, MAILBOX_BASE, MBOX, mailboxAddress, type VcpuSlice } from './layout.js';

/**
 * Workload patterns of the guest program:
 * - `increment`: passes over the vCPU's slice incrementing byte 0 of every page (QEMU's migration
 *   test pattern), the pass count stored in the mailbox and a `B` printed after each pass;
 * - `random`: seeded xorshift64 (state kept in a register) choosing a page of the working set and an
 *   8-byte slot in it, storing the generator value there;
 * - `hotset`: the increment sweep over only the first W pages of the slice (a working set);
 * - `rate`: the hotset sweep, paced by the worker to a target number of dirtied pages per second.
 */
export const WORKLOAD_PATTERNS = ['increment', 'random', 'hotset', 'rate'] as const;
export type WorkloadPattern = (typeof WORKLOAD_PATTERNS)[number];

/** Pattern id stored in the mailbox; the program dispatches on it. */
export const PATTERN_ID: Readonly<Record<WorkloadPattern, number>> = { increment: 0, random: 1, hotset: 2, rate: 3 };

export interface WorkloadConfig {
  pattern: WorkloadPattern;
  /** Seed of `random` (per-vCPU seeds are derived from it). Default 1. */
  seed?: bigint;
  /** Working-set pages per vCPU (`random`, `hotset`, `rate`); default: the whole slice (hotset: 64). */
  workingSetPages?: number;
  /** `rate`: target dirtied pages per second per vCPU (pacing outside the guest). */
  pagesPerSecond?: number;
}

/** Bundles the sweep loop executes per page, and the random loop per store (for pacing and benches). */
export const SWEEP_STEPS_PER_PAGE = 5;
/** Bundles per sweep pass besides the pages (loop setup, progress store, marker, branch). */
export const SWEEP_PASS_OVERHEAD_STEPS = 6;
/** Bundles of the program's prologue (mailbox loads, marker, dispatch) before the first pass. */
export const PROLOGUE_STEPS = 11;
export const RANDOM_STEPS_PER_STORE = 19;

/** Registers of the program: r0 = vCPU index (set at reset), r1 = mailbox, r2..r7 parameters. */
const R = { cpu: 0, mbox: 1, base: 2, pages: 3, ws: 4, x: 5, pattern: 6, progress: 7, t: 8, v: 9, p: 10, off: 11 };

/** The guest program (one copy in RAM at {@link CODE_BASE}, shared by every vCPU). */
export function guestProgram(): Uint8Array {
  const a = new Assembler(CODE_BASE);
  a.shldi(R.mbox, R.cpu, 6).adddi(R.mbox, R.mbox, MAILBOX_BASE);
  a.ldd(R.base, R.mbox, MBOX.DATA_BASE).ldd(R.pages, R.mbox, MBOX.DATA_PAGES).ldd(R.ws, R.mbox, MBOX.WORKING_SET);
  a.ldd(R.x, R.mbox, MBOX.SEED).ldd(R.pattern, R.mbox, MBOX.PATTERN).ldd(R.progress, R.mbox, MBOX.PROGRESS);
  a.souti('A');
  a.cmpeqdi(0, R.pattern, PATTERN_ID.random).ctp(0, 'random');
  // sweep: byte 0 of each of the first `ws` pages += 1, then progress += 1, print 'B'
  a.label('pass').adddi(R.t, R.base, 0).setlc(R.ws);
  a.label('sweep').ldb(R.v, R.t, 0).adddi(R.v, R.v, 1).stb(R.t, 0, R.v).adddi(R.t, R.t, TARGET_PAGE_SIZE).loop('sweep');
  a.adddi(R.progress, R.progress, 1).std(R.mbox, MBOX.PROGRESS, R.progress).souti('B').ct('pass');
  // random: x = xorshift64(x); store x at base + (x mod ws) * 4096 + ((x >> 32) & 0xff8)
  a.label('random');
  a.shldi(R.v, R.x, 13)
    .xord(R.x, R.x, R.v)
    .shrdi(R.v, R.x, 7)
    .xord(R.x, R.x, R.v)
    .shldi(R.v, R.x, 17)
    .xord(R.x, R.x, R.v);
  a.umodw(R.p, R.x, R.ws).shldi(R.p, R.p, 12).addd(R.p, R.p, R.base);
  a.shrdi(R.off, R.x, 32).anddi(R.off, R.off, 0xff8).addd(R.p, R.p, R.off);
  a.std(R.p, 0, R.x).adddi(R.progress, R.progress, 1).std(R.mbox, MBOX.PROGRESS, R.progress);
  a.anddi(R.v, R.progress, 0xffff).cmpeqdi(1, R.v, 0).ctp(1, 'random', true).souti('R').ct('random');
  const code = a.assemble();
  if (CODE_BASE + code.length > CODE_LIMIT) throw new E2kError('E_MACHINE_CONFIG', 'guest program too large');
  return code;
}

/** The per-vCPU seed: never 0 (xorshift's fixed point). */
export function vcpuSeed(seed: bigint, cpu: number): bigint {
  const x = (seed + BigInt(cpu) * 0x9e37_79b9_7f4a_7c15n) & 0xffff_ffff_ffff_ffffn;
  return x === 0n ? 1n : x;
}

/** Working-set pages of one slice under `cfg`. */
export function workingSet(cfg: WorkloadConfig, slice: VcpuSlice): number {
  if (cfg.pattern === 'increment') return slice.pages;
  const w = cfg.workingSetPages ?? (cfg.pattern === 'hotset' ? 64 : slice.pages);
  if (!Number.isInteger(w) || w < 1) throw new E2kError('E_MACHINE_CONFIG', `working set ${w} must be ≥ 1 page`);
  return Math.min(w, slice.pages);
}

/** One vCPU's boot parameters, as its mailbox holds them. */
export interface MailboxParams {
  base: number;
  pages: number;
  workingSet: number;
  seed: bigint;
  pattern: number;
}

export function mailboxParams(cfg: WorkloadConfig, slice: VcpuSlice): MailboxParams {
  return {
    base: slice.base,
    pages: slice.pages,
    workingSet: workingSet(cfg, slice),
    seed: vcpuSeed(cfg.seed ?? 1n, slice.cpu),
    pattern: PATTERN_ID[cfg.pattern],
  };
}

/** Minimal writer the boot code needs (native `GuestMemory` fits). */
export interface BootBus {
  readonly size: number;
  writeBytes(addr: number, src: Uint8Array): void;
}

/** Writes the program and every vCPU's mailbox into RAM; returns the slices. */
export function bootWorkload(mem: BootBus, vcpus: number, cfg: WorkloadConfig): VcpuSlice[] {
  const slices = dataSlices(mem.size, vcpus);
  mem.writeBytes(CODE_BASE, guestProgram());
  for (const s of slices) mem.writeBytes(mailboxAddress(s.cpu), encodeMailbox(mailboxParams(cfg, s)));
  return slices;
}

function encodeMailbox(p: MailboxParams): Uint8Array {
  const out = new Uint8Array(64);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(MBOX.DATA_BASE, BigInt(p.base), true);
  dv.setBigUint64(MBOX.DATA_PAGES, BigInt(p.pages), true);
  dv.setBigUint64(MBOX.WORKING_SET, BigInt(p.workingSet), true);
  dv.setBigUint64(MBOX.SEED, p.seed, true);
  dv.setBigUint64(MBOX.PATTERN, BigInt(p.pattern), true);
  return out;
}

/** Steps per second that give `cfg.pagesPerSecond` (0 = unpaced). */
export function pacedStepsPerSecond(cfg: WorkloadConfig): number {
  if (cfg.pattern !== 'rate' || !cfg.pagesPerSecond) return 0;
  return cfg.pagesPerSecond * SWEEP_STEPS_PER_PAGE;
}
