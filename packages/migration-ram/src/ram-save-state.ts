import type { MigrationFile, SaveContext } from '@e2k-migrate/migration';
import { BlockDirtySync, type DirtyTrackingMode } from './dirty-sync.js';
import type { BlockBytes } from './ram-block.js';
import { RamCounters } from './ram-counters.js';
import { RamRecordWriter } from './ram-record-writer.js';
import { XbzrleSender } from './xbzrle-sender.js';
import { ZeroPageScanner } from './zero-page-scanner.js';

/** QEMU's MAX_WAIT: one iteration sends for at most this long (checked every 64 pages). */
export const RAM_ITERATE_MAX_WAIT_MS = 50;

/** One block of a migration: its memory, migration bitmap, zero scanner and geometry. */
export interface BlockState {
  readonly index: number;
  readonly bytes: BlockBytes;
  readonly dirty: BlockDirtySync;
  readonly zero: ZeroPageScanner;
  /** RAM address of the block's first byte (XBZRLE cache key base). */
  readonly ramAddr: number;
  /** Target pages per host page (1, or 512 for 2 MiB pages). */
  readonly hostPages: number;
  /** Target pages in the block. */
  readonly pages: number;
}

/**
 * The per-migration state of the ram save handler (QEMU's RAMState): migration bitmaps and
 * trackers, the scan position, the XBZRLE cache, counters, and the page loop that turns dirty
 * pages into records.
 */
export class RamSaveState {
  readonly counters: RamCounters;
  readonly xbzrle: XbzrleSender | undefined;
  readonly rec: RamRecordWriter;
  readonly tps: number;
  readonly total: number;
  /** Pages still to send (set bits over every migration bitmap). */
  dirtyPages = 0;
  /** QEMU's rs->xbzrle_enabled: set once the first full scan wrapped. */
  xbzrleEnabled = false;
  lastStage = false;
  /** After the switch to postcopy: no XBZRLE (QEMU 7.2 never encodes postcopy pages). */
  inPostcopy = false;
  readonly blocks: readonly BlockState[];
  /** The precopy scan position (QEMU's last_seen_block / last_page). */
  private blockIdx = 0;
  private page = 0;

  constructor(
    blocks: readonly BlockBytes[],
    opts: { tps: number; tracking: DirtyTrackingMode; xbzrleCacheSize?: number; now: number },
  ) {
    this.tps = opts.tps;
    this.counters = new RamCounters(opts.now);
    this.rec = new RamRecordWriter(opts.tps);
    let addr = 0;
    this.blocks = blocks.map((b, index) => {
      const s: BlockState = {
        index,
        bytes: b,
        dirty: new BlockDirtySync(b, opts.tps, opts.tracking),
        zero: new ZeroPageScanner(b, opts.tps),
        ramAddr: addr,
        hostPages: b.hostPageSize / opts.tps,
        pages: b.size / opts.tps,
      };
      addr += b.size;
      return s;
    });
    this.total = addr;
    this.xbzrle =
      opts.xbzrleCacheSize !== undefined ? new XbzrleSender(opts.xbzrleCacheSize, opts.tps, this.counters) : undefined;
  }

  /** Dirty-tracking backend in use (`kernel` or `software`). */
  get trackingMode(): string {
    return this.blocks[0]?.dirty.tracker.mode ?? 'none';
  }

  /** Starts tracking with every page to send. */
  start(): void {
    for (const b of this.blocks) this.dirtyPages += b.dirty.start();
  }

  stop(): void {
    for (const b of this.blocks) b.dirty.stop();
  }

  /** migration_bitmap_sync: merge what the guest dirtied, count the pass, maybe close a period. */
  sync(ctx: SaveContext): void {
    let added = 0;
    for (const b of this.blocks) {
      added += b.dirty.sync();
      b.zero.invalidate();
    }
    this.dirtyPages += added;
    const period = this.counters.onSync(ctx.now(), added, this.dirtyPages, this.tps, this.xbzrle !== undefined);
    if (period) ctx.onSyncPeriod(period.bytesDirtyPeriod, period.bytesXferPeriod);
    ctx.onDirtySync(this.counters.dirtySyncCount);
  }

