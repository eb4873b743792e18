import { type MigrationFile, XBZRLE_OVERFLOW } from '@e2k-migrate/migration';
import type { BlockBytes } from './ram-block.js';
import type { RamCounters } from './ram-counters.js';
import type { RamRecordWriter } from './ram-record-writer.js';
import { XbzrleCache } from './xbzrle-cache.js';
import { xbzrleEncodeFast } from './xbzrle-encode.js';

/** What {@link XbzrleSender.save} did with a page. */
export type XbzrleOutcome =
  /** An XBZRLE record was written. */
  | 'sent'
  /** The page equals the cached copy: nothing is sent (QEMU's "skipping"). */
  | 'skip'
  /** Send the page as a normal PAGE from the live memory (cache miss, not inserted). */
  | 'live'
  /** Send the page as a normal PAGE from this copy (inserted on a miss, or overflow). */
  | Uint8Array;

/**
 * QEMU 7.2's save_xbzrle_page. Cache miss: count it and (not in the last stage) insert the page;
 * the page then goes out normally, from the cache copy when inserted. Cache hit: copy the live
 * page first (the guest may still be writing it), encode the copy against the cached page, and
 * unless in the last stage update the cache from the copy — except when nothing changed;
 * length 0 → nothing sent; overflow → a normal page from the updated cache copy.
 */
export class XbzrleSender {
  readonly cache: XbzrleCache;
  private readonly tps: number;
  private readonly current: Uint8Array;
  private readonly encoded: Uint8Array;
  private readonly zeroPage: Uint8Array;
  private readonly counters: RamCounters;

  constructor(cacheSize: number, targetPageSize: number, counters: RamCounters) {
    this.cache = new XbzrleCache(cacheSize, targetPageSize);
    this.tps = targetPageSize;
    this.current = new Uint8Array(targetPageSize);
    this.encoded = new Uint8Array(targetPageSize);
    this.zeroPage = new Uint8Array(targetPageSize);
    this.counters = counters;
  }

  /**
   * @param addr the page's RAM address (block base + offset), the cache key.
   * @param live the block bytes holding the page at `liveStart`.
   * @param generation the dirty-sync count (cache ages).
   */
  save(
    f: MigrationFile,
    rec: RamRecordWriter,
    block: BlockBytes,
    offset: number,
    addr: number,
    live: Buffer,
    liveStart: number,
    generation: number,
    lastStage: boolean,
  ): XbzrleOutcome {
    const x = this.counters.xbzrle;
    const page = live.subarray(liveStart, liveStart + this.tps);
    if (!this.cache.isCached(addr, generation)) {
      x.cacheMiss++;
      if (!lastStage && this.cache.insert(addr, page, generation)) return this.cache.get(addr) as Uint8Array;
      return 'live';
    }
    x.pages++;
    const prev = this.cache.get(addr) as Uint8Array;
    this.current.set(page);
    const len = xbzrleEncodeFast(prev, this.current, this.encoded);
    if (!lastStage && len !== 0) prev.set(this.current);
    if (len === 0) return 'skip';
    if (len === XBZRLE_OVERFLOW) {
      x.overflow++;
      x.bytes += this.tps;
      return lastStage ? this.current : prev;
    }
    const n = rec.xbzrle(f, block, offset, this.encoded, len);
    x.bytes += n - 8;
    return 'sent';
  }

  /** A page sent as ZERO: the cache learns it is zero now (xbzrle_cache_zero_page). */
  cacheZero(addr: number, generation: number): void {
    this.cache.insert(addr, this.zeroPage, generation);
  }
}
