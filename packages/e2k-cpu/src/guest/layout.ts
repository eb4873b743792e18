import { TARGET_PAGE_SIZE } from '../cpu/constants.js';
import { E2kError } from '../errors.js';

/**
 * Guest-physical memory map of the E2K machine (all in `e2k.ram`):
 *
 * | range | use |
 * |---|---|
 * | `0x0000–0x0fff` | reserved (never touched) |
 * | `0x1000–0x1fff` | mailboxes: 64 bytes per vCPU (parameters written at boot, progress written by the guest) |
 * | `0x2000–0xffff` | guest code (one program shared by every vCPU) |
 * | `0x10000–end`   | data: split into equal page-aligned slices, one per vCPU (vCPUs never write each other's) |
 */
export const MAILBOX_BASE = 0x1000;
export const MAILBOX_SIZE = 64;
export const CODE_BASE = 0x2000;
export const CODE_LIMIT = 0x10000;
export const DATA_BASE = 0x10000;
/** Mailboxes fit in one page. */
export const MAX_VCPUS = TARGET_PAGE_SIZE / MAILBOX_SIZE;

/** Offsets inside a vCPU's mailbox (each a little-endian u64). */
export const MBOX = {
  /** Written by the guest: completed passes (sweep) or completed iterations (random). */
  PROGRESS: 0,
  /** Boot parameters. */
  DATA_BASE: 8,
  DATA_PAGES: 16,
  WORKING_SET: 24,
  SEED: 32,
  PATTERN: 40,
} as const;

export interface VcpuSlice {
  cpu: number;
  /** Guest-physical address of the slice's first page. */
  base: number;
  /** Pages in the slice. */
  pages: number;
}

/** The vCPU slices of a RAM of `ramSize` bytes; too little RAM is an `E_MACHINE_CONFIG` error. */
export function dataSlices(ramSize: number, vcpus: number): VcpuSlice[] {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    throw new E2kError('E_MACHINE_CONFIG', `vCPU count ${vcpus} outside [1, ${MAX_VCPUS}]`);
  }
  const dataPages = Math.floor((ramSize - DATA_BASE) / TARGET_PAGE_SIZE);
  const per = Math.floor(dataPages / vcpus);
  if (per < 1) {
    const need = DATA_BASE + vcpus * TARGET_PAGE_SIZE;
    throw new E2kError('E_MACHINE_CONFIG', `RAM of ${ramSize} bytes is too small for ${vcpus} vCPU(s): need ≥ ${need}`);
  }
  return Array.from({ length: vcpus }, (_, cpu) => ({
    cpu,
    base: DATA_BASE + cpu * per * TARGET_PAGE_SIZE,
    pages: per,
  }));
}

/** Address of a vCPU's mailbox. */
export function mailboxAddress(cpu: number): number {
  return MAILBOX_BASE + cpu * MAILBOX_SIZE;
}
