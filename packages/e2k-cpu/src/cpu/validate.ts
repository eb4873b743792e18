import { CpuInvariantError, type InvariantViolation } from '../errors.js';
import type { CheckedState, Invariant, InvariantContext } from './invariant.js';
import { CORE_INVARIANTS } from './invariants-core.js';
import { STATE_INVARIANTS } from './invariants-state.js';

/** Every spec §6 check, in the spec's order. */
export const CPU_INVARIANTS: readonly Invariant[] = [...CORE_INVARIANTS, ...STATE_INVARIANTS];

export interface ValidateOptions extends InvariantContext {
  /** Soft violations become errors (and informational notes become warnings). */
  strict?: boolean;
  /** vCPU index, for error messages. */
  cpuIndex?: number;
}

export interface ValidationResult {
  /** Hard violations (and soft ones in strict mode): each would reject the state. */
  errors: InvariantViolation[];
  /** Soft violations outside strict mode: the state is accepted. */
  warnings: InvariantViolation[];
}

/**
 * Runs every §6 invariant over `state`. Hard violations are errors; soft ones are warnings,
 * or errors when `strict`. Informational checks (B3) are reported only in strict mode, as warnings.
 */
export function checkCpuState(state: CheckedState, opts: ValidateOptions = {}): ValidationResult {
  const errors: InvariantViolation[] = [];
  const warnings: InvariantViolation[] = [];
  for (const inv of CPU_INVARIANTS) {
    for (const found of inv.check(state, opts)) {
      if (inv.severity === 'info') {
        if (opts.strict) warnings.push(found);
      } else if (found.severity === 'hard' || opts.strict) {
        errors.push(found);
      } else {
        warnings.push(found);
      }
    }
  }
  return { errors, warnings };
}

/**
 * Like {@link checkCpuState}, but throws a {@link CpuInvariantError} for the first error
 * (naming the invariant, the field and its value) and returns the warnings otherwise.
 */
export function validateCpuState(state: CheckedState, opts: ValidateOptions = {}): InvariantViolation[] {
  const { errors, warnings } = checkCpuState(state, opts);
  const first = errors[0];
  if (first) throw new CpuInvariantError(first, opts.cpuIndex);
  return warnings;
}
