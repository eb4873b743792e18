/**
 * Errors raised by the vmstate package. Callers branch on `code`, never on the message.
 */
export type VmstateErrorCode =
  | 'E_TRUNCATED'
  | 'E_RANGE'
  | 'E_VERSION'
  | 'E_UNKNOWN_SUBSECTION'
  | 'E_EQUAL_MISMATCH'
  | 'E_LE_RANGE'
  | 'E_BAD_VALUE'
  | 'E_BAD_SCHEMA'
  | 'E_BAD_VMDESC';

export interface VmstateErrorDetails {
  /** Absolute byte offset in the input where the problem was found. */
  offset?: number;
  /** What was being read or written (field path, record name). */
  what?: string;
  /** VMSD (section / subsection / struct) name in which it happened. */
  vmsd?: string;
  cause?: unknown;
}

export class VmstateError extends Error {
  readonly code: VmstateErrorCode;
  readonly offset: number | undefined;
  readonly what: string | undefined;
  readonly vmsd: string | undefined;

  constructor(code: VmstateErrorCode, message: string, details: VmstateErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'VmstateError';
    this.code = code;
    this.offset = details.offset;
    this.what = details.what;
    this.vmsd = details.vmsd;
  }
}

/** Thrown when the input ends before a read could be satisfied. */
export class TruncatedError extends VmstateError {
  readonly needed: number;
  readonly available: number;

  constructor(what: string, offset: number, needed: number, available: number) {
    super(
      'E_TRUNCATED',
      `truncated input reading ${what} at byte offset ${offset}: need ${needed} byte(s), ${available} available`,
      { offset, what },
    );
    this.name = 'TruncatedError';
    this.needed = needed;
    this.available = available;
  }
}
