import { afterEach, describe, expect, it } from 'vitest';
import { TARGET_PAGE_SIZE } from '../cpu/constants.js';
import { E2kError } from '../errors.js';
import { E2kMachine } from '../machine/machine.js';
import { checkWorkloadInvariant } from './checker.js';
import { DATA_BASE, dataSlices, MBOX, mailboxAddress } from './layout.js';
import {
  PROLOGUE_STEPS,
  RANDOM_STEPS_PER_STORE,
  SWEEP_PASS_OVERHEAD_STEPS,
  SWEEP_STEPS_PER_PAGE,
  type WorkloadConfig,
} from './workload.js';

/** Stored pass count after `steps` bundles: the store comes 2 bundles (marker, branch) before a pass ends. */
const passes = (steps: number, pages: number) =>
  Math.max(0, Math.floor((steps - PROLOGUE_STEPS + 2) / (pages * SWEEP_STEPS_PER_PAGE + SWEEP_PASS_OVERHEAD_STEPS)));

const machines: E2kMachine[] = [];
afterEach(async () => {
  for (const m of machines.splice(0)) await m.close();
});

function inline(workload: WorkloadConfig, vcpus = 2, memSize = 1 << 20) {
  const out: number[] = [];
  const m = E2kMachine.create({ memSize, vcpus, workload, executor: 'inline', serial: (b) => out.push(...b) });
  machines.push(m);
  const image = () => {
    const img = new Uint8Array(m.ram.size);
    m.ram.readBytes(0, img);
    return img;
  };
  return { m, out, image };
}

function workloadError(fn: () => unknown): E2kError {
  try {
    fn();
  } catch (e) {
    if (e instanceof E2kError) return e;
    throw e;
  }
  throw new Error('expected E_WORKLOAD_INVARIANT');
}

describe('guest workloads', () => {
  it('increment: pages hold P+1 then P with one boundary, at every stop point of a pass', () => {
    const { m, image } = inline({ pattern: 'increment' });
    const pages = dataSlices(1 << 20, 2)[0]?.pages as number;
    const pass = pages * SWEEP_STEPS_PER_PAGE + SWEEP_PASS_OVERHEAD_STEPS;
    const stops = [
      10,
      PROLOGUE_STEPS,
      pass - 3,
      pass + 8,
      pass + 9,
      pass + 10,
      3 * pass + 17,
      5 * pass + 8,
      5 * pass + 9,
    ];
    for (const steps of stops) {
      m.runInline(steps);
      const report = checkWorkloadInvariant(image(), 2, { pattern: 'increment' });
      expect(report.map((r) => [r.cpu, Number(r.progress)])).toEqual([
        [0, passes(steps, pages)],
        [1, passes(steps, pages)],
      ]);
    }
  });

  it('increment prints A once and B after each pass', () => {
    const { m, out } = inline({ pattern: 'increment' }, 2, 512 * 1024);
    m.runInline(100_000);
    const text = String.fromCharCode(...out);
    const progress = [0, 1].map((i) => Number(m.ram.load64(mailboxAddress(i) + MBOX.PROGRESS)));
    expect(text.split('A').length - 1).toBe(2);
    expect(text.split('B').length - 1).toBe(progress[0] + progress[1]);
    expect(m.serialTxBytes()).toBe(text.length);
  });

  it('random: the slice equals the replay of the stored iteration count (or one more)', () => {
    const cfg: WorkloadConfig = { pattern: 'random', seed: 12345n, workingSetPages: 16 };
    const { m, image } = inline(cfg);
    for (let steps = 5000; steps < 5000 + RANDOM_STEPS_PER_STORE + 1; steps++) {
      m.runInline(steps);
      checkWorkloadInvariant(image(), 2, cfg);
    }
    const img = image();
    const base = dataSlices(1 << 20, 2)[1]?.base as number;
    // only the 16-page working set is written
    expect(img.subarray(base + 16 * TARGET_PAGE_SIZE, base + 17 * TARGET_PAGE_SIZE).every((b) => b === 0)).toBe(true);
    expect(img.subarray(base, base + 16 * TARGET_PAGE_SIZE).some((b) => b !== 0)).toBe(true);
    // a different seed does not satisfy it
    expect(() => checkWorkloadInvariant(img, 2, { ...cfg, seed: 1n })).toThrow(
      expect.objectContaining({ code: 'E_WORKLOAD_INVARIANT' }),
    );
  });

  it('hotset and rate write only the working set', () => {
    for (const pattern of ['hotset', 'rate'] as const) {
      const cfg: WorkloadConfig = { pattern, workingSetPages: 8, pagesPerSecond: 1000 };
      const { m, image } = inline(cfg);
      m.runInline(10_000);
      const report = checkWorkloadInvariant(image(), 2, cfg);
      expect(Number(report[0]?.progress)).toBe(passes(10_000, 8));
    }
  });

  it('the checker names a corrupted page, code byte or mailbox', () => {
    const { m, image } = inline({ pattern: 'increment' });
    m.runInline(50_000);
    const img = image();
    const page = DATA_BASE + 7 * TARGET_PAGE_SIZE;
    img[page] = (img[page] as number) + 2;
    expect(workloadError(() => checkWorkloadInvariant(img, 2, { pattern: 'increment' })).message).toContain(
      `0x${page.toString(16)}`,
    );
    const img2 = image();
    img2[DATA_BASE + 5] = 1;
    expect(workloadError(() => checkWorkloadInvariant(img2, 2, { pattern: 'increment' })).message).toContain(
      'expected 0',
    );
    const img3 = image();
    img3[0x2000] = (img3[0x2000] as number) ^ 1;
    expect(workloadError(() => checkWorkloadInvariant(img3, 2, { pattern: 'increment' })).message).toContain(
      'guest code',
    );
    const img4 = image();
    img4[mailboxAddress(1) + MBOX.DATA_PAGES] = 1;
    expect(workloadError(() => checkWorkloadInvariant(img4, 2, { pattern: 'increment' })).message).toContain(
      'mailbox pages',
    );
  });

  it('refuses machines that cannot hold the workload', () => {
    expect(() =>
      E2kMachine.create({ memSize: 64 * 1024, vcpus: 1, workload: { pattern: 'increment' }, executor: 'inline' }),
    ).toThrow(expect.objectContaining({ code: 'E_MACHINE_CONFIG' }));
    expect(() =>
      E2kMachine.create({ memSize: 1 << 20, vcpus: 65, workload: { pattern: 'increment' }, executor: 'inline' }),
    ).toThrow(expect.objectContaining({ code: 'E_MACHINE_CONFIG' }));
    expect(() =>
      E2kMachine.create({ memSize: (1 << 20) + 100, vcpus: 1, workload: { pattern: 'increment' }, executor: 'inline' }),
    ).toThrow(expect.objectContaining({ code: 'E_MACHINE_CONFIG' }));
  });
});
