/**
 * QEMU 7.2's auto-converge (migration_trigger_throttle + mig_throttle_guest_down), evaluated at
 * each dirty-bitmap sync that closes a ≥ 1 s period: when the bytes dirtied in the period exceed
 * `throttle-trigger-threshold`% of the bytes sent, a counter goes up; at 2 the counter resets and
 * the vCPU throttle starts at `cpu-throttle-initial`% or rises by `cpu-throttle-increment`% (or,
 * with `cpu-throttle-tailslow`, by what would bring the dirty rate to the threshold), capped at
 * `max-cpu-throttle`%.
 */
export interface ThrottleParams {
  'throttle-trigger-threshold': number;
  'cpu-throttle-initial': number;
  'cpu-throttle-increment': number;
  'cpu-throttle-tailslow': boolean;
  'max-cpu-throttle': number;
}

export class AutoConverge {
  /** Current vCPU throttle in percent; 0 = not throttling. */
  percentage = 0;
  private highCount = 0;

  /** Returns the new throttle percentage (unchanged when no step was taken). */
  onPeriod(bytesDirtyPeriod: number, bytesXferPeriod: number, p: ThrottleParams): number {
    const threshold = (bytesXferPeriod * p['throttle-trigger-threshold']) / 100;
    if (bytesDirtyPeriod > threshold && ++this.highCount >= 2) {
      this.highCount = 0;
      if (this.percentage === 0) {
        this.percentage = p['cpu-throttle-initial'];
      } else {
        let inc = p['cpu-throttle-increment'];
        if (p['cpu-throttle-tailslow']) {
          const cpuNow = 100 - this.percentage;
          const cpuIdeal = cpuNow * (threshold / bytesDirtyPeriod);
          inc = Math.min(Math.floor(cpuNow - cpuIdeal), inc);
        }
        this.percentage = Math.min(this.percentage + inc, p['max-cpu-throttle']);
      }
    }
    return this.percentage;
  }

  stop(): void {
    this.percentage = 0;
    this.highCount = 0;
  }
}

/**
 * QEMU's vCPU throttle timeslice: at `pct`% a vCPU runs 10 ms, then sleeps pct/(1−pct) × 10 ms.
 * Returns the sleep per 10 ms of running, in ms.
 */
export function throttleSleepMs(pct: number): number {
  if (pct <= 0) return 0;
  const f = Math.min(pct, 99) / 100;
  return (f / (1 - f)) * 10;
}
