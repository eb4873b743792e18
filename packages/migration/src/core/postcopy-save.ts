import type { MigrationFile } from './migration-file.js';
import type { SaveContext } from './savevm-handlers.js';
import type { PageRequest } from './source-return-path.js';

/** The postcopy channels a postcopy handler writes to, and a way to let return-path messages in. */
export interface PostcopyIo {
  /** The postcopy-preempt channel (QEMU 7.2's second connection), when the capability is on. */
  readonly preempt: MigrationFile | undefined;
  /**
   * Lets the event loop run (return-path messages are read, page requests queued). The page loop
   * calls it every few pages so that a request is seen while a huge page is being sent.
   */
  yield(): Promise<void>;
}

/**
 * The postcopy side of an iterable save handler — QEMU's `ram` with its postcopy hooks
 * (`ram_postcopy_send_discard_bitmap`, `ram_save_queue_pages`, the postcopy page loop,
 * `ram_dirty_bitmap_reload`). The outgoing driver owns the protocol around it (commands, states,
 * channels, recovery); `@e2k-migrate/postcopy`'s `PostcopyRamSource` implements it for RAM.
 */
export interface PostcopySaveHandler {
  /** POSTCOPY_ADVISE's page-size summary (OR of the blocks' host page sizes). */
  pageSizeSummary(): number;
  /**
   * At the switch, VM stopped: a last dirty sync, host-page canonicalisation, then
   * POSTCOPY_RAM_DISCARD commands on `ctx.file` for every page still dirty; the scan restarts at
   * the first block and the next record names its block. Returns the number of ranges.
   */
  sendDiscards(ctx: SaveContext): number;
  /** Bytes still to send in postcopy (no dirty sync: nothing dirties any more). */
  pending(): number;
  /**
   * A page request read from the return path: validated (known block, host-page aligned, inside
   * the block) and queued. Throws a typed error for a bad request (the migration fails).
   */
  requestPages(req: PageRequest): void;
  /** Requests are queued. */
  readonly hasRequests: boolean;
  /**
   * A PART section body in postcopy: queued requests first (on the preempt channel when there is
   * one), then the background scan until the rate-limit window is used up or 50 ms passed, EOS.
   * Resolves true when nothing is left to send.
   */
  iterate(ctx: SaveContext, io: PostcopyIo): Promise<boolean>;
  /** The END section body in postcopy: every remaining page (requests still first), no rate limit, EOS. */
  complete(ctx: SaveContext, io: PostcopyIo): Promise<void>;
  /** Recovery: the blocks to ask RECV_BITMAP for, in order. */
  recvBitmapBlocks(): string[];
  /** Recovery: a RECV_BITMAP blob of `block`; pages not received become dirty. Throws typed on a bad blob. */
  applyReceivedBitmap(block: string, bitmap: Uint8Array): void;
  /** Recovery done: the queue is dropped (the destination re-sends its requests), scan and names restart. */
  resumePrepare(): void;
  /** The channel set changed (a new connection): the next record on each channel names its block. */
  channelsChanged(): void;
  /** e2k-migrate's extra `query-migrate` fields (`x-…`): how pages were sent. */
  extras?(): Record<`x-${string}`, unknown>;
}
