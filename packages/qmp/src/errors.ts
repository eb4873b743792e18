/**
 * Errors raised by the qmp package. Callers branch on `code`, never on the message.
 */
export type QmpErrorCode =
  /** The peer broke the protocol (no greeting, malformed JSON, oversized message, unexpected reply). */
  | 'E_QMP_PROTOCOL'
  /** The server answered a command with `{"error": …}` (see {@link QmpCommandError}). */
  | 'E_QMP_COMMAND'
  /** The connection closed while a reply was pending, or the client was used after close. */
  | 'E_QMP_CLOSED'
  /** No greeting, reply or event within the time allowed. */
  | 'E_QMP_TIMEOUT'
  /** A monitor address that is not `unix:PATH`, `tcp:HOST:PORT` or a path. */
  | 'E_QMP_ADDRESS';

export class QmpError extends Error {
  readonly code: QmpErrorCode;

  constructor(code: QmpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QmpError';
    this.code = code;
  }
}

/** QMP error classes (QEMU's `QapiErrorClass`). */
export type QmpErrorClass = 'GenericError' | 'CommandNotFound' | 'DeviceNotActive' | 'DeviceNotFound' | 'KVMMissingCap';

/** A command failed on the server: carries the QMP `class` and `desc`. */
export class QmpCommandError extends QmpError {
  readonly errorClass: string;
  readonly desc: string;
  readonly command: string;

  constructor(command: string, errorClass: string, desc: string) {
    super('E_QMP_COMMAND', `${command}: ${errorClass}: ${desc}`);
    this.name = 'QmpCommandError';
    this.errorClass = errorClass;
    this.desc = desc;
    this.command = command;
  }
}

/** Thrown by a command handler to answer with a QMP error of a given class. */
export class QmpFailure extends Error {
  readonly errorClass: QmpErrorClass;

  constructor(desc: string, errorClass: QmpErrorClass = 'GenericError') {
    super(desc);
    this.name = 'QmpFailure';
    this.errorClass = errorClass;
  }
}
