/**
 * The strongest check of the E2K machine: N bundles run straight equal N/2 bundles, a full
 * machine save (CPU + devices + RAM through the QEMU stream codec), a restore into a fresh
 * machine, and N/2 more — RAM and every register bit-exact. Here with the inline executor; the
 * worker-thread version is in workers.test.ts.
 */
import {
  checkWorkloadInvariant,
  describeMachine,
  E2kMachine,
  type MachineConfig,
  type WorkloadConfig,
} from '@e2k-migrate/e2k-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMachineStream, ramSha256, saveMachineStream } from './machine-stream.js';

const machines: E2kMachine[] = [];
afterEach(async () => {
  for (const m of machines.splice(0)) await m.close();
});

function make(config: Omit<MachineConfig, 'executor'>): E2kMachine {
  const m = E2kMachine.create({ ...config, executor: 'inline' });
  machines.push(m);
  return m;
}

function registers(m: E2kMachine) {
  return m.cpus.map((_, i) => m.cpuState(i));
}

const CASES: [string, number, WorkloadConfig, number][] = [
  ['increment, 1 vCPU', 1, { pattern: 'increment' }, 400_001],
  ['increment, 2 vCPUs', 2, { pattern: 'increment' }, 300_000],
  ['random, 2 vCPUs', 2, { pattern: 'random', seed: 0xfeedn }, 250_003],
  ['hotset, 3 vCPUs', 3, { pattern: 'hotset', workingSetPages: 20 }, 200_000],
  ['rate, 2 vCPUs', 2, { pattern: 'rate', pagesPerSecond: 5000, workingSetPages: 50 }, 100_000],
];

describe('E2K determinism across a save/restore through the migration stream', () => {
  it.each(CASES)('%s: N straight == N/2 + stream save/restore + N/2', async (_, vcpus, workload, n) => {
    const cfg = { memSize: 2 << 20, vcpus, workload, cpu: { model: 'e8c2' } };
    const straight = make(cfg);
    straight.runInline(n);

    const first = make(cfg);
    const half = Math.floor(n / 2);
    first.runInline(half);
    const stream = await saveMachineStream(first);
    const second = make({ ...cfg, incoming: true });
    await loadMachineStream(second, stream);
    expect(second.stepCounts()).toEqual(first.stepCounts());
    expect(ramSha256(second)).toBe(ramSha256(first));
    expect(registers(second)).toEqual(registers(first));
    second.runInline(n);

    expect(second.stepCounts()).toEqual(new Array(vcpus).fill(n));
    expect(ramSha256(second)).toBe(ramSha256(straight));
    expect(registers(second)).toEqual(registers(straight));
    expect(second.serialTxBytes()).toBe(straight.serialTxBytes());
    const image = new Uint8Array(second.ram.size);
    second.ram.readBytes(0, image);
    const report = checkWorkloadInvariant(image, vcpus, workload);
    expect(report.every((r) => r.progress > 0n)).toBe(true);
  });

  it('the stream carries the sections in save order, and a second save of the restored machine is identical', async () => {
    const cfg = { memSize: 1 << 20, vcpus: 2, workload: { pattern: 'random', seed: 3n } as WorkloadConfig };
    const a = make(cfg);
    a.runInline(12_345);
    const s1 = await saveMachineStream(a);
    const text = Buffer.from(s1).toString('latin1');
    const order = describeMachine(a).sections.map((s) =>
      text.indexOf(`${String.fromCharCode(s.idstr.length)}${s.idstr}`),
    );
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    const b = make({ ...cfg, incoming: true });
    await loadMachineStream(b, s1);
    a.storedRunState = 'running';
    b.storedRunState = 'running';
    const again = await saveMachineStream(b);
    expect(Buffer.compare(Buffer.from(again), Buffer.from(await saveMachineStream(a)))).toBe(0);
  });

  it('a corrupted CPU section is rejected by its invariants, naming the field', async () => {
    const cfg = { memSize: 1 << 20, vcpus: 1, workload: { pattern: 'increment' } as WorkloadConfig };
    const a = make(cfg);
    a.runInline(1000);
    const s = a.cpuState(0);
    s.wd_size = 15; // odd window size (W2)
    a.setCpuState(0, s);
    const stream = await saveMachineStream(a);
    const b = make({ ...cfg, incoming: true });
    await expect(loadMachineStream(b, stream)).rejects.toMatchObject({ invariant: 'W2' });
    const err = await loadMachineStream(make({ ...cfg, incoming: true }), stream).catch((e: unknown) => e as Error);
    expect(String((err as Error).message)).toContain('wd_size');
  });
});
