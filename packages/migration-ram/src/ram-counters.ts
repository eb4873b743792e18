import { emptyRamStats, type RamStats, type XbzrleStats } from '@e2k-migrate/migration';

/** A dirty-sync period closed (≥ 1 s since the previous one): inputs of auto-converge. */
export interface SyncPeriod {
  bytesDirtyPeriod: number;
  bytesXferPeriod: number;
}

/**
 * The RAM counters of one outgoing migration, kept as QEMU 7.2's ram_counters, xbzrle_counters
 * and the per-period fields of RAMState, and reported under `query-migrate`'s names.
 */
export class RamCounters {
  /** Bytes of ram section bodies (records, names, EOS, block list). */
  transferred = 0;
  /** Pages sent as ZERO records. */
  duplicate = 0;
  /** Pages sent as PAGE records. */
  normal = 0;
  dirtySyncCount = 0;
  /** Pages/s over the last ≥ 1 s sync period. */
  dirtyPagesRate = 0;
  precopyBytes = 0;
  downtimeBytes = 0;
  /** RAM bytes sent after the switch to postcopy (VM stopped, guest on the destination). */
  postcopyBytes = 0;
  /** Page requests received from the destination (`postcopy-requests`). */
  postcopyRequests = 0;
  /** The migration switched to postcopy: bytes sent while the VM is stopped count as postcopy-bytes. */
  inPostcopy = false;
  /** Dirty bytes at the last sync (ram_counters.remaining; expected-downtime uses it). */
  remainingAtSync = 0;
  /** Dirty pages handled (sent or skipped), for the cache-miss rate. */
  targetPageCount = 0;
  readonly xbzrle = { bytes: 0, pages: 0, cacheMiss: 0, overflow: 0, cacheMissRate: 0, encodingRate: 0 };

  private timeLastBitmapSync: number;
  private numDirtyPagesPeriod = 0;
  private bytesXferPrev = 0;
  private targetPageCountPrev = 0;
  private xbzrleCacheMissPrev = 0;
  private xbzrlePagesPrev = 0;
  private xbzrleBytesPrev = 0;

  constructor(now: number) {
    this.timeLastBitmapSync = now;
  }

  /**
   * Accounts bytes written for RAM (QEMU's ram_transferred_add): precopy bytes while the guest
   * runs, else postcopy bytes once in postcopy, else downtime bytes.
   */
  addTransferred(bytes: number, vmRunning: boolean): void {
    this.transferred += bytes;
    if (vmRunning) this.precopyBytes += bytes;
    else if (this.inPostcopy) this.postcopyBytes += bytes;
    else this.downtimeBytes += bytes;
  }

  /**
   * After a bitmap sync that set `newDirty` bits (QEMU's migration_bitmap_sync): counts the sync
   * and, once a period of more than 1 s closed, updates the dirty-page rate and the XBZRLE rates
   * and returns the period's dirtied and transferred bytes (for auto-converge).
   */
  onSync(now: number, newDirty: number, dirtyPages: number, tps: number, xbzrleOn: boolean): SyncPeriod | undefined {
    this.dirtySyncCount++;
    this.numDirtyPagesPeriod += newDirty;
    this.remainingAtSync = dirtyPages * tps;
    const elapsed = now - this.timeLastBitmapSync;
    if (elapsed <= 1000) return undefined;
    const period: SyncPeriod = {
      bytesDirtyPeriod: this.numDirtyPagesPeriod * tps,
      bytesXferPeriod: this.transferred - this.bytesXferPrev,
    };
    this.dirtyPagesRate = Math.round((this.numDirtyPagesPeriod * 1000) / elapsed);
    const pageCount = this.targetPageCount - this.targetPageCountPrev;
    if (xbzrleOn && pageCount > 0) {
      const x = this.xbzrle;
      x.cacheMissRate = (x.cacheMiss - this.xbzrleCacheMissPrev) / pageCount;
      const unencoded = (x.pages - this.xbzrlePagesPrev) * tps;
      const encoded = x.bytes - this.xbzrleBytesPrev;
      x.encodingRate = x.pages === this.xbzrlePagesPrev || encoded === 0 ? 0 : unencoded / encoded;
      this.xbzrleCacheMissPrev = x.cacheMiss;
      this.xbzrlePagesPrev = x.pages;
      this.xbzrleBytesPrev = x.bytes;
    }
    this.targetPageCountPrev = this.targetPageCount;
    this.timeLastBitmapSync = now;
    this.numDirtyPagesPeriod = 0;
    this.bytesXferPrev = this.transferred;
    return period;
  }

  /** The `ram` object of query-migrate (mbps and pages-per-second are the driver's). */
  ramStats(tps: number, total: number, dirtyPages: number): RamStats {
    const s = emptyRamStats(tps);
    s.transferred = this.transferred;
    s.remaining = dirtyPages * tps;
    s.total = total;
    s.duplicate = this.duplicate;
    s.normal = this.normal;
    s['normal-bytes'] = this.normal * tps;
    s['dirty-pages-rate'] = this.dirtyPagesRate;
    s['dirty-sync-count'] = this.dirtySyncCount;
    s['precopy-bytes'] = this.precopyBytes;
    s['downtime-bytes'] = this.downtimeBytes;
    s['postcopy-bytes'] = this.postcopyBytes;
    s['postcopy-requests'] = this.postcopyRequests;
    return s;
  }

  /** The `xbzrle-cache` object of query-migrate. */
  xbzrleStats(cacheSize: number): XbzrleStats {
    const x = this.xbzrle;
    return {
      'cache-size': cacheSize,
      bytes: x.bytes,
      pages: x.pages,
      'cache-miss': x.cacheMiss,
      'cache-miss-rate': x.cacheMissRate,
      'encoding-rate': x.encodingRate,
      overflow: x.overflow,
    };
  }
}
