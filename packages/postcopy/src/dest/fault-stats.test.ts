import { describe, expect, it } from 'vitest';
import { bucketOf, FaultStats } from './fault-stats.js';

const us = (n: number) => BigInt(n) * 1000n;
const ms = (n: number) => BigInt(n) * 1_000_000n;

describe('FaultStats', () => {
  it('histogram bucket N holds latencies in [2^N, 2^(N+1)) µs', () => {
    expect(bucketOf(us(0))).toBe(0);
    expect(bucketOf(us(1))).toBe(0);
    expect(bucketOf(us(2))).toBe(1);
    expect(bucketOf(us(3))).toBe(1);
    expect(bucketOf(us(4))).toBe(2);
    expect(bucketOf(us(1023))).toBe(9);
    expect(bucketOf(us(1024))).toBe(10);
    expect(bucketOf(ms(100_000_000))).toBe(31);
  });

  it('per-vCPU blocktime, all-vCPUs-blocked blocktime and latency', () => {
    const s = new FaultStats(() => [101, 102]);
    s.fault('0:0', 101, ms(0)); // vCPU 0 blocks at 0
    s.fault('0:4096', 102, ms(10)); // vCPU 1 blocks at 10: both blocked from 10
    s.fault('0:0', 999, ms(12)); // another thread, same page
    s.resolve('0:0', ms(30)); // vCPU 0 (30 ms) and the other thread (18 ms): all-blocked 10..30
    s.resolve('0:4096', ms(50)); // vCPU 1: 40 ms
    s.resolve('0:8192', ms(60)); // nobody waited
    const snap = s.snapshot();
    expect(snap.faults).toBe(3);
    expect(snap.resolved).toBe(3);
    expect(snap.vcpuBlocktimeMs).toEqual([30, 40]);
    expect(snap.blocktimeMs).toBe(20);
    expect(snap.vcpuLatencyNs).toEqual([30_000_000, 40_000_000]);
    expect(snap.nonVcpuLatencyNs).toBe(18_000_000);
    expect(snap.latencyNs).toBe(Math.floor(((30 + 18 + 40) * 1e6) / 3));
    expect(snap.latencyDist[14]).toBe(2); // 18 ms, 30 ms: [16384, 32768) µs
    expect(snap.latencyDist[15]).toBe(1); // 40 ms
    expect(snap.latencyDist.reduce((a, b) => a + b, 0)).toBe(3);
    expect(s.waitingFaults).toBe(0);
  });

  it('keeps every per-fault latency for exact percentiles, consistent with the histogram and the average', () => {
    const s = new FaultStats(() => [7]);
    const lat = Array.from({ length: 200 }, (_, i) => (i * 37) % 200); // a permutation of 0..199 µs
    for (let i = 0; i < lat.length; i++) s.fault(`0:${i * 4096}`, 7, ms(i));
    for (const [i, l] of lat.entries()) s.resolve(`0:${i * 4096}`, ms(i) + us(l));
    const samples = s.latencySamples();
    expect([...samples]).toEqual(lat.map((l) => l * 1000));
    const snap = s.snapshot();
    const dist = new Array<number>(snap.latencyDist.length).fill(0);
    for (const ns of samples) dist[bucketOf(BigInt(ns))] = (dist[bucketOf(BigInt(ns))] as number) + 1;
    expect(dist).toEqual(snap.latencyDist);
    expect(snap.latencyNs).toBe(Math.floor(samples.reduce((a, b) => a + b, 0) / samples.length));
    // nearest rank over 0..199 µs: p50 = the 100th smallest, p99 = the 198th
    expect(s.latencySummary()).toEqual({
      resolved: 200,
      samples: 200,
      p50Ns: 99_000,
      p90Ns: 179_000,
      p99Ns: 197_000,
      maxNs: 199_000,
    });
    samples[0] = -1; // a copy: the stats are untouched
    expect(s.latencySamples()[0]).toBe(0);
  });

  it('past its capacity keeps a bounded uniform subset of the latencies', () => {
    const s = new FaultStats(() => [], 64);
    for (let i = 0; i < 10_000; i++) {
      s.fault(`0:${i}`, 1, 0n);
      s.resolve(`0:${i}`, us(i));
    }
    const kept = s.latencySamples();
    expect(kept.length).toBe(64);
    const all = new Set(Array.from({ length: 10_000 }, (_, i) => i * 1000));
    for (const ns of kept) expect(all.has(ns)).toBe(true);
    expect(new Set(kept).size).toBe(64); // each resolved fault kept at most once
    // replaced as the run goes on: a uniform subset of 10000 holds almost surely some of the last 9936
    expect(kept.some((ns) => ns >= 64_000)).toBe(true);
    const sum = s.latencySummary();
    expect(sum.resolved).toBe(10_000);
    expect(sum.samples).toBe(64);
    expect(sum.p50Ns).toBeLessThanOrEqual(sum.p99Ns);
    expect(sum.p99Ns).toBeLessThanOrEqual(sum.maxNs);
  });

  it('without resolved faults the summary has no percentiles, and capacity 0 keeps nothing', () => {
    expect(new FaultStats(() => []).latencySummary()).toMatchObject({ resolved: 0, samples: 0, p50Ns: Number.NaN });
    const s = new FaultStats(() => [], 0);
    s.fault('0:0', 1, 0n);
    s.resolve('0:0', us(5));
    expect(s.latencySamples().length).toBe(0);
    expect(s.snapshot().resolved).toBe(1);
  });
});
