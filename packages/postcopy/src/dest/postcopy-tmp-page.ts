import { type PostcopyBlock, TARGET_PAGE_SIZE } from './postcopy-block.js';
import { hex, PostcopyProtocolError } from './postcopy-protocol-error.js';

/** Where a record sits, for errors. */
export interface RecordPlace {
  /** Byte offset of the record in its channel. */
  offset: number;
  section?: string | undefined;
}

/**
 * QEMU's PostcopyTmpPage (spec §9.3, DESIGN §6): one per postcopy channel. A host page is
 * assembled here from its target-page records and installed whole, atomically, once complete —
 * a huge page must be placed with one UFFDIO_COPY, so its 512 target pages are collected first.
 *
 * - The first target page of a host page sets `hostAddr` (and the block); every later record on
 *   this channel must belong to the same host page until it is complete, else the stream is
 *   broken: `E_POSTCOPY_HOST_PAGE` naming the channel, both offsets and the block.
 * - PAGE data is copied in at its offset (for 4 KiB host pages the caller places the record's
 *   bytes directly instead); ZERO records fill zeros only for huge pages (a 4 KiB zero page
 *   needs no bytes) and a non-zero fill byte, or any PAGE data, clears `allZero`.
 * - Complete when `targetPages` = host page size / target page size; the caller places it
 *   (all-zero → zero page, else one copy of the whole host page) and calls {@link reset}.
 */
export class PostcopyTmpPage {
  /** Channel index: 0 = main, 1 = postcopy-preempt. */
  readonly channel: number;
  /** Buffer of the largest host page size. */
  readonly tmpHugePage: Uint8Array;
  /** Block of the host page being assembled. */
  block: PostcopyBlock | undefined;
  /** Offset of the host page being assembled inside its block (-1: none). */
  hostAddr = -1;
  targetPages = 0;
  allZero = true;
  /** Which target pages of the current host page arrived (a target page sent twice is an error). */
  private readonly seen: Uint8Array;

  constructor(channel: number, maxHostPageSize: number) {
    this.channel = channel;
    this.tmpHugePage = new Uint8Array(maxHostPageSize);
    this.seen = new Uint8Array(Math.max(1, maxHostPageSize / TARGET_PAGE_SIZE));
  }

  /** True while a host page is partly assembled. */
  get busy(): boolean {
    return this.targetPages > 0;
  }

  /** The assembled host page (valid until {@link reset}). */
  get hostPage(): Uint8Array {
    return this.tmpHugePage.subarray(0, (this.block as PostcopyBlock).hostPageSize);
  }

  /**
   * Adds one ZERO (`data` undefined, `fill` byte) or PAGE record at `offset` of `block`.
   * @returns true when the host page is now complete.
   */
  add(block: PostcopyBlock, offset: number, data: Uint8Array | undefined, fill: number, at: RecordPlace): boolean {
    const hps = block.hostPageSize;
    const host = offset - (offset % hps);
    if (this.targetPages === 0) {
      this.block = block;
      this.hostAddr = host;
    } else if (block !== this.block || host !== this.hostAddr) {
      const cur = this.block as PostcopyBlock;
      throw new PostcopyProtocolError(
        'E_POSTCOPY_HOST_PAGE',
        `non-same host page on postcopy channel ${this.channel}: the record at byte offset ${at.offset} is for page ${hex(offset)} of block "${block.name}", but host page ${hex(this.hostAddr)} of block "${cur.name}" has only ${this.targetPages} of its ${cur.targetsPerHost} target pages`,
        {
          offset: at.offset,
          section: at.section,
          record: 'ram record',
          channel: this.channel === 0 ? 'main' : 'preempt',
          block: block.name,
          channelIndex: this.channel,
          hostOffset: this.hostAddr,
          pageOffset: offset,
        },
      );
    }
    const slot = (offset - host) / TARGET_PAGE_SIZE;
    if (this.seen[slot] === 1) {
      throw new PostcopyProtocolError(
        'E_POSTCOPY_HOST_PAGE',
        `postcopy channel ${this.channel}: page ${hex(offset)} of block "${block.name}" arrives twice (byte offset ${at.offset}) while host page ${hex(host)} is assembled`,
        {
          offset: at.offset,
          section: at.section,
          record: 'ram record',
          block: block.name,
          channelIndex: this.channel,
          hostOffset: host,
          pageOffset: offset,
        },
      );
    }
    this.seen[slot] = 1;
    this.targetPages++;
    const huge = hps !== TARGET_PAGE_SIZE;
    const at0 = offset - host;
    if (data === undefined) {
      if (fill !== 0) this.allZero = false;
      if (fill !== 0 || huge) this.tmpHugePage.fill(fill, at0, at0 + TARGET_PAGE_SIZE);
    } else {
      this.allZero = false;
      if (huge) this.tmpHugePage.set(data, at0);
    }
    return this.targetPages === block.targetsPerHost;
  }

  /** Forgets the host page (after placing it, or a pause dropping a partial one). */
  reset(): void {
    if (this.block) this.seen.fill(0, 0, this.block.targetsPerHost);
    this.block = undefined;
    this.hostAddr = -1;
    this.targetPages = 0;
    this.allZero = true;
  }
}
