import { MigrationError } from '../errors.js';

/**
 * Errors of the migration control plane (capabilities, parameters, states, the source and
 * destination drivers). Callers branch on `code`.
 */
export type MigrationControlErrorCode =
  /** A capability name QEMU 7.2 does not have. */
  | 'E_UNKNOWN_CAPABILITY'
  /** A capability QEMU has that e2k-migrate does not implement (yet). */
  | 'E_NOT_SUPPORTED'
  /** A combination of capabilities QEMU rejects (e.g. postcopy-preempt without postcopy-ram). */
  | 'E_CAPABILITY_CONFLICT'
  /** A parameter name QEMU 7.2 does not have. */
  | 'E_UNKNOWN_PARAMETER'
  /** A parameter value outside its range or of the wrong type. */
  | 'E_BAD_PARAMETER'
  /** The operation is not allowed in the current migration state. */
  | 'E_BAD_STATE'
  /** A state machine received an event it has no transition for. */
  | 'E_ILLEGAL_TRANSITION';

export class MigrationControlError extends MigrationError {
  declare readonly code: MigrationControlErrorCode;
  /** The capability or parameter concerned. */
  readonly subject: string | undefined;
  /** For unknown names: every valid name. */
  readonly valid: readonly string[] | undefined;

  constructor(
    code: MigrationControlErrorCode,
    message: string,
    details: { subject?: string; valid?: readonly string[]; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'MigrationControlError';
    this.subject = details.subject;
    this.valid = details.valid;
  }
}
