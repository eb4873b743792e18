import type { Userfault } from '@e2k-migrate/native';
import { type PostcopyBlock, TARGET_PAGE_SIZE } from './postcopy-block.js';

/** What the placer did, for statistics and tests. */
export interface PlacementCounters {
  /** Host pages installed with data (UFFDIO_COPY). */
  copied: number;
  /** Host pages installed as zero pages (UFFDIO_ZEROPAGE, or a copy from zeros on hugetlb). */
  zero: number;
  /** Bytes installed. */
  bytes: number;
  /** Complete host pages not placed because the received bitmap says they are there already. */
  duplicates: number;
  /** Installs the kernel refused with EEXIST (the page was present; never silent, never retried). */
  alreadyPlaced: number;
  /** Faults on pages that were already received (a fault racing a placement, or a precopy zero page never written). */
  resolvedLocally: number;
}

/** Pages of a 4 KiB batch (one native call for up to this many pages). */
const DEFAULT_BATCH = 64;
/** EAGAIN retries of one install before giving up. */
const RETRIES = 16;

/**
 * Installs whole host pages into guest memory through the userfault object — atomically, so a
 * vCPU waiting on the page sees all of it or none — and wakes the waiters:
 * - 4 KiB pages with data are gathered into a batch and installed with one `copyPages` call
 *   (contiguous runs become one UFFDIO_COPY each); a page someone waits for flushes at once;
 * - huge pages go in with one UFFDIO_COPY of the assembled buffer;
 * - all-zero host pages are zero pages (`zeroPage`: UFFDIO_ZEROPAGE, or a copy from a zero
 *   huge page on hugetlb, which has no zero-page ioctl).
 * The received bitmap decides: a host page already received is never placed again (counted as a
 * duplicate); an EEXIST from the kernel is counted and its waiters woken.
 */
export class PagePlacer {
  readonly counters: PlacementCounters = {
    copied: 0,
    zero: 0,
    bytes: 0,
    duplicates: 0,
    alreadyPlaced: 0,
    resolvedLocally: 0,
  };
  private readonly uf: Userfault;
  private readonly onPlaced: (block: PostcopyBlock, hostOffset: number) => void;
  private readonly batch: Uint8Array;
  private readonly batchOffsets: number[] = [];
  private batchBlock: PostcopyBlock | undefined;

  constructor(opts: {
    userfault: Userfault;
    /** Called after each host page is installed (requests and fault statistics resolve here). */
    onPlaced(block: PostcopyBlock, hostOffset: number): void;
    batchPages?: number;
  }) {
    this.uf = opts.userfault;
    this.onPlaced = opts.onPlaced;
    this.batch = new Uint8Array((opts.batchPages ?? DEFAULT_BATCH) * TARGET_PAGE_SIZE);
  }

  /**
   * Places the host page at `hostOffset` of `block`: `data` is its bytes (a view, used during the
   * call only), `undefined` a zero page. `urgent`: someone waits for it (no batching).
   */
  place(block: PostcopyBlock, hostOffset: number, data: Uint8Array | undefined, urgent: boolean): void {
    if (block.hostPageReceived(hostOffset)) {
      this.counters.duplicates++;
      return;
    }
    block.markHostPage(hostOffset);
    if (data === undefined) {
      this.install(block, hostOffset, undefined);
      return;
    }
    if (block.hostPageSize !== TARGET_PAGE_SIZE) {
      this.install(block, hostOffset, data);
      return;
    }
    if (this.batchBlock !== block) this.flush();
    this.batchBlock = block;
    this.batch.set(data, this.batchOffsets.length * TARGET_PAGE_SIZE);
    this.batchOffsets.push(hostOffset);
    if (urgent || this.batchOffsets.length * TARGET_PAGE_SIZE === this.batch.length) this.flush();
  }

  /** Installs the pending 4 KiB batch. */
  flush(): void {
    const block = this.batchBlock;
    const n = this.batchOffsets.length;
    if (block === undefined || n === 0) return;
    const offsets = this.batchOffsets.splice(0, n);
    this.batchBlock = undefined;
    const copied = this.retry(() =>
      this.uf.copyPages(block.memory, offsets, this.batch.subarray(0, n * TARGET_PAGE_SIZE)),
    );
    const present = n - copied / TARGET_PAGE_SIZE;
    this.counters.copied += n - present;
    this.counters.alreadyPlaced += present;
    this.counters.bytes += copied;
    if (present > 0) for (const off of offsets) this.uf.wake(block.memory, off, TARGET_PAGE_SIZE);
    for (const off of offsets) this.onPlaced(block, off);
  }

  /**
   * A fault on a page the received bitmap already has: either it was just installed (the fault
   * raced the placement: EEXIST, wake) or precopy received it as a zero page and never wrote it
   * (nothing mapped yet): install a zero page.
   */
  resolvePresent(block: PostcopyBlock, hostOffset: number): void {
    this.flush();
    this.counters.resolvedLocally++;
    try {
      this.uf.zeroPage(block.memory, hostOffset, block.hostPageSize);
    } catch (err) {
      if ((err as { code?: string }).code !== 'E_ALREADY_PLACED') throw err;
      this.uf.wake(block.memory, hostOffset, block.hostPageSize);
    }
    this.onPlaced(block, hostOffset);
  }

  private install(block: PostcopyBlock, hostOffset: number, data: Uint8Array | undefined): void {
    const hps = block.hostPageSize;
    try {
      this.retry(() =>
        data === undefined
          ? this.uf.zeroPage(block.memory, hostOffset, hps)
          : this.uf.copy(block.memory, hostOffset, data),
      );
      if (data === undefined) this.counters.zero++;
      else this.counters.copied++;
      this.counters.bytes += hps;
    } catch (err) {
      if ((err as { code?: string }).code !== 'E_ALREADY_PLACED') throw err;
      this.counters.alreadyPlaced++;
      this.uf.wake(block.memory, hostOffset, hps);
    }
    this.onPlaced(block, hostOffset);
  }

  private retry(fn: () => number): number {
    for (let i = 0; ; i++) {
      try {
        return fn();
      } catch (err) {
        if ((err as { code?: string }).code !== 'E_RETRY' || i >= RETRIES) throw err;
      }
    }
  }
}
