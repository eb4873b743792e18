import { VmstateError } from '@e2k-migrate/vmstate';

/**
 * Stable error codes of the migration package. Callers branch on `code`, never on the message.
 */
export type MigrationErrorCode =
  /** The input ended inside a record. */
  | 'E_TRUNCATED'
  /** File magic is not "QEVM" / multifd magic is not 0x11223344. */
  | 'E_BAD_MAGIC'
  /** File version is not 3 (2 is obsolete), or a multifd version other than 1. */
  | 'E_BAD_VERSION'
  /** A record type byte that QEMU does not know at that position. */
  | 'E_UNKNOWN_RECORD'
  /** The section footer (0x7E + section id) is missing or names another section. */
  | 'E_FOOTER_MISMATCH'
  /** No footer could be found when scanning a section body whose layout is unknown. */
  | 'E_FOOTER_NOT_FOUND'
  /** A PART/END names a section id never started, or no loader handles an idstr. */
  | 'E_UNKNOWN_SECTION'
  /** RAM record flags that are not one valid RAM_SAVE_FLAG_* combination. */
  | 'E_BAD_RAM_FLAGS'
  /** A RAM record names an unknown block, or CONTINUE without a previous block. */
  | 'E_BAD_RAM_BLOCK'
  /** A page offset or discard range outside its RAM block. */
  | 'E_BAD_RAM_OFFSET'
  /** XBZRLE record header or delta data is invalid. */
  | 'E_XBZRLE'
  /** A COMPRESS_PAGE record does not inflate to exactly one page. */
  | 'E_COMPRESS'
  /** Multifd init packet / packet header invalid or channels inconsistent. */
  | 'E_MULTIFD'
  /** The stream uses a feature of a later QEMU (or one that cannot be read from a file). */
  | 'E_UNSUPPORTED_FEATURE'
  /** A QEMU_VM_COMMAND with an invalid number or length. */
  | 'E_BAD_COMMAND'
  /** A return-path message with an invalid type or length. */
  | 'E_BAD_RP_MESSAGE'
  /** The configuration record (machine name, subsections) is invalid. */
  | 'E_BAD_CONFIGURATION'
  /** The vmdesc JSON is missing, unparsable or does not describe the stream. */
  | 'E_BAD_VMDESC'
  /** A length field exceeds the remaining input or a hard limit. */
  | 'E_BAD_LENGTH'
  /** Reconstructing RAM would exceed --max-ram. */
  | 'E_RAM_LIMIT'
  /** A device section body does not match its description. */
  | 'E_DEVICE_DECODE'
  /** Bytes after the end of the stream that are not a vmdesc. */
  | 'E_TRAILING_DATA'
  /** An out-of-range value given to an encoder. */
  | 'E_BAD_VALUE'
  /** Reading or writing a file failed (not found, corrupt gzip, ...). */
  | 'E_IO'
  /** A stored migration (store/) is missing, incomplete, or its files do not match its manifest. */
  | 'E_STORE_INVALID'
  /** A stream has a shape a stored migration cannot hold (e.g. device sections between RAM sections). */
  | 'E_STORE_LAYOUT'
  /** The peer reported a failure on the return path (SHUT non-zero) or vanished before finishing. */
  | 'E_PEER_FAILED'
  /** Postcopy: a record for another host page before the current one is complete (spec §9.3). */
  | 'E_POSTCOPY_HOST_PAGE'
  /** Postcopy: POSTCOPY_ADVISE page sizes or target page size differ from the destination's. */
  | 'E_POSTCOPY_ADVISE'
  /** Postcopy: a postcopy command where the destination's postcopy state does not allow it. */
  | 'E_POSTCOPY_SEQUENCE';

export interface MigrationErrorDetails {
  /** Absolute byte offset in the (decompressed) input where the problem was found. */
  offset?: number;
  /** Section the problem is in, as `idstr (section_id)`. */
  section?: string;
  /** Record or field being read (e.g. `ram record`, `command PING`). */
  record?: string;
  /** Which input: `main`, `multifd:1`, `preempt`, `return-path`. */
  channel?: string;
  cause?: unknown;
}

/**
 * Base class of every error of the migration package (and of the postcopy package built on it):
 * a stable string `code` callers branch on. {@link MigrationStreamError} covers the bytes of a
 * stream (with the offset and section), `MigrationControlError` the control plane (capabilities,
 * parameters, states).
 */
export class MigrationError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationError';
    this.code = code;
  }
}

/**
 * A problem in the bytes of a migration stream: a stable `code`, the byte `offset`, the
 * `section` and `record` being read. Messages say what was expected, what was found, and where.
 */
export class MigrationStreamError extends MigrationError {
  declare readonly code: MigrationErrorCode;
  offset: number | undefined;
  section: string | undefined;
  record: string | undefined;
  channel: string | undefined;

  constructor(code: MigrationErrorCode, message: string, details: MigrationErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'MigrationStreamError';
    this.offset = details.offset;
    this.section = details.section;
    this.record = details.record;
    this.channel = details.channel;
  }
}

/** The input ended before a record was complete. */
export class TruncatedStreamError extends MigrationStreamError {
  readonly needed: number;
  readonly available: number;

  constructor(what: string, offset: number, needed: number, available: number, details: MigrationErrorDetails = {}) {
    super(
      'E_TRUNCATED',
      `truncated input reading ${what} at byte offset ${offset}: need ${needed} byte(s), ${available} available`,
      { ...details, offset, record: details.record ?? what },
    );
    this.name = 'TruncatedStreamError';
    this.needed = needed;
    this.available = available;
  }
}

/** The stream uses a feature this reader deliberately does not implement (QEMU 8.0+, RDMA, ...). */
export class UnsupportedFeatureError extends MigrationStreamError {
  readonly feature: string;

  constructor(feature: string, offset: number, message: string, details: MigrationErrorDetails = {}) {
    super('E_UNSUPPORTED_FEATURE', `unsupported feature ${feature} at byte offset ${offset}: ${message}`, {
      ...details,
      offset,
    });
    this.name = 'UnsupportedFeatureError';
    this.feature = feature;
  }
}

/**
 * Converts a cursor error from `@e2k-migrate/vmstate` (bounds checks of ByteReader) into a
 * MigrationStreamError carrying the same offset, adding section/record context. Other
 * MigrationStreamErrors get missing context filled in; anything else is returned unchanged.
 */
export function toStreamError(err: unknown, context: MigrationErrorDetails = {}): unknown {
  if (err instanceof MigrationStreamError) {
    err.section ??= context.section;
    err.record ??= context.record;
    err.channel ??= context.channel;
    err.offset ??= context.offset;
    return err;
  }
  if (err instanceof VmstateError) {
    const offset = err.offset ?? context.offset ?? 0;
    if (err.code === 'E_TRUNCATED') {
      const t = err as VmstateError & { needed?: number; available?: number };
      return new TruncatedStreamError(err.what ?? context.record ?? 'data', offset, t.needed ?? 0, t.available ?? 0, {
        ...context,
        cause: err,
      });
    }
    const code = err.code === 'E_RANGE' ? 'E_BAD_LENGTH' : 'E_BAD_VALUE';
    return new MigrationStreamError(code, err.message, { ...context, offset, cause: err });
  }
  return err;
}
