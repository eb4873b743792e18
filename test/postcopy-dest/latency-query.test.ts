import { bucketOf } from '@e2k-migrate/postcopy';
import { needs } from '@e2k-migrate/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, listenTcp, setCaps, VmSet, waitMigrate, waitSteps } from '../precopy/helpers.js';
import { uffdAvailable } from './support.js';

beforeAll(() => buildCli(), 240_000);

const uffd = uffdAvailable();

let vms: VmSet;
afterEach(async () => {
  await vms?.close();
});

interface LatencyReply {
  resolved: number;
  samples: number;
  'p50-ns': number | null;
  'p90-ns': number | null;
  'p99-ns': number | null;
  'max-ns': number | null;
  'samples-ns'?: number[];
}

/**
 * `x-query-postcopy-latency` on an E2K destination after a real E2K → E2K postcopy migration
 * (userfaultfd): the per-fault latencies behind QEMU's `postcopy-latency` average and
 * `postcopy-latency-dist` histogram, as exact percentiles and, on request, every sample.
 */
describe.runIf(needs('uffd', uffd.ok, uffd.reason))('x-query-postcopy-latency', () => {
  it('answers an error before any postcopy and rejects unknown arguments', async () => {
    vms = new VmSet();
    const vm = await vms.start('dst', ['--mem', '16M', '--incoming', 'defer']);
    await expect(vm.qmp.execute('x-query-postcopy-latency')).rejects.toThrow(/no postcopy incoming migration/);
    await expect(vm.qmp.execute('x-query-postcopy-latency', { bogus: 1 })).rejects.toThrow(/'bogus' is unexpected/);
    await expect(vm.qmp.execute('x-query-postcopy-latency', { samples: 1 })).rejects.toThrow(/expected: boolean/);
  });

  it('after a postcopy migration: one sample per fault, matching the histogram, the average and the percentiles', async () => {
    vms = new VmSet();
    const args = ['--mem', '16M', '--vcpus', '2', '--workload', 'random', '--seed', '5'];
    const dst = await vms.start('dst', [...args, '--incoming', 'defer']);
    const src = await vms.start('src', args);
    await setCaps(dst, ['postcopy-ram', 'postcopy-blocktime']);
    await setCaps(src, ['postcopy-ram']);
    const uri = await listenTcp(dst);
    await waitSteps(src, 1_000_000);
    // precopy paced so slowly that it cannot finish before the switch: the guest must fault
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 1 << 20, 'max-postcopy-bandwidth': 8 << 20 });
    await src.qmp.execute('migrate', { uri });
    await src.qmp.execute('migrate-start-postcopy');
    expect((await waitMigrate(src, undefined, 90_000)).status).toBe('completed');
    const d = await waitMigrate(dst);
    expect(d.status).toBe('completed');
    const faults = d['x-postcopy-faults'] as number;
    expect(faults).toBeGreaterThan(0);

    const r = (await dst.qmp.execute('x-query-postcopy-latency', { samples: true })) as unknown as LatencyReply;
    const xs = r['samples-ns'] as number[];
    expect(r.resolved).toBe(faults);
    expect(r.samples).toBe(faults);
    expect(xs).toHaveLength(faults);
    const dist = new Array<number>(32).fill(0);
    for (const ns of xs) dist[bucketOf(BigInt(ns))] = (dist[bucketOf(BigInt(ns))] as number) + 1;
    expect(dist).toEqual(d['postcopy-latency-dist']);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(Math.abs(mean - (d['postcopy-latency'] as number))).toBeLessThanOrEqual(1);
    const sorted = [...xs].sort((a, b) => a - b);
    const rank = (p: number) => sorted[Math.ceil((p / 100) * sorted.length) - 1];
    expect(r['p50-ns']).toBe(rank(50));
    expect(r['p90-ns']).toBe(rank(90));
    expect(r['p99-ns']).toBe(rank(99));
    expect(r['max-ns']).toBe(sorted.at(-1));
    // without "samples": the summary only
    const brief = (await dst.qmp.execute('x-query-postcopy-latency')) as unknown as LatencyReply;
    expect(brief['samples-ns']).toBeUndefined();
    expect(brief).toEqual({ ...r, 'samples-ns': undefined });
  });
});
