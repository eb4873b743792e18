import { ConvergenceEstimator } from './convergence.js';
import { RateLimiter } from './rate-limiter.js';

/** What the pacing reads from the migration it paces. */
export interface PacingSource {
  now(): number;
  /** Bytes written on the current connections (reset by a recovery: see {@link OutgoingPacing.relinked}). */
  linkBytes(): number;
  /** Every byte sent so far, recoveries included. */
  totalBytes(): number;
  /** Pages sent so far (normal + zero + xbzrle). */
  pagesSent(): number;
  /** Dirty bytes at the last bitmap sync. */
  remainingAtSync(): number;
  dirtyPagesRate(): number;
  downtimeLimitMs(): number;
}

/**
 * The outgoing migration's pacing: QEMU's 100 ms rate-limit windows (`max-bandwidth`, then
 * `max-postcopy-bandwidth` after the switch), migration_update_counters (bandwidth, threshold,
 * mbps, expected downtime), and wake-ups — a sleeping loop wakes early when kicked (a page
 * request, a return-path failure, migrate-start-postcopy, a pause) or cancelled.
 */
export class OutgoingPacing {
  estimator: ConvergenceEstimator | undefined;
  rate: RateLimiter | undefined;
  private accounted = 0;
  private kickWaiters: (() => void)[] = [];
  private readonly s: PacingSource;
  private readonly cancelled: Promise<void>;

  constructor(source: PacingSource, cancelled: Promise<void>) {
    this.s = source;
    this.cancelled = cancelled;
  }

  /** After setup: the estimator starts its first period and the rate limit its first window. */
  start(bytesPerSecond: number): void {
    const s = this.s;
    this.estimator = new ConvergenceEstimator(s.downtimeLimitMs(), s.now(), s.totalBytes(), s.pagesSent());
    this.rate = new RateLimiter(bytesPerSecond, { now: () => s.now(), sleep: (ms) => this.sleep(ms) });
    this.accounted = s.linkBytes();
  }

  /** A recovery replaced the connections: their byte count restarts. */
  relinked(): void {
    this.accounted = this.s.linkBytes();
  }

  /** The `file.bytesWritten` at which this window is used up (Infinity when unlimited). */
  rateLimitEnd(fileBytes: number): number {
    if (!this.rate) return Number.POSITIVE_INFINITY;
    this.account();
    return fileBytes + this.rate.remaining();
  }

  /** The window's budget is spent (QEMU's qemu_file_rate_limit). */
  rateExceeded(): boolean {
    if (!this.rate) return false;
    this.account();
    return this.rate.exceeded();
  }

  /** Every ≥ 100 ms: bandwidth, threshold, mbps, expected downtime. */
  updateCounters(): void {
    this.estimator?.update({
      now: this.s.now(),
      totalBytes: this.s.totalBytes(),
      totalPages: this.s.pagesSent(),
      downtimeLimitMs: this.s.downtimeLimitMs(),
      remainingAtSync: this.s.remainingAtSync(),
      dirtyPagesRate: this.s.dirtyPagesRate(),
    });
  }

  /** Sleeps until the rate-limit window ends, or until kicked / cancelled. */
  async sleepToWindowEnd(): Promise<void> {
    await this.sleep(Math.max(1, this.rate?.msUntilWindowEnd() ?? 1));
  }

  /** Sleeps `ms`, or less when cancelled or kicked. */
  async sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let kicked: (() => void) | undefined;
    await Promise.race([
      new Promise<void>((r) => {
        timer = setTimeout(r, ms);
      }),
      new Promise<void>((r) => {
        kicked = r;
        this.kickWaiters.push(r);
      }),
      this.cancelled,
    ]);
    clearTimeout(timer);
    const i = this.kickWaiters.indexOf(kicked as () => void);
    if (i >= 0) this.kickWaiters.splice(i, 1);
  }

  /** Wakes a sleeping loop. */
  kick(): void {
    const list = this.kickWaiters;
    this.kickWaiters = [];
    for (const w of list) w();
  }

  private account(): void {
    if (!this.rate) return;
    const now = this.s.linkBytes();
    this.rate.account(now - this.accounted);
    this.accounted = now;
  }
}
