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
});
