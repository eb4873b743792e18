import { createDirtyTracker, type DirtyTracker } from '@e2k-migrate/native';
import { PageBitmap } from './page-bitmap.js';
import type { BlockBytes } from './ram-block.js';

/** How dirty pages are found: the kernel (WP_ASYNC + PAGEMAP_SCAN) or the memory API's bitmap. */
export type DirtyTrackingMode = 'auto' | 'kernel' | 'software';

/**
 * The migration bitmap of one block (bit = target page still to send) fed by a dirty tracker:
 * `sync()` collects the pages written since the last collection (re-protecting them in the same
 * step, so no write is lost) and ORs them in, like QEMU's migration_bitmap_sync for one RAMBlock.
 * A tracker page larger than the target page (hugetlb) marks all its target pages.
 */
export class BlockDirtySync {
  readonly bitmap: PageBitmap;
  readonly tracker: DirtyTracker;
  private readonly scratch: Uint32Array;
  private readonly ratio: number;

  constructor(block: BlockBytes, targetPageSize: number, mode: DirtyTrackingMode) {
    const pages = block.size / targetPageSize;
    this.bitmap = new PageBitmap(pages);
    this.tracker = createDirtyTracker(block.memory, { mode });
    this.ratio = Math.max(1, block.memory.pageSize / targetPageSize);
    const hostPages = Math.ceil(block.size / block.memory.pageSize);
    this.scratch = new Uint32Array(Math.ceil(hostPages / 32));
    this.trackedBytes = hostPages * block.memory.pageSize;
  }

  /** Bytes handed to the tracker: the block rounded up to whole tracker pages. */
  private readonly trackedBytes: number;

  /** Starts tracking with every page to send (the first pass sends all of RAM). */
  start(): number {
    this.tracker.start();
    this.bitmap.setAll();
    return this.bitmap.pages;
  }

  /** Collects and merges newly dirtied pages; returns how many bits were newly set. */
  sync(): number {
    const collected = this.tracker.collect(0, this.trackedBytes, this.scratch);
    if (this.ratio === 1) return this.bitmap.or(collected);
    let added = 0;
    for (let w = 0; w < collected.length; w++) {
      let word = collected[w] as number;
      while (word !== 0) {
        const bit = 31 - Math.clz32(word & -word);
        word &= word - 1;
        const first = ((w << 5) + bit) * this.ratio;
        for (let p = first; p < Math.min(first + this.ratio, this.bitmap.pages); p++) {
          if (!this.bitmap.get(p)) {
            this.bitmap.set(p);
            added++;
          }
        }
      }
    }
    return added;
  }

  stop(): void {
    this.tracker.stop();
  }
}
