/**
 * Errors raised by the e2k-cpu package. Callers branch on `code`, never on the message.
 */
export type E2kErrorCode =
  /** A §6 load-time invariant failed (hard, or soft in strict mode). */
  | 'E_CPU_INVARIANT'
  /** Unknown CPU model, or a model/ISA combination that does not exist. */
  | 'E_CPU_MODEL'
  /** Machine configuration the machine cannot be built with (memory size, vCPU count, workload). */
  | 'E_MACHINE_CONFIG'
  /** A vCPU run-state transition that is not allowed from the current state. */
  | 'E_VCPU_STATE'
  /** The guest did something the interpreter refuses (illegal bundle, access outside RAM, …). */
  | 'E_GUEST_FAULT'
  /** A machine section or RAM image that does not fit this machine. */
  | 'E_MACHINE_STATE'
  /** A RAM image does not satisfy the workload's invariant. */
  | 'E_WORKLOAD_INVARIANT';

export interface E2kErrorDetails {
  cause?: unknown;
}

export class E2kError extends Error {
  readonly code: E2kErrorCode;

  constructor(code: E2kErrorCode, message: string, details: E2kErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'E2kError';
    this.code = code;
  }
}

/** Severity of a §6 invariant: hard ones always reject; soft ones warn (reject in strict mode). */
export type InvariantSeverity = 'hard' | 'soft';

/** One violated §6 invariant. */
export interface InvariantViolation {
  /** Invariant id from spec §6 (`W2`, `S1`, …). */
  invariant: string;
  severity: InvariantSeverity;
  /** State field the check is about, as named in the VMState (`wd_size`, `ctpr[1]`, `psp_hi`, …). */
  field: string;
  /** The offending value as text (hex for registers). */
  value: string;
  message: string;
}

/** A CPU state failed validation: names the invariant, the field and its value. */
export class CpuInvariantError extends E2kError {
  readonly invariant: string;
  readonly severity: InvariantSeverity;
  readonly field: string;
  readonly value: string;
  /** vCPU index when known. */
  readonly cpuIndex: number | undefined;

  constructor(v: InvariantViolation, cpuIndex?: number) {
    const who = cpuIndex === undefined ? '' : ` (vCPU ${cpuIndex})`;
    super('E_CPU_INVARIANT', `${v.message} [${v.invariant}, field ${v.field} = ${v.value}]${who}`);
    this.name = 'CpuInvariantError';
    this.invariant = v.invariant;
    this.severity = v.severity;
    this.field = v.field;
    this.value = v.value;
    this.cpuIndex = cpuIndex;
  }
}

/** The guest faulted: the vCPU stops at the faulting bundle. */
export class GuestFaultError extends E2kError {
  readonly cpuIndex: number;
  /** Address of the faulting bundle. */
  readonly ip: bigint;
  readonly reason: string;

  constructor(cpuIndex: number, ip: bigint, reason: string) {
    super('E_GUEST_FAULT', `vCPU ${cpuIndex}: guest fault at ip 0x${ip.toString(16)}: ${reason}`);
    this.name = 'GuestFaultError';
    this.cpuIndex = cpuIndex;
    this.ip = ip;
    this.reason = reason;
  }
}
