/**
 * Shared by the hard- and soft-invariant tests: a case mutates a valid CPU state, `load` sends it
 * through the `e2k-cpu` VMSD into a destination CPU (post_load runs the invariants), `caught`
 * returns the CpuInvariantError a load throws.
 */
import { ByteReader, ByteWriter, decodeVmsd, encodeVmsd } from '@e2k-migrate/vmstate';
import { e2kCpuVmsd, vmstateE2kCpu } from '../cpu/cpu.vmstate.js';
import type { cpuConfig, E2kCpuState } from '../cpu/state.js';
import { resetCpuState } from '../cpu/state.js';
import { CpuInvariantError, type InvariantViolation } from '../errors.js';

export type Mutate = (s: E2kCpuState) => void;

export interface InvariantCase {
  id: string;
  field: string;
  mutate: Mutate;
  /** Configuration of source and destination (default e8c, tags off, system mode). */
  cfg?: Parameters<typeof cpuConfig>[0];
  /** Destination configuration when it differs from the source's. */
  dest?: Parameters<typeof cpuConfig>[0];
}

/** Encodes the (possibly invalid) state and loads it into a destination CPU through the VMSD. */
export function load(
  s: E2kCpuState,
  destCfg = s.cfg,
  opts: { strict?: boolean; warnings?: InvariantViolation[] } = {},
): E2kCpuState {
  const bytes = encodeVmsd(vmstateE2kCpu, s, new ByteWriter()).written();
  const vmsd = e2kCpuVmsd({
    dest: destCfg,
    cpuIndex: 3,
    ...(opts.strict ? { strict: true } : {}),
    onWarning: (w) => opts.warnings?.push(w),
  });
  return decodeVmsd(vmsd, new ByteReader(bytes), 1, resetCpuState(destCfg));
}

export function caught(fn: () => unknown): CpuInvariantError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CpuInvariantError) return e;
    throw e;
  }
  throw new Error('expected a CpuInvariantError');
}
