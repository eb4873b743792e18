/** Buckets of the latency histogram: bucket N counts faults resolved in [2^N, 2^(N+1)) µs. */
export const LATENCY_BUCKETS = 32;

/** Per-fault latency samples kept by default (8 bytes each: 1 MiB). */
export const DEFAULT_LATENCY_SAMPLES = 1 << 17;

/** Exact percentiles of the kept per-fault latencies (`x-query-postcopy-latency`). */
export interface LatencySummary {
  /** Resolved faults (all of them, kept or not). */
  resolved: number;
  /** Samples kept: every resolved fault up to the capacity, then a uniform random subset of them. */
  samples: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  maxNs: number;
}

/** The destination's remote-fault statistics (QEMU 7.2 blocktime, QEMU 10.1 latency names). */
export interface FaultStatsSnapshot {
  /** Faults seen (each blocked thread counts once per fault). */
  faults: number;
  /** Faults whose page has been placed. */
  resolved: number;
  /** Average fault → placement time of resolved faults, ns (`postcopy-latency`). */
  latencyNs: number;
  /** `postcopy-latency-dist`: bucket N = faults resolved in [2^N, 2^(N+1)) µs (under 1 µs: bucket 0). */
  latencyDist: number[];
  /** `postcopy-vcpu-blocktime`: per vCPU, the sum of its fault → placement times, ms. */
  vcpuBlocktimeMs: number[];
  /** `postcopy-blocktime`: time during which every vCPU was blocked at once, ms. */
  blocktimeMs: number;
  /** `postcopy-vcpu-latency`: average latency per vCPU, ns. */
  vcpuLatencyNs: number[];
  /** `postcopy-non-vcpu-latency`: average latency of faults by threads that are not vCPUs, ns. */
  nonVcpuLatencyNs: number;
}

interface Waiting {
  vcpu: number;
  ts: bigint;
}

/**
 * Blocktime and latency of postcopy faults. A fault (thread id, CLOCK_MONOTONIC time it was read)
 * waits on its host page; when the page is placed every fault waiting on it is resolved. The
 * thread id maps to a vCPU index through the machine's vCPU thread ids (`-1` = not a vCPU), so
 * blocktime is per vCPU (QEMU's UFFD_FEATURE_THREAD_ID accounting).
 */
export class FaultStats {
  private readonly vcpuTids: () => readonly number[];
  private readonly waiting = new Map<string, Waiting[]>();
  private readonly blocked = new Map<number, number>();
  private allBlockedSince: bigint | undefined;
  private faults = 0;
  private resolved = 0;
  private totalNs = 0n;
  private readonly dist = new Array<number>(LATENCY_BUCKETS).fill(0);
  private readonly vcpuNs: bigint[] = [];
  private readonly vcpuCount: number[] = [];
  private nonVcpuNs = 0n;
  private nonVcpuCount = 0;
  private blocktimeNs = 0n;
  private readonly capacity: number;
  private kept = new Float64Array(0);
  private keptCount = 0;

  /**
   * @param vcpuTids kernel thread ids of the vCPUs (index = vCPU).
   * @param sampleCapacity per-fault latencies kept for exact percentiles; past it, reservoir
   *   sampling keeps a uniform subset of that size (0: none kept).
   */
  constructor(vcpuTids: () => readonly number[], sampleCapacity = DEFAULT_LATENCY_SAMPLES) {
    this.vcpuTids = vcpuTids;
    this.capacity = Math.max(0, Math.floor(sampleCapacity));
  }

  /** A thread faulted at `ts` (ns) on the host page `key`. */
  fault(key: string, tid: number, ts: bigint): void {
    this.faults++;
    const tids = this.vcpuTids();
    const vcpu = tid > 0 ? tids.indexOf(tid) : -1;
    const list = this.waiting.get(key);
    if (list) list.push({ vcpu, ts });
    else this.waiting.set(key, [{ vcpu, ts }]);
    if (vcpu < 0) return;
    this.blocked.set(vcpu, (this.blocked.get(vcpu) ?? 0) + 1);
    if (this.allBlockedSince === undefined && tids.length > 0 && this.blockedVcpus() === tids.length) {
      this.allBlockedSince = ts;
    }
  }

