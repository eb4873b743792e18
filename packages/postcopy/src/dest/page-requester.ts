import type { RpMessage } from '@e2k-migrate/migration';
import type { PostcopyBlock } from './postcopy-block.js';

/** Sends a return-path message; rejections are the main reader's business (it pauses). */
export type RequestSend = (m: RpMessage) => Promise<void>;

interface Outstanding {
  block: PostcopyBlock;
  hostOffset: number;
}

/**
 * Turns faults into page requests on the return path (spec §8.2): one outstanding request per
 * host page (later faults on it wait for the same page), REQ_PAGES_ID when the block differs from
 * the previous request's (and for the first), else REQ_PAGES; the length is the block's host page
 * size. Requests made while paused (no return path) are kept; after a recovery
 * {@link resendOutstanding} sends every page still missing, the first one with its block name.
 */
export class PageRequester {
  /** REQ_PAGES / REQ_PAGES_ID messages sent (QEMU's postcopy-requests). */
  sent = 0;
  private readonly outstanding = new Map<string, Outstanding>();
  private send: RequestSend | undefined;
  private lastBlock: PostcopyBlock | undefined;

  /** Requests waiting for their page. */
  get pending(): number {
    return this.outstanding.size;
  }

  /** The return path to send on (undefined while paused). A new path names the block again. */
  attach(send: RequestSend | undefined): void {
    this.send = send;
    this.lastBlock = undefined;
  }

  /** Asks for the host page at `hostOffset` unless it is already asked for; true when a request was made. */
  request(block: PostcopyBlock, hostOffset: number): boolean {
    const key = keyOf(block, hostOffset);
    if (this.outstanding.has(key)) return false;
    this.outstanding.set(key, { block, hostOffset });
    this.transmit(block, hostOffset);
    return true;
  }

  isOutstanding(block: PostcopyBlock, hostOffset: number): boolean {
    return this.outstanding.size > 0 && this.outstanding.has(keyOf(block, hostOffset));
  }

  /** The page arrived: its request is answered. */
  placed(block: PostcopyBlock, hostOffset: number): void {
    if (this.outstanding.size > 0) this.outstanding.delete(keyOf(block, hostOffset));
  }

  /** After POSTCOPY_RESUME: asks again for every page still missing (the first with REQ_PAGES_ID). */
  resendOutstanding(): number {
    this.lastBlock = undefined;
    for (const o of this.outstanding.values()) this.transmit(o.block, o.hostOffset);
    return this.outstanding.size;
  }

  /** Outstanding requests in the order they were made (tests, diagnostics). */
  list(): { block: string; hostOffset: number }[] {
    return [...this.outstanding.values()].map((o) => ({ block: o.block.name, hostOffset: o.hostOffset }));
  }

  private transmit(block: PostcopyBlock, hostOffset: number): void {
    const send = this.send;
    if (send === undefined) return;
    const length = block.hostPageSize;
    const m: RpMessage =
      block === this.lastBlock
        ? { type: 'REQ_PAGES', start: hostOffset, length }
        : { type: 'REQ_PAGES_ID', start: hostOffset, length, block: block.name };
    this.lastBlock = block;
    this.sent++;
    // A failed write means the connection broke: the main reader sees it and pauses; the
    // request stays outstanding and is sent again after recovery.
    send(m).catch(() => undefined);
  }
}

function keyOf(block: PostcopyBlock, hostOffset: number): string {
  return `${block.index}:${hostOffset}`;
}
