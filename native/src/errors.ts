/**
 * Typed errors of `@e2k-migrate/native`. Callers branch on `code`, never on message text.
 * errno from the kernel maps to: EEXIST → {@link AlreadyPlacedError}, EAGAIN → {@link RetryError},
 * ENOENT/ESRCH → {@link GoneError}, EBUSY → {@link BusyError}, anything else → {@link SyscallError}.
 */
export class NativeError extends Error {
  readonly code: string;
  /** Kernel errno when the error came from a system call. */
  readonly errno?: number;
  /** The failing call, e.g. `ioctl(UFFDIO_COPY)`. */
  readonly syscall?: string;

  constructor(code: string, message: string, fields: { errno?: number; syscall?: string; cause?: unknown } = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'NativeError';
    this.code = code;
    if (fields.errno !== undefined) this.errno = fields.errno;
    if (fields.syscall !== undefined) this.syscall = fields.syscall;
  }
}

/** An argument is wrong (size, alignment, type); raised before any system call. */
export class InvalidArgumentError extends NativeError {
  readonly argument: string;
  constructor(argument: string, expected: string, found: unknown) {
    super('E_INVALID_ARGUMENT', `${argument}: expected ${expected}, found ${describe(found)}`);
    this.name = 'InvalidArgumentError';
    this.argument = argument;
  }
}

/** An address or range lies outside the region. */
export class OutOfRangeError extends NativeError {
  readonly offset: number;
  readonly length: number;
  readonly size: number;
  constructor(what: string, offset: number, length: number, size: number) {
    super('E_OUT_OF_RANGE', `${what}: range [${offset}, ${offset}+${length}) is outside the region of ${size} bytes`);
    this.name = 'OutOfRangeError';
    this.offset = offset;
    this.length = length;
    this.size = size;
  }
}

/** The region (or userfaultfd) was closed, or this thread detached its views. */
export class ClosedError extends NativeError {
  constructor(what: string) {
    super('E_CLOSED', `${what} is closed`);
    this.name = 'ClosedError';
  }
}

/** EEXIST: the page is already present (placed by an earlier copy); usually harmless. */
export class AlreadyPlacedError extends NativeError {
  /** Bytes copied before the page that was already present. */
  readonly copied: number;
  constructor(message: string, fields: { errno?: number; syscall?: string; copied?: number }) {
    super('E_ALREADY_PLACED', message, fields);
    this.name = 'AlreadyPlacedError';
    this.copied = fields.copied ?? 0;
  }
}

/** EAGAIN: the operation raced with a mapping change; retry it. */
export class RetryError extends NativeError {
  readonly copied: number;
  constructor(message: string, fields: { errno?: number; syscall?: string; copied?: number }) {
    super('E_RETRY', message, fields);
    this.name = 'RetryError';
    this.copied = fields.copied ?? 0;
  }
}

/** ENOENT/ESRCH: the range or the process is gone (unregistered, unmapped, exiting); abort. */
export class GoneError extends NativeError {
  constructor(message: string, fields: { errno?: number; syscall?: string }) {
    super('E_GONE', message, fields);
    this.name = 'GoneError';
  }
}

/** EBUSY: refused because something is still in use (registered ranges, a live tracker). */
export class BusyError extends NativeError {
  constructor(message: string, fields: { errno?: number; syscall?: string } = {}) {
    super('E_BUSY', message, fields);
    this.name = 'BusyError';
  }
}

/** The backend or kernel cannot do this (e.g. kernel dirty tracking in the fallback). */
export class UnsupportedError extends NativeError {
  constructor(message: string, fields: { errno?: number; syscall?: string } = {}) {
    super('E_UNSUPPORTED', message, fields);
    this.name = 'UnsupportedError';
  }
}

/** Any other failed system call. */
export class SyscallError extends NativeError {
  constructor(message: string, fields: { errno?: number; syscall?: string; cause?: unknown }) {
    super('E_SYSCALL', message, fields);
    this.name = 'SyscallError';
  }
}

/** `E2K_NATIVE=1` but the addon is not available, or a native-only API was asked for. */
export class NativeUnavailableError extends NativeError {
  constructor(reason: string) {
    super('E_NATIVE_UNAVAILABLE', `the native addon is not available: ${reason}`);
    this.name = 'NativeUnavailableError';
  }
}

/** The addon exists but cannot be loaded (broken or stale binary): never silently replaced. */
export class NativeLoadError extends NativeError {
  readonly path: string;
  constructor(path: string, reason: string, cause?: unknown) {
    super('E_NATIVE_LOAD', `cannot load the native addon ${path}: ${reason}`, { cause });
    this.name = 'NativeLoadError';
    this.path = path;
  }
}

const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EAGAIN: 11,
  ENOMEM: 12,
  EBADF: 9,
  EEXIST: 17,
  EBUSY: 16,
  EINVAL: 22,
} as const;

/** Maps an error thrown by the addon (`errno`, `syscall`, `progress` fields) to a typed error. */
export function fromNative(err: unknown, what: string): NativeError {
  if (err instanceof NativeError) return err;
  const e = err as { errno?: unknown; syscall?: unknown; progress?: unknown; message?: unknown };
  if (typeof e?.errno !== 'number') {
    return new SyscallError(`${what}: ${String(e?.message ?? err)}`, { cause: err });
  }
  const fields = {
    errno: e.errno,
    syscall: typeof e.syscall === 'string' ? e.syscall : 'unknown',
    copied: typeof e.progress === 'number' ? e.progress : 0,
  };
  const msg = `${what}: ${String(e.message)}`;
  switch (e.errno) {
    case ERRNO.EEXIST:
      return new AlreadyPlacedError(msg, fields);
    case ERRNO.EAGAIN:
      return new RetryError(msg, fields);
    case ERRNO.ENOENT:
    case ERRNO.ESRCH:
      return new GoneError(msg, fields);
    case ERRNO.EBUSY:
      return new BusyError(msg, fields);
    case ERRNO.EBADF:
      return fields.syscall === 'region' ? new ClosedError(what) : new SyscallError(msg, fields);
    default:
      return new SyscallError(msg, fields);
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || typeof v !== 'object') return String(v);
  return Object.prototype.toString.call(v);
}
