export type RamErrorCode = 'E_RAM_BAD_ARGUMENT' | 'E_RAM_UNKNOWN_BLOCK' | 'E_RAM_SIZE_MISMATCH' | 'E_RAM_BAD_PAGE';

/** Base error of migration-ram; branch on `code`. */
export class RamError extends Error {
  readonly code: RamErrorCode;
  readonly block: string | undefined;
  readonly offset: number | undefined;

  constructor(code: RamErrorCode, message: string, details: { block?: string; offset?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'RamError';
    this.code = code;
    this.block = details.block;
    this.offset = details.offset;
  }
}
