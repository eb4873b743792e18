import { MigrationError } from '@e2k-migrate/migration';
/**
 * Error codes of the postcopy source (callers branch on `code`):
 * - `E_BAD_PAGE_REQUEST`: a REQ_PAGES(_ID) names an unknown block, is not aligned to the block's
 *   host page size, is empty, or reaches past the block's end;
 * - `E_BAD_RECV_BITMAP`: a RECV_BITMAP reply of a recovery names an unknown block or has the wrong size;
 * - `E_NOT_STARTED`: postcopy was used before the ram handler set up a migration;
 * - `E_BAD_ARGUMENT`: a bad option (a host page size that is not a power of two dividing the block).
 */
export type PostcopySourceErrorCode = 'E_BAD_PAGE_REQUEST' | 'E_BAD_RECV_BITMAP' | 'E_NOT_STARTED' | 'E_BAD_ARGUMENT';

/**
 * Errors of the postcopy source side, with the block and byte offset concerned. Like every error
 * of this package (the destination's {@link PostcopyProtocolError} is a stream error), it is a
 * `MigrationError` of `@e2k-migrate/migration`: one base, branch on `code`.
 */
export class PostcopySourceError extends MigrationError {
  declare readonly code: PostcopySourceErrorCode;
  readonly block: string | undefined;
  /** Byte offset in the block (requests) or on the return path. */
  readonly offset: number | undefined;

  constructor(
    code: PostcopySourceErrorCode,
    message: string,
    details: { block?: string; offset?: number; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'PostcopySourceError';
    this.block = details.block;
    this.offset = details.offset;
  }
}
