import { TARGET_PAGE_SIZE } from '../cpu/constants.js';
import { E2kError } from '../errors.js';
import { CODE_BASE, DATA_BASE, dataSlices, MAILBOX_BASE, MAILBOX_SIZE, MBOX, type VcpuSlice } from './layout.js';
import { guestProgram, type MailboxParams, mailboxParams, type WorkloadConfig } from './workload.js';

/** A RAM image to verify: the whole of `e2k.ram` as bytes. */
export type RamImage = Uint8Array;

export interface VcpuWorkloadReport {
  cpu: number;
  /** Completed passes (sweep patterns) or iterations (random), from the mailbox. */
  progress: bigint;
  /** Sweep patterns: pages already incremented in the pass in flight (the boundary). */
  boundary?: number;
}

/**
 * Checks a RAM image against the workload's invariant (for use after a migration):
 * - code and mailbox parameters are exactly what boot wrote; the reserved page is zero;
 * - sweep patterns (QEMU's migration-test invariant): with P the stored pass count, byte 0 of the
 *   working-set pages is `(P+1) & 0xff` up to one boundary and `P & 0xff` after it; every other
 *   byte of the slice is zero;
 * - random: the slice equals the replay of P iterations of the seeded generator (or P+1, when the
 *   vCPU stopped between the data store and the progress store).
 * Throws `E_WORKLOAD_INVARIANT` naming the vCPU, address, expected and found values.
 */
export function checkWorkloadInvariant(ram: RamImage, vcpus: number, cfg: WorkloadConfig): VcpuWorkloadReport[] {
  const fail = (msg: string): never => {
    throw new E2kError('E_WORKLOAD_INVARIANT', `workload ${cfg.pattern}: ${msg}`);
  };
  const slices = dataSlices(ram.length, vcpus);
  const dv = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const zeroFrom = (from: number, to: number, what: string) => {
    for (let i = from; i < to; i++)
      if (ram[i] !== 0) fail(`${what}: byte at 0x${i.toString(16)} is ${ram[i]}, expected 0`);
  };
  zeroFrom(0, MAILBOX_BASE, 'reserved page');
  const code = guestProgram();
  for (let i = 0; i < code.length; i++) {
    if (ram[CODE_BASE + i] !== code[i]) fail(`guest code modified at 0x${(CODE_BASE + i).toString(16)}`);
  }
  zeroFrom(CODE_BASE + code.length, DATA_BASE, 'code padding');
  return slices.map((s) => {
    const mb = MAILBOX_BASE + s.cpu * MAILBOX_SIZE;
    const p = mailboxParams(cfg, s);
    const got: MailboxParams = {
      base: Number(dv.getBigUint64(mb + MBOX.DATA_BASE, true)),
      pages: Number(dv.getBigUint64(mb + MBOX.DATA_PAGES, true)),
      workingSet: Number(dv.getBigUint64(mb + MBOX.WORKING_SET, true)),
      seed: dv.getBigUint64(mb + MBOX.SEED, true),
      pattern: Number(dv.getBigUint64(mb + MBOX.PATTERN, true)),
    };
    for (const k of Object.keys(p) as (keyof MailboxParams)[]) {
      if (got[k] !== p[k]) fail(`vCPU ${s.cpu} mailbox ${k} is ${got[k]}, expected ${p[k]}`);
    }
    const progress = dv.getBigUint64(mb + MBOX.PROGRESS, true);
    const slice = ram.subarray(s.base, s.base + s.pages * TARGET_PAGE_SIZE);
    if (cfg.pattern === 'random') {
      checkRandom(slice, s, p, progress, fail);
      return { cpu: s.cpu, progress };
    }
    return { cpu: s.cpu, progress, boundary: checkSweep(slice, s, p.workingSet, progress, fail) };
  });
}

function checkSweep(slice: Uint8Array, s: VcpuSlice, ws: number, passes: bigint, fail: (m: string) => never): number {
  const hi = Number((passes + 1n) & 0xffn);
  const lo = Number(passes & 0xffn);
  let boundary = -1;
  for (let page = 0; page < s.pages; page++) {
    const at = page * TARGET_PAGE_SIZE;
    const v = slice[at] as number;
    const addr = () => `0x${(s.base + at).toString(16)}`;
    if (page >= ws) {
      if (v !== 0) fail(`vCPU ${s.cpu} page ${addr()} outside the working set holds ${v}, expected 0`);
    } else if (boundary < 0 && v !== hi) {
      if (v !== lo) fail(`vCPU ${s.cpu} page ${addr()} holds ${v}, expected ${hi} or ${lo} (pass ${passes})`);
      boundary = page;
    } else if (boundary >= 0 && v !== lo) {
      fail(
        `vCPU ${s.cpu} page ${addr()} holds ${v} after the boundary at page ${boundary}, expected ${lo} (pass ${passes})`,
      );
    }
    for (let i = at + 1; i < at + TARGET_PAGE_SIZE; i++) {
      if (slice[i] !== 0) fail(`vCPU ${s.cpu} byte 0x${(s.base + i).toString(16)} is ${slice[i]}, expected 0`);
    }
  }
  return boundary < 0 ? ws : boundary;
}

const M64 = 0xffff_ffff_ffff_ffffn;

function checkRandom(slice: Uint8Array, s: VcpuSlice, p: MailboxParams, n: bigint, fail: (m: string) => never): void {
  const expected = new Uint8Array(slice.length);
  const dv = new DataView(expected.buffer);
  let x = p.seed;
  const iterate = () => {
    x ^= (x << 13n) & M64;
    x ^= x >> 7n;
    x ^= (x << 17n) & M64;
    const page = Number(x & 0xffff_ffffn) % p.workingSet;
    const off = Number((x >> 32n) & 0xff8n);
    dv.setBigUint64(page * TARGET_PAGE_SIZE + off, x, true);
  };
  for (let i = 0n; i < n; i++) iterate();
  const firstDiff = () => expected.findIndex((b, i) => b !== slice[i]);
  if (firstDiff() < 0) return;
  iterate();
  const d = firstDiff();
  if (d < 0) return;
  fail(
    `vCPU ${s.cpu} byte 0x${(s.base + d).toString(16)} is ${slice[d]}, replay of ${n} iterations gives ${expected[d]}`,
  );
}