  /**
   * Sends dirty pages until none is left (→ true), or — when `bounded` — until the rate-limit
   * window is used up or 50 ms passed (→ false). The loop is synchronous except when the
   * transport is congested.
   */
  async sendPages(ctx: SaveContext, bounded: boolean): Promise<boolean> {
    const f = ctx.file;
    const before = f.bytesWritten;
    const t0 = ctx.now();
    let limit = bounded ? ctx.rateLimitEnd() : Number.POSITIVE_INFINITY;
    let n = 0;
    try {
      for (;;) {
        if (this.dirtyPages === 0) return true;
        if (f.bytesWritten >= limit) return false;
        this.sendNext(f);
        n++;
        if (bounded && (n & 63) === 0 && ctx.now() - t0 > RAM_ITERATE_MAX_WAIT_MS) return false;
        if (f.congested) {
          await f.drain();
          if (ctx.cancelled()) return false;
          if (bounded) limit = ctx.rateLimitEnd();
        }
      }
    } finally {
      this.counters.addTransferred(f.bytesWritten - before, ctx.vmRunning());
    }
  }

  /** Finds the next dirty page from the scan position (wrapping: XBZRLE starts) and sends it. */
  private sendNext(f: MigrationFile): void {
    for (;;) {
      const b = this.blocks[this.blockIdx] as BlockState;
      const p = b.dirty.bitmap.nextSet(this.page);
      if (p >= 0) {
        b.dirty.bitmap.clear(p);
        this.dirtyPages--;
        this.page = p + 1;
        this.sendPage(f, b, p);
        return;
      }
      this.page = 0;
      if (++this.blockIdx === this.blocks.length) {
        this.blockIdx = 0;
        if (this.xbzrle) this.xbzrleEnabled = true;
      }
    }
  }

  /**
   * Sends target page `p` of block `b` if it is still dirty (migration_bitmap_clear_dirty +
   * ram_save_target_page) on `f`; returns whether a record was written. Postcopy's page service
   * calls this for every target page of a host page, on the channel it chose.
   */
  sendDirtyPage(f: MigrationFile, b: BlockState, p: number): boolean {
    const bm = b.dirty.bitmap;
    if (!bm.get(p)) return false;
    bm.clear(p);
    this.dirtyPages--;
    this.sendPage(f, b, p);
    return true;
  }

  /** Restarts the precopy scan at the first block (QEMU resets last_seen_block at the switch to postcopy). */
  resetScan(): void {
    this.blockIdx = 0;
    this.page = 0;
  }

  /** Recounts the pages to send from the bitmaps (after they were rewritten, e.g. by a recovery). */
  recountDirty(): number {
    let n = 0;
    for (const b of this.blocks) n += b.dirty.bitmap.count();
    this.dirtyPages = n;
    return n;
  }

  /** ram_save_target_page: zero check, then XBZRLE (never in postcopy), then a normal page. */
  private sendPage(f: MigrationFile, b: BlockState, p: number): void {
    const c = this.counters;
    const offset = p * this.tps;
    c.targetPageCount++;
    if (b.zero.isZero(p, b.dirty.bitmap)) {
      this.rec.zero(f, b.bytes, offset);
      c.duplicate++;
      if (this.xbzrleEnabled && !this.inPostcopy) this.xbzrle?.cacheZero(b.ramAddr + offset, c.dirtySyncCount);
      return;
    }
    const view = b.bytes.viewAt(offset);
    const at = b.bytes.viewOffset(offset);
    if (this.xbzrleEnabled && this.xbzrle && !this.inPostcopy) {
      const r = this.xbzrle.save(
        f,
        this.rec,
        b.bytes,
        offset,
        b.ramAddr + offset,
        view,
        at,
        c.dirtySyncCount,
        this.lastStage,
      );
      if (r === 'sent' || r === 'skip') return;
      c.normal++;
      if (r === 'live') this.rec.page(f, b.bytes, offset, view, at);
      else this.rec.pageFrom(f, b.bytes, offset, r);
      return;
    }
    c.normal++;
    this.rec.page(f, b.bytes, offset, view, at);
  }
}
