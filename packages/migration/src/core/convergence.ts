import { BUFFER_DELAY_MS } from './rate-limiter.js';

/**
 * QEMU 7.2's migration_update_counters: every ≥ 100 ms the source measures the bandwidth of the
 * last period and derives the switchover threshold (`bandwidth × downtime-limit`), `mbps`,
 * pages per second and the expected downtime (remaining bytes at the last sync / bandwidth, once
 * a dirty rate is known and more than 10000 bytes moved in the period).
 */
export class ConvergenceEstimator {
  /** bytes/ms of the last period (0 until measured). */
  bandwidth = 0;
  /** Bytes that can be sent within downtime-limit: the switchover threshold. */
  thresholdSize = 0;
  mbps = 0;
  pagesPerSecond = 0;
  /** ms; starts at downtime-limit as in QEMU. */
  expectedDowntime: number;
  private periodStart: number;
  private periodBytes: number;
  private periodPages: number;

  constructor(downtimeLimitMs: number, now: number, totalBytes = 0, totalPages = 0) {
    this.expectedDowntime = downtimeLimitMs;
    this.periodStart = now;
    this.periodBytes = totalBytes;
    this.periodPages = totalPages;
  }

  /**
   * Call often; it acts at most once per 100 ms. Returns true when a period closed (the caller
   * resets its rate-limit window then, as QEMU does).
   */
  update(p: {
    now: number;
    /** All bytes sent so far (RAM and everything else on the main channel). */
    totalBytes: number;
    /** All pages sent so far (normal + zero + xbzrle). */
    totalPages: number;
    downtimeLimitMs: number;
    /** Dirty bytes at the last bitmap sync (QEMU ram_counters.remaining). */
    remainingAtSync: number;
    /** Pages/s measured at the last ≥1 s sync period (0 before one). */
    dirtyPagesRate: number;
  }): boolean {
    if (p.now < this.periodStart + BUFFER_DELAY_MS) return false;
    const transferred = p.totalBytes - this.periodBytes;
    const spent = p.now - this.periodStart;
    this.bandwidth = transferred / spent;
    this.thresholdSize = this.bandwidth * p.downtimeLimitMs;
    this.mbps = (transferred * 8) / (spent / 1000) / 1e6;
    this.pagesPerSecond = (p.totalPages - this.periodPages) / (spent / 1000);
    if (p.dirtyPagesRate > 0 && transferred > 10000 && this.bandwidth > 0) {
      this.expectedDowntime = p.remainingAtSync / this.bandwidth;
    }
    this.periodStart = p.now;
    this.periodBytes = p.totalBytes;
    this.periodPages = p.totalPages;
    return true;
  }

  /** QEMU's decision: keep iterating while pending ≥ threshold (and pending > 0). */
  shouldIterate(pendingBytes: number): boolean {
    return pendingBytes > 0 && pendingBytes >= this.thresholdSize;
  }
}
