/**
 * QEMU 7.2's migration rate limit: time is cut into 100 ms windows and each window may carry
 * `max-bandwidth / 10` bytes (0 = unlimited). The sender asks `exceeded()` between pages and,
 * when true, waits for the window to end (`waitForWindow()`); completion and postcopy page
 * requests bypass it by not asking.
 */
export const BUFFER_DELAY_MS = 100;
/** Windows per second (QEMU's XFER_LIMIT_RATIO). */
export const XFER_LIMIT_RATIO = 1000 / BUFFER_DELAY_MS;

export type Clock = () => number;
export type Sleep = (ms: number) => Promise<void>;

const defaultSleep: Sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class RateLimiter {
  private budget: number;
  private used = 0;
  private windowStart: number;
  private readonly now: Clock;
  private readonly sleep: Sleep;

  /** @param bytesPerSecond `max-bandwidth`; 0 means unlimited. */
  constructor(bytesPerSecond: number, opts: { now?: Clock; sleep?: Sleep } = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? defaultSleep;
    this.budget = bytesPerSecond / XFER_LIMIT_RATIO;
    this.windowStart = this.now();
  }

  /** Changes the rate (migrate-set-parameters during a migration takes effect at once). */
  setRate(bytesPerSecond: number): void {
    this.budget = bytesPerSecond / XFER_LIMIT_RATIO;
  }

  /** Bytes allowed per window; Infinity when unlimited. */
  get windowBudget(): number {
    return this.budget > 0 ? this.budget : Number.POSITIVE_INFINITY;
  }

  account(bytes: number): void {
    this.roll();
    this.used += bytes;
  }

  /** True when this window's budget is spent (QEMU's qemu_file_rate_limit). */
  exceeded(): boolean {
    this.roll();
    return this.budget > 0 && this.used >= this.budget;
  }

  /** Bytes still allowed in this window (Infinity when unlimited; ≤ 0 once exceeded). */
  remaining(): number {
    this.roll();
    return this.budget > 0 ? this.budget - this.used : Number.POSITIVE_INFINITY;
  }

  /** Starts a new window now (QEMU resets the limit when migration_update_counters closes a period). */
  resetWindow(): void {
    this.roll(true);
  }

  /** Milliseconds until the current window ends (0 when it has). */
  msUntilWindowEnd(): number {
    return Math.max(0, this.windowStart + BUFFER_DELAY_MS - this.now());
  }

  /** Sleeps until the current window ends, then starts a new one. */
  async waitForWindow(): Promise<void> {
    const left = this.windowStart + BUFFER_DELAY_MS - this.now();
    if (left > 0) await this.sleep(left);
    this.roll(true);
  }

  private roll(force = false): void {
    const t = this.now();
    if (force || t - this.windowStart >= BUFFER_DELAY_MS) {
      this.windowStart = t;
      this.used = 0;
    }
  }
}
