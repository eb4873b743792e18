import { type MigrationErrorDetails, MigrationStreamError } from '@e2k-migrate/migration';

/** Codes of {@link PostcopyProtocolError} (a subset of the migration package's stream error codes). */
export type PostcopyProtocolCode = 'E_POSTCOPY_HOST_PAGE' | 'E_POSTCOPY_ADVISE' | 'E_POSTCOPY_SEQUENCE';

/** Where in guest memory a postcopy protocol error happened. */
export interface PostcopyErrorPlace extends MigrationErrorDetails {
  /** RAM block idstr. */
  block?: string;
  /** Postcopy channel index (0 = main, 1 = preempt). */
  channelIndex?: number;
  /** Host page being assembled (byte offset in the block). */
  hostOffset?: number;
  /** Offset of the offending record's page (byte offset in the block). */
  pageOffset?: number;
}

/**
 * A postcopy stream that breaks the destination's rules (spec §9): a record for another host
 * page before the current one is complete (`E_POSTCOPY_HOST_PAGE`), page sizes that differ from
 * ours (`E_POSTCOPY_ADVISE`), a command in a postcopy state that does not allow it
 * (`E_POSTCOPY_SEQUENCE`). A {@link MigrationStreamError}, so drivers report it with its byte
 * offset like any other stream error; `block`, `channelIndex`, `hostOffset`, `pageOffset` say where.
 */
export class PostcopyProtocolError extends MigrationStreamError {
  readonly block: string | undefined;
  readonly channelIndex: number | undefined;
  readonly hostOffset: number | undefined;
  readonly pageOffset: number | undefined;

  constructor(code: PostcopyProtocolCode, message: string, place: PostcopyErrorPlace = {}) {
    super(code, message, place);
    this.name = 'PostcopyProtocolError';
    this.block = place.block;
    this.channelIndex = place.channelIndex;
    this.hostOffset = place.hostOffset;
    this.pageOffset = place.pageOffset;
  }
}

/** `0x…` for offsets in messages. */
export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
