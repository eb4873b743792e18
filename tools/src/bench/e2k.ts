import {
  E2kMachine,
  PROLOGUE_STEPS,
  RANDOM_STEPS_PER_STORE,
  SWEEP_PASS_OVERHEAD_STEPS,
  SWEEP_STEPS_PER_PAGE,
  type WorkloadConfig,
} from '@e2k-migrate/e2k-cpu';
import { backendInfo, createDirtyTracker } from '@e2k-migrate/native';
import { type Bench, type BenchOptions, median } from './bench.js';

const MEM = 256 << 20;
const PAGE = 4096;

interface Row {
  pattern: string;
  executor: string;
  vcpus: number;
  stepsPerSec: number;
  pageWritesPerSec: number;
  dirtyPagesPerSec: number | undefined;
  tracker: string;
}

/** Bundles per guest page write of a pattern (pass overhead spread over the working set). */
function stepsPerPageWrite(w: WorkloadConfig, pages: number): number {
  if (w.pattern === 'random') return RANDOM_STEPS_PER_STORE;
  const ws =
    w.pattern === 'increment' ? pages : Math.min(w.workingSetPages ?? (w.pattern === 'hotset' ? 64 : pages), pages);
  return SWEEP_STEPS_PER_PAGE + SWEEP_PASS_OVERHEAD_STEPS / ws;
}

const PATTERNS: [string, WorkloadConfig][] = [
  ['increment', { pattern: 'increment' }],
  ['random', { pattern: 'random', seed: 1n }],
  ['hotset (64 pages)', { pattern: 'hotset', workingSetPages: 64 }],
  ['rate (20000 pages/s/vCPU)', { pattern: 'rate', pagesPerSecond: 20_000 }],
];

/** Inline executor: bundles per second of one vCPU in this thread (no dirty tracking). */
function inlineRun(w: WorkloadConfig, seconds: number): Row {
  const m = E2kMachine.create({ memSize: MEM, vcpus: 1, workload: w, executor: 'inline' });
  try {
    const pages = m.slices[0]?.pages ?? 1;
    let steps = PROLOGUE_STEPS;
    const rates: number[] = [];
    const deadline = performance.now() + seconds * 1000;
    while (performance.now() < deadline) {
      const t0 = performance.now();
      steps += 2_000_000;
      m.runInline(steps);
      rates.push(2_000_000 / ((performance.now() - t0) / 1000));
    }
    const sps = median(rates);
    return {
      pattern: w.pattern,
      executor: w.pattern === 'rate' ? 'inline (no pacing)' : 'inline',
      vcpus: 1,
      stepsPerSec: sps,
      pageWritesPerSec: sps / stepsPerPageWrite(w, pages),
      dirtyPagesPerSec: undefined,
      tracker: '–',
    };
  } finally {
    void m.close();
  }
}

/**
 * Worker executor: N vCPU threads for `seconds`, with the dirty tracker collecting every 100 ms
 * (distinct dirty pages per second is what a precopy iteration has to resend).
 */
async function workerRun(w: WorkloadConfig, vcpus: number, seconds: number, track: boolean): Promise<Row> {
  const m = E2kMachine.create({ memSize: MEM, vcpus, workload: w });
  try {
    const pages = m.slices[0]?.pages ?? 1;
    const tracker = track ? createDirtyTracker(m.ram) : undefined;
    await m.cont();
    await new Promise((r) => setTimeout(r, 200));
    tracker?.start();
    const s0 = m.stepCounts().reduce((a, b) => a + b, 0);
    const t0 = performance.now();
    let dirty = 0;
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      if (tracker) dirty += popcount(tracker.collect());
    }
    const elapsed = (performance.now() - t0) / 1000;
    const steps = m.stepCounts().reduce((a, b) => a + b, 0) - s0;
    await m.stop();
    tracker?.stop();
    const sps = steps / elapsed;
    return {
      pattern: w.pattern,
      executor: 'workers',
      vcpus,
      stepsPerSec: sps,
      pageWritesPerSec: sps / stepsPerPageWrite(w, pages),
      dirtyPagesPerSec: tracker ? dirty / elapsed : undefined,
      tracker: tracker?.mode ?? 'off',
    };
  } finally {
    await m.close();
  }
}

function popcount(bitmap: Uint32Array): number {
  let n = 0;
  for (let v of bitmap) {
    while (v) {
      v &= v - 1;
      n++;
    }
  }
  return n;
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0);

export const e2kBench: Bench = {
  name: 'e2k',
  summary: 'E2K guest interpreter: steps/s and dirtied pages/s per workload, inline and in vCPU workers',
  async run(opts: BenchOptions): Promise<string> {
    const secs = opts.quick ? 0.5 : 2;
    const rows: Row[] = [];
    for (const [label, w] of PATTERNS) {
      opts.log(`${label}: inline`);
      rows.push({ ...inlineRun(w, secs), pattern: label });
      for (const [vcpus, track] of [
        [1, true],
        [2, true],
        [2, false],
      ] as const) {
        opts.log(`${label}: ${vcpus} worker(s)${track ? ', dirty tracking' : ''}`);
        rows.push({ ...(await workerRun(w, vcpus, secs, track)), pattern: label });
      }
    }
    const header = [
      `Guest RAM ${MEM >> 20} MiB (\`e2k.ram\`, memory backend: ${backendInfo().name}), vCPUs write disjoint slices.`,
      '"page writes/s" is the guest\'s own rate (bundles/s ÷ bundles per page store); "distinct dirty pages/s" is what',
      'the dirty tracker reports over 100 ms collections (what a precopy pass must resend); MB/s = that × 4 KiB.',
      '',
      '| workload | executor | vCPUs | bundles/s | page writes/s | distinct dirty pages/s | dirty MB/s | tracker |',
      '|---|---|---:|---:|---:|---:|---:|---|',
    ];
    const body = rows.map(
      (r) =>
        `| ${r.pattern} | ${r.executor} | ${r.vcpus} | ${fmt(r.stepsPerSec)} | ${fmt(r.pageWritesPerSec)} | ${
          r.dirtyPagesPerSec === undefined ? '–' : fmt(r.dirtyPagesPerSec)
        } | ${r.dirtyPagesPerSec === undefined ? '–' : ((r.dirtyPagesPerSec * PAGE) / 1e6).toFixed(1)} | ${r.tracker} |`,
    );
    return [...header, ...body].join('\n');
  },
};
