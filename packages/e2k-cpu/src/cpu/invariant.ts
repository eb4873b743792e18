import type { InvariantSeverity, InvariantViolation } from '../errors.js';
import type { E2kCpuCfg, E2kCpuState } from './state.js';

/** What a check may compare against besides the state itself. */
export interface InvariantContext {
  /** The destination's configuration (C2); absent when only decoding (e.g. `analyze`). */
  dest?: E2kCpuCfg | undefined;
  /** Accept a different model name with the same ISA (§5.1 "explicit override"). */
  allowModelMismatch?: boolean | undefined;
}

/** Fields of the optional `e2k-cpu/unmodelled` subsection (never produced by this model). */
export interface E2kUnmodelled {
  pshtp: bigint;
  pcshtp: bigint;
  cwd: bigint;
}

/** The state a check sees: the CPU plus the optional unmodelled registers (S9). */
export type CheckedState = E2kCpuState & { unmodelled?: E2kUnmodelled };

/** One §6 check: returns the violations it finds (usually zero or one). */
export interface Invariant {
  id: string;
  /** The check's worst severity; individual violations carry their own. */
  severity: InvariantSeverity | 'info';
  /** One line from §6. */
  summary: string;
  check(s: CheckedState, ctx: InvariantContext): InvariantViolation[];
}

/** Builds one violation. `value` is shown as given (callers format hex). */
export function violation(
  invariant: string,
  severity: InvariantSeverity,
  field: string,
  value: bigint | number | string | boolean,
  message: string,
): InvariantViolation {
  const shown = typeof value === 'bigint' ? `0x${(value & 0xffff_ffff_ffff_ffffn).toString(16)}` : String(value);
  return { invariant, severity, field, value: shown, message };
}

/** Returns `[v]` when `bad`, else `[]`, so checks read as a list of conditions. */
export function when(bad: boolean, v: () => InvariantViolation): InvariantViolation[] {
  return bad ? [v()] : [];
}
