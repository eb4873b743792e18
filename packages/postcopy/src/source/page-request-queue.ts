import type { PageRequest } from '@e2k-migrate/migration';
import { PostcopySourceError } from './errors.js';

/** What the queue needs to know of a RAM block. */
export interface RequestBlock {
  readonly idstr: string;
  /** used_length in bytes. */
  readonly size: number;
  /** Host page size in bytes (the unit the destination requests and places). */
  readonly hostPageSize: number;
}

/** One host page to send: block index and its first target page. */
export interface HostPageRef {
  block: number;
  page: number;
}

interface Entry {
  block: number;
  /** First target page of the next host page to hand out. */
  next: number;
  /** Target page after the request's last one. */
  end: number;
}

/**
 * The source's queue of page requests (QEMU's src_page_requests): REQ_PAGES(_ID) are validated
 * as QEMU 7.2 validates them — the block exists, start and length are multiples of the block's
 * host page size (the lead's rule, stricter than 7.2's check against the real host page size),
 * the range lies inside the block — and handed out one host page at a time, in arrival order.
 */
export class PageRequestQueue {
  private readonly blocks: readonly RequestBlock[];
  private readonly byName = new Map<string, number>();
  private readonly tps: number;
  private readonly entries: Entry[] = [];
  /** Requests accepted since the queue was created (`postcopy-requests`). */
  accepted = 0;

  constructor(blocks: readonly RequestBlock[], targetPageSize: number) {
    this.blocks = blocks;
    this.tps = targetPageSize;
    for (const [i, b] of blocks.entries()) this.byName.set(b.idstr, i);
  }

  /** Host pages (or parts of requests) still queued. */
  get length(): number {
    return this.entries.length;
  }

  /** Validates and queues a request. @throws PostcopySourceError E_BAD_PAGE_REQUEST */
  push(req: PageRequest): void {
    const i = this.byName.get(req.block);
    const where = `page request at return-path byte ${req.rpOffset}`;
    if (i === undefined) {
      throw new PostcopySourceError(
        'E_BAD_PAGE_REQUEST',
        `${where}: RAM block "${req.block}" does not exist (blocks: ${this.blocks.map((b) => b.idstr).join(', ')})`,
        { block: req.block, offset: req.start },
      );
    }
    const b = this.blocks[i] as RequestBlock;
    const hps = b.hostPageSize;
    if (req.start % hps !== 0 || req.length % hps !== 0 || req.length === 0) {
      throw new PostcopySourceError(
        'E_BAD_PAGE_REQUEST',
        `${where}: start 0x${req.start.toString(16)} length 0x${req.length.toString(16)} in "${b.idstr}" are not ` +
          `non-zero multiples of its host page size 0x${hps.toString(16)}`,
        { block: b.idstr, offset: req.start },
      );
    }
    if (req.start + req.length > b.size) {
      throw new PostcopySourceError(
        'E_BAD_PAGE_REQUEST',
        `${where}: range 0x${req.start.toString(16)}+0x${req.length.toString(16)} reaches past the end of ` +
          `"${b.idstr}" (0x${b.size.toString(16)} bytes)`,
        { block: b.idstr, offset: req.start },
      );
    }
    this.accepted++;
    this.entries.push({ block: i, next: req.start / this.tps, end: (req.start + req.length) / this.tps });
  }

  /** The next requested host page, or undefined when none is queued. */
  shift(): HostPageRef | undefined {
    const e = this.entries[0];
    if (!e) return undefined;
    const ref = { block: e.block, page: e.next };
    e.next += (this.blocks[e.block] as RequestBlock).hostPageSize / this.tps;
    if (e.next >= e.end) this.entries.shift();
    return ref;
  }

  /** Drops every queued request (a recovery: the destination asks again). */
  clear(): void {
    this.entries.length = 0;
  }
}