  /** The host page `key` was placed at `now` (ns): every fault waiting on it is resolved. */
  resolve(key: string, now: bigint): void {
    const list = this.waiting.get(key);
    if (list === undefined) return;
    this.waiting.delete(key);
    for (const w of list) {
      const ns = now > w.ts ? now - w.ts : 0n;
      this.resolved++;
      this.totalNs += ns;
      this.dist[bucketOf(ns)] = (this.dist[bucketOf(ns)] as number) + 1;
      this.keep(Number(ns));
      if (w.vcpu < 0) {
        this.nonVcpuNs += ns;
        this.nonVcpuCount++;
        continue;
      }
      this.vcpuNs[w.vcpu] = (this.vcpuNs[w.vcpu] ?? 0n) + ns;
      this.vcpuCount[w.vcpu] = (this.vcpuCount[w.vcpu] ?? 0) + 1;
      if (this.allBlockedSince !== undefined) {
        this.blocktimeNs += now > this.allBlockedSince ? now - this.allBlockedSince : 0n;
        this.allBlockedSince = undefined;
      }
      const n = (this.blocked.get(w.vcpu) ?? 1) - 1;
      if (n <= 0) this.blocked.delete(w.vcpu);
      else this.blocked.set(w.vcpu, n);
    }
  }

  /** Faults not resolved yet. */
  get waitingFaults(): number {
    let n = 0;
    for (const l of this.waiting.values()) n += l.length;
    return n;
  }

  snapshot(): FaultStatsSnapshot {
    const n = Math.max(this.vcpuTids().length, this.vcpuNs.length);
    const ms = (ns: bigint) => Math.min(0xffff_ffff, Number(ns / 1_000_000n));
    return {
      faults: this.faults,
      resolved: this.resolved,
      latencyNs: this.resolved ? Number(this.totalNs / BigInt(this.resolved)) : 0,
      latencyDist: [...this.dist],
      vcpuBlocktimeMs: Array.from({ length: n }, (_, i) => ms(this.vcpuNs[i] ?? 0n)),
      blocktimeMs: ms(this.blocktimeNs),
      vcpuLatencyNs: Array.from({ length: n }, (_, i) =>
        this.vcpuCount[i] ? Number((this.vcpuNs[i] ?? 0n) / BigInt(this.vcpuCount[i] as number)) : 0,
      ),
      nonVcpuLatencyNs: this.nonVcpuCount ? Number(this.nonVcpuNs / BigInt(this.nonVcpuCount)) : 0,
    };
  }

  /** The kept per-fault latencies (ns), in resolution order while under the capacity (a copy). */
  latencySamples(): Float64Array {
    return this.kept.slice(0, this.keptCount);
  }

  /** p50 / p90 / p99 / max of the kept latencies (nearest rank; NaN without samples). */
  latencySummary(): LatencySummary {
    const s = this.latencySamples().sort();
    const at = (p: number) => (s.length ? (s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] as number) : Number.NaN);
    return {
      resolved: this.resolved,
      samples: s.length,
      p50Ns: at(50),
      p90Ns: at(90),
      p99Ns: at(99),
      maxNs: s.length ? (s[s.length - 1] as number) : Number.NaN,
    };
  }

  /** Algorithm R: the first `capacity` samples, then sample i replaces a random slot with probability capacity / i. */
  private keep(ns: number): void {
    if (this.capacity === 0) return;
    if (this.keptCount < this.capacity) {
      if (this.keptCount === this.kept.length) {
        const grown = new Float64Array(Math.min(this.capacity, Math.max(1024, this.kept.length * 2)));
        grown.set(this.kept);
        this.kept = grown;
      }
      this.kept[this.keptCount++] = ns;
      return;
    }
    const slot = Math.floor(Math.random() * this.resolved);
    if (slot < this.capacity) this.kept[slot] = ns;
  }

  private blockedVcpus(): number {
    return this.blocked.size;
  }
}

/** Histogram bucket of a latency: floor(log2(µs)), 0 below 2 µs, capped at the last bucket. */
export function bucketOf(ns: bigint): number {
  const us = Math.min(0xffff_ffff, Number(ns / 1000n));
  if (us < 2) return 0;
  return Math.min(LATENCY_BUCKETS - 1, 31 - Math.clz32(us));
}
