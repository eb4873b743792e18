/**
 * e2k-migrate's postcopy switch policy, beside QEMU's manual `migrate-start-postcopy`:
 * - `x-postcopy-after-iterations` N: switch once N complete passes over RAM were sent, i.e. at the
 *   (N+1)-th dirty sync (sync 1 is the setup's);
 * - `x-postcopy-stall-syncs` K: switch when precopy does not converge — the remaining bytes at a
 *   dirty sync were not below the smallest value seen before for K consecutive syncs.
 * Both are 0 (off) by default; either one firing has the same effect as `migrate-start-postcopy`.
 */
export class PostcopyPolicy {
  private lastSync = 0;
  private best = Number.POSITIVE_INFINITY;
  private stalled = 0;
  /** Why the policy fired (for logs and query-migrate's `x-postcopy-trigger`), once it did. */
  reason: string | undefined;

  /**
   * Feeds the latest dirty-sync count and the remaining bytes measured at that sync; returns
   * true once the policy wants the switch.
   */
  observe(syncCount: number, remainingAtSync: number, afterIterations: number, stallSyncs: number): boolean {
    if (this.reason !== undefined) return true;
    if (syncCount !== this.lastSync) {
      if (remainingAtSync < this.best) {
        this.best = remainingAtSync;
        this.stalled = 0;
      } else this.stalled++;
      this.lastSync = syncCount;
    }
    if (afterIterations > 0 && syncCount >= afterIterations + 1) {
      this.reason = `x-postcopy-after-iterations=${afterIterations}: ${syncCount - 1} passes sent`;
    } else if (stallSyncs > 0 && this.stalled >= stallSyncs) {
      this.reason = `x-postcopy-stall-syncs=${stallSyncs}: remaining bytes did not shrink for ${this.stalled} syncs`;
    }
    return this.reason !== undefined;
  }
}
