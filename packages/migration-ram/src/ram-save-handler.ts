import {
  DEFAULT_TARGET_PAGE_SIZE,
  type LiveSaveHandler,
  MigrationControlError,
  type QueryMigrate,
  RAM_SECTION_VERSION,
  type SaveContext,
} from '@e2k-migrate/migration';
import type { DirtyTrackingMode } from './dirty-sync.js';
import { BlockBytes, type RamBlockSource } from './ram-block.js';
import { RamSaveState } from './ram-save-state.js';

export interface RamSaveOptions {
  /** TARGET_PAGE_SIZE (default 4096). */
  targetPageSize?: number;
  /** Dirty tracking: `auto` (kernel when available), `kernel` or `software`. */
  tracking?: DirtyTrackingMode;
}

/**
 * The `ram` live save handler (idstr `ram`, instance 0, version 4), QEMU 7.2's precopy RAM:
 * - setup: tracking starts with every page dirty, one bitmap sync, the block list (MEM_SIZE), EOS;
 * - iterate: dirty pages from where the last pass stopped — zero check, XBZRLE (after the first
 *   full scan, when the capability is on), else the page — until the rate limit or 50 ms, EOS;
 * - pending: remaining bytes, re-syncing the bitmap when they drop under the threshold;
 * - complete (VM stopped): a last sync, every remaining page regardless of the rate limit, EOS.
 */
export class RamSaveHandler implements LiveSaveHandler {
  readonly idstr = 'ram';
  readonly instanceId = 0;
  readonly version = RAM_SECTION_VERSION;
  private readonly sources: readonly RamBlockSource[];
  private readonly tps: number;
  private readonly tracking: DirtyTrackingMode;
  private state: RamSaveState | undefined;
  /** Statistics of the last migration, kept after cleanup released its bitmaps and cache. */
  private lastStats: Pick<QueryMigrate, 'ram' | 'xbzrle-cache'> | undefined;
  private lastTracking: string | undefined;

  constructor(blocks: readonly RamBlockSource[], opts: RamSaveOptions = {}) {
    this.sources = blocks;
    this.tps = opts.targetPageSize ?? DEFAULT_TARGET_PAGE_SIZE;
    this.tracking = opts.tracking ?? 'auto';
  }

  /** The dirty-tracking backend of the current (or last) migration. */
  get trackingMode(): string | undefined {
    return this.state?.trackingMode ?? this.lastTracking;
  }

  async setup(ctx: SaveContext): Promise<void> {
    if (this.state) throw new MigrationControlError('E_BAD_STATE', 'ram: a migration is already set up');
    const blocks = this.sources.map((b) => new BlockBytes(b, this.tps));
    const s = new RamSaveState(blocks, {
      tps: this.tps,
      tracking: this.tracking,
      ...(ctx.caps.has('xbzrle') ? { xbzrleCacheSize: ctx.params.get('xbzrle-cache-size') } : {}),
      now: ctx.now(),
    });
    this.state = s;
    this.lastStats = undefined;
    s.start();
    s.sync(ctx);
    const f = ctx.file;
    const before = f.bytesWritten;
    s.rec.memSize(f, blocks, ctx.caps.has('postcopy-ram'));
    s.rec.eos(f);
    s.counters.addTransferred(f.bytesWritten - before, ctx.vmRunning());
  }

  /**
   * QEMU's ram_pagesize_summary: the bitwise OR of every block's host page size (the
   * POSTCOPY_ADVISE payload; 0x1000 with 4 KiB pages only, 0x201000 with a 2 MiB block too).
   */
  pageSizeSummary(): number {
    let summary = 0;
    for (const b of this.sources) summary |= b.pageSize ?? b.memory.pageSize;
    return summary;
  }

  /** The state of the migration in progress (postcopy's page service works on it). */
  get saveState(): RamSaveState {
    return this.current();
  }

  async iterate(ctx: SaveContext): Promise<boolean> {
    const s = this.current();
    const done = await s.sendPages(ctx, true);
    this.eos(ctx, s);
    return done;
  }

  async complete(ctx: SaveContext): Promise<void> {
    const s = this.current();
    s.lastStage = true;
    s.sync(ctx);
    await s.sendPages(ctx, false);
    this.eos(ctx, s);
  }

  pending(thresholdBytes: number, ctx: SaveContext): number {
    const s = this.current();
    let remaining = s.dirtyPages * this.tps;
    if (remaining < thresholdBytes) {
      s.sync(ctx);
      remaining = s.dirtyPages * this.tps;
    }
    return remaining;
  }

  remainingAtSync(): number {
    return this.state?.counters.remainingAtSync ?? 0;
  }

  cleanup(): void {
    if (!this.state) return;
    this.lastStats = this.stats();
    this.lastTracking = this.state.trackingMode;
    this.state.stop();
    this.state = undefined;
  }

  stats(): Pick<QueryMigrate, 'ram' | 'xbzrle-cache'> {
    const s = this.state;
    if (!s) return this.lastStats ? structuredClone(this.lastStats) : {};
    const out: Pick<QueryMigrate, 'ram' | 'xbzrle-cache'> = {
      ram: s.counters.ramStats(this.tps, s.total, s.dirtyPages),
    };
    if (s.xbzrle) out['xbzrle-cache'] = s.counters.xbzrleStats(s.xbzrle.cache.size);
    return out;
  }

  private eos(ctx: SaveContext, s: RamSaveState): void {
    const f = ctx.file;
    s.rec.eos(f);
    s.counters.addTransferred(8, ctx.vmRunning());
  }

  private current(): RamSaveState {
    if (!this.state) throw new MigrationControlError('E_BAD_STATE', 'ram: no migration is set up');
    return this.state;
  }
}
