import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backendInfo,
  createGuestMemoryWith,
  HugePageError,
  type HugePageReservation,
  reserveHugePages,
} from '@e2k-migrate/native';
import { type Bench, type BenchOptions, median } from './bench.js';
import { type FaultRtt, faultRtt } from './fault-rtt.js';
import { compile, runC } from './native.js';
import { type PostcopyRunResult, runPostcopy } from './postcopy-run.js';
import { rawLoopbackTcp } from './raw-tcp.js';

/**
 * `pnpm bench postcopy` (issue 6 §9): E2K → E2K postcopy over loopback TCP.
 * 1. Remote-fault latency (the destination's fault read → host page placed, per fault, from
 *    `x-query-postcopy-latency`) while the background stream runs: vanilla vs preempt, 4 KiB and
 *    2 MiB hugetlb guest RAM, with the background stream rate-limited and unlimited; beside the bare
 *    fault round trip (native bench's measurement, and the C program) from this same run.
 * 2. Switchover downtime of a 1 GiB dirtying guest after one precopy pass.
 * 3. Postcopy time for 1 GiB against raw loopback TCP moving the same bytes, same run.
 */

const MIB = 1 << 20;
const HUGE = 2 * MIB;

type PageKind = 'anonymous' | 'hugetlb';
interface LatencyConfig {
  kind: PageKind;
  preempt: boolean;
  /** max-postcopy-bandwidth, bytes/s (0 = unlimited). */
  bandwidth: number;
}

interface LatencyRun {
  faults: number;
  p50: number;
  p99: number;
  avg: number;
  requests: number;
  preemptPages: number;
  seconds: number;
}

const f1 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(1));
const f2 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(2));
const usOrMs = (us: number | undefined): string => {
  if (us === undefined || !Number.isFinite(us)) return '–';
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`;
};
const ok = (v: boolean): string => (v ? 'met' : '**not met**');
const medOf = (xs: (number | undefined)[]): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length ? median(v) : undefined;
};
/** The element with the median key. */
function medianBy<T>(xs: T[], key: (x: T) => number): T {
  return [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)] as T;
}

function latencyOf(r: PostcopyRunResult): LatencyRun {
  const src = r.src;
  return {
    faults: r.latency.resolved,
    p50: r.latency['p50-ns'] / 1e3,
    p99: r.latency['p99-ns'] / 1e3,
    avg: (r.dst['postcopy-latency'] as number) / 1e3,
    requests: r.dst['x-postcopy-requests'] as number,
    preemptPages: (src['x-postcopy-preempt-host-pages'] as number | undefined) ?? 0,
    seconds: r.totalMs / 1000,
  };
}

/**
 * Touches every reserved huge page once: on this VM a huge page's first use after the pool grew is
 * ~10× slower (measured ~4.8 ms against ~0.35 ms per 2 MiB fault; probably the hypervisor backing
 * the memory then), which would land on whichever run comes first.
 */
function warmHugePages(pages: number): void {
  const mem = createGuestMemoryWith('native', { size: pages * HUGE, kind: 'hugetlb' });
  try {
    for (let off = 0; off < mem.size; off += HUGE) mem.store8(off, 1);
  } finally {
    mem.close();
  }
}

export const postcopyBench: Bench = {
  name: 'postcopy',
  summary:
    'postcopy e2k → e2k: remote-fault latency vanilla vs preempt (4 KiB, 2 MiB) vs the bare fault round trip, switchover downtime, time vs raw TCP',
  async run({ quick, log }: BenchOptions): Promise<string> {
    const info = backendInfo();
    if (info.name !== 'native') throw new Error(`bench postcopy needs the addon (userfaultfd): ${info.reason}`);
    const reps = quick ? 1 : 3;
    const latMem = quick ? '128M' : '512M';
    const latMemBytes = quick ? 128 * MIB : 512 * MIB;
    const bigMem = quick ? '256M' : '1G';
    const bigMemBytes = quick ? 256 * MIB : 1024 * MIB;
    const limited = 128 * MIB;
    const rttPages = quick ? 500 : 3000;
    const rttHugePages = quick ? 16 : 256;
    const hugeNeeded = (2 * latMemBytes) / HUGE + rttHugePages;
    let huge: HugePageReservation | undefined;
    let hugeReason: string | undefined;
    try {
      huge = reserveHugePages(hugeNeeded, { log, purpose: 'bench postcopy' });
    } catch (err) {
      if (!(err instanceof HugePageError)) throw err;
      hugeReason = err.message;
      log(`huge pages unavailable: ${hugeReason}`);
    }
    if (huge) warmHugePages(hugeNeeded);
    const dir = mkdtempSync(join(tmpdir(), 'e2k-bench-postcopy-c-'));
    try {
      const rttBin = compile(dir, 'uffd_fault_rtt');
      const bare4: FaultRtt[] = [];
      const bare2: FaultRtt[] = [];
      const bareC: { rttP50Ns: number; rttP99Ns: number }[] = [];

      // 1. remote-fault latency, each repetition after the bare fault round trip (4 KiB, 2 MiB, C):
      // interleaved so the box's noise hits every configuration alike
      const configs: LatencyConfig[] = [];
      for (const bandwidth of [limited, 0]) {
        for (const kind of ['anonymous', 'hugetlb'] as const) {
          for (const preempt of [false, true]) configs.push({ kind, preempt, bandwidth });
        }
      }
      const runs = new Map<LatencyConfig, LatencyRun[]>(configs.map((c) => [c, []]));
      const label = (c: LatencyConfig) =>
        `${c.kind === 'hugetlb' ? '2 MiB' : '4 KiB'} ${c.preempt ? 'preempt' : 'vanilla'}, background ${c.bandwidth ? `${c.bandwidth / MIB} MiB/s` : 'unlimited'}`;
      for (let i = 0; i < reps; i++) {
        bare4.push(await faultRtt('native', rttPages));
        if (huge) bare2.push(await faultRtt('native', rttHugePages, 'hugetlb'));
        bareC.push(runC(rttBin, [String(rttPages)]));
        log(
          `bare fault round trip p50: 4 KiB ${f1(bare4.at(-1)?.p50)} µs, 2 MiB ${f1(bare2.at(-1)?.p50)} µs, C ${f1((bareC.at(-1)?.rttP50Ns ?? 0) / 1e3)} µs`,
        );
        for (const c of configs) {
          if (c.kind === 'hugetlb' && !huge) continue;
          const r = await runPostcopy({
            mem: latMem,
            ramKind: c.kind,
            preempt: c.preempt,
            workload: ['--workload', 'random', '--seed', String(11 + i)],
            fillRandom: true,
            warmupMs: 300,
            maxBandwidth: 0,
            postcopyBandwidth: c.bandwidth,
            switchAfter: 'start',
          });
          const l = latencyOf(r);
          runs.get(c)?.push(l);
          log(
            `${label(c)}: ${l.faults} faults in ${l.seconds.toFixed(1)} s, p50 ${usOrMs(l.p50)}, p99 ${usOrMs(l.p99)}, avg ${usOrMs(l.avg)}`,
          );
        }
      }

      const b4 = medianBy(bare4, (r) => r.p50);
      const b2 = bare2.length ? medianBy(bare2, (r) => r.p50) : undefined;
      const bc = medianBy(bareC, (r) => r.rttP50Ns);

      // 2. switchover downtime: 1 GiB dirtying guest, postcopy after one precopy pass
      // 3. postcopy time vs raw TCP: the same guest switched at the start (all of RAM in postcopy)
      const rate = 20_000;
      const dirtyWorkload = [
        '--workload',
        'rate',
        '--rate',
        String(rate),
        '--working-set',
        String(bigMemBytes / 4096 / 4),
      ];
      const down: PostcopyRunResult[] = [];
      const whole: PostcopyRunResult[] = [];
      const raw: number[] = [];
      for (let i = 0; i < reps; i++) {
        raw.push(await rawLoopbackTcp(bigMemBytes));
        log(`raw tcp ${(raw[i] as number) / 1e6} MB/s`);
        const d = await runPostcopy({
          mem: bigMem,
          ramKind: 'anonymous',
          preempt: false,
          workload: dirtyWorkload,
          fillRandom: true,
          warmupMs: 1000,
          maxBandwidth: 0,
          postcopyBandwidth: 0,
          switchAfter: 1,
        });
        down.push(d);
        log(
          `1 pass then postcopy: downtime ${d.downtimeMs} ms, pause ${f1(d.pauseMs)} ms, ${(d.postcopyBytes / MIB).toFixed(0)} MiB in postcopy in ${d.postcopyMs.toFixed(0)} ms`,
        );
        const w = await runPostcopy({
          mem: bigMem,
          ramKind: 'anonymous',
          preempt: false,
          workload: dirtyWorkload,
          fillRandom: true,
          warmupMs: 1000,
          maxBandwidth: 0,
          postcopyBandwidth: 0,
          switchAfter: 'start',
        });
        whole.push(w);
        log(
          `postcopy from the start: ${(((w.src.ram as Record<string, number>).transferred ?? 0) / MIB).toFixed(0)} MiB in ${w.totalMs} ms, downtime ${w.downtimeMs} ms`,
        );
      }
      return report({
        quick,
        reps,
        latMem,
        bigMem,
        limited,
        rate,
        configs,
        runs,
        hugeReason,
        b4,
        b2,
        bc,
        rttPages,
        rttHugePages,
        down,
        whole,
        rawBps: median(raw),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      huge?.release();
    }
  },
};

interface ReportInput {
  quick: boolean;
  reps: number;
  latMem: string;
  bigMem: string;
  limited: number;
  rate: number;
  configs: LatencyConfig[];
  runs: Map<LatencyConfig, LatencyRun[]>;
  hugeReason: string | undefined;
  b4: FaultRtt;
  b2: FaultRtt | undefined;
  bc: { rttP50Ns: number; rttP99Ns: number };
  rttPages: number;
  rttHugePages: number;
  down: PostcopyRunResult[];
  whole: PostcopyRunResult[];
  rawBps: number;
}

function report(r: ReportInput): string {
  const GOAL_RTT = 5;
  const latRows = r.configs.map((c) => {
    const xs = r.runs.get(c) ?? [];
    const pages = c.kind === 'hugetlb' ? '2 MiB hugetlb' : '4 KiB';
    const mode = c.preempt ? 'preempt' : 'vanilla';
    const bg = c.bandwidth ? `${c.bandwidth / MIB} MiB/s` : 'unlimited';
    if (xs.length === 0) return `| ${pages} | ${mode} | ${bg} | not measured: ${r.hugeReason ?? 'no run'} | | | | | |`;
    const bare = c.kind === 'hugetlb' ? r.b2 : r.b4;
    const p50 = medOf(xs.map((x) => x.p50));
    const p99 = medOf(xs.map((x) => x.p99));
    const ratio = bare && p99 !== undefined ? p99 / bare.p99 : undefined;
    const goal = c.preempt ? `≤ ${GOAL_RTT}×: ${ok(ratio !== undefined && ratio <= GOAL_RTT)}` : '—';
    return `| ${pages} | ${mode} | ${bg} | ${medOf(xs.map((x) => x.faults))?.toFixed(0)} | ${usOrMs(p50)} | ${usOrMs(p99)} | ${usOrMs(medOf(xs.map((x) => x.avg)))} | ${f2(ratio)}× | ${goal} |`;
  });
  const down = r.down;
  const downtime = medOf(down.map((d) => d.downtimeMs));
  const pause = medOf(down.map((d) => d.pauseMs));
  const discards = medOf(down.map((d) => d.src['x-postcopy-discard-ranges'] as number));
  const pcBytes = medOf(down.map((d) => d.postcopyBytes)) ?? 0;
  const pcMs = medOf(down.map((d) => d.postcopyMs)) ?? Number.NaN;
  const wholeBytes = medOf(r.whole.map((w) => (w.src.ram as Record<string, number>).transferred)) ?? 0;
  const wholeMs = medOf(r.whole.map((w) => w.totalMs)) ?? Number.NaN;
  const wholeDown = medOf(r.whole.map((w) => w.downtimeMs));
  const rawMs = (bytes: number) => (bytes / r.rawBps) * 1000;
  const mbs = (bytes: number, ms: number) => `${(bytes / (ms / 1000) / 1e6).toFixed(0)} MB/s`;
  const bareRow = (name: string, b: FaultRtt | undefined, n: number) =>
    b
      ? `| ${name} (${n} faults) | ${f1(b.p50)} µs | ${f1(b.p99)} µs | ${f1(b.placedP50)} µs | ${f1(b.placedP99)} µs |`
      : `| ${name} | not measured: ${r.hugeReason} | | | |`;
  return [
    `E2K → E2K over loopback TCP, source and destination separate \`e2k-migrate vm\` processes (2 vCPUs each) on`,
    `this 2-core box, median of ${r.reps} interleaved runs. Remote-fault latency = the destination's time from reading`,
    `a fault off the userfaultfd to the host page placed (\`UFFDIO_COPY\` returned), per fault, from`,
    `\`x-query-postcopy-latency\` — the interval QEMU 10.1's \`postcopy-latency\` averages; every fault is counted.`,
    `Guest: \`random\` workload (seeded stores over all of RAM) with the source's RAM filled with random bytes, so`,
    `nearly every first touch on the destination is a remote fault; postcopy starts at once`,
    `(\`migrate-start-postcopy\` right after \`migrate\`), so all of RAM moves in postcopy while the guest faults.`,
    '',
    `### Remote-fault latency while the background stream runs (${r.latMem} guest)`,
    '',
    'p50 / p99 / average of each run, then the median over runs. The goal compares preempt p99 with the bare',
    'fault round trip p99 of the same page size (below), measured in this run. With an unlimited background stream',
    'a run lasts about a second and has ~100 faults, so its p99 is close to its maximum. Both processes, the',
    "destination's fault thread and its 2 vCPU threads (busy interpreting whenever they are not blocked) share 2",
    'cores, and the destination places the background stream on its one JS thread: under an unlimited stream that',
    'thread is saturated and a fault waits for it before its request is even sent.',
    '',
    '| pages | mode | background (`max-postcopy-bandwidth`) | faults / run | p50 | p99 | average | p99 ÷ bare round trip p99 | goal |',
    '|---|---|---|---:|---:|---:|---:|---:|---|',
    ...latRows,
    '',
    "Bare fault round trip, same run (`pnpm bench native`'s measurement: a worker touches missing pages of an",
    'addon region; fault thread → JS handler → `UFFDIO_COPY` → resume; no network, no migration). "Touch → resumed" is',
    'what the worker sees; "fault read → placed" is the part the destination\'s latency statistic times.',
    '',
    '| bare fault round trip | touch → resumed p50 | p99 | fault read → placed p50 | p99 |',
    '|---|---:|---:|---:|---:|',
    bareRow('addon, 4 KiB', r.b4, r.rttPages),
    bareRow('addon, 2 MiB hugetlb', r.b2, r.rttHugePages),
    `| C program, 4 KiB (\`tools/src/bench/c/uffd_fault_rtt.c\`, ${r.rttPages} faults) | ${f1(r.bc.rttP50Ns / 1e3)} µs | ${f1(r.bc.rttP99Ns / 1e3)} µs | – | – |`,
    '',
    "QEMU's published figures (anchors §3a; Peter Xu's postcopy-preempt series, Jan/Feb 2022) for reference only —",
    'a different setup: two hosts on a 10 Gbps NIC, 20 GiB guest with 40 vCPUs, one guest thread writing 18 GiB,',
    'latency = userfaultfd fault → resolved measured with a bpf script (KVM fast faults ignored), averaged over a',
    'whole postcopy run with an unlimited background stream. Ours: loopback TCP on one 2-core VM shared by both',
    'processes, a 2-vCPU E2K interpreter. No ratio is taken against these.',
    '',
    '| QEMU (10 GbE, 20 GiB guest, bpf) | vanilla average | preempt average |',
    '|---|---:|---:|',
    '| 4 KiB pages | 10.68 ms | 0.57 ms |',
    '| 2 MiB pages | 10.58 ms | 4.96 ms |',
    '',
    `### Switchover downtime (${r.bigMem} guest, dirtying)`,
    '',
    `Guest: \`rate\` workload, 2 × ${r.rate} pages/s over a working set of a quarter of RAM per vCPU, RAM filled`,
    'with random bytes; precopy unlimited, postcopy after one full pass (`x-postcopy-after-iterations` 1).',
    "downtime: the source's `downtime` (QEMU's definition for postcopy: from the switch decision — VM stop, discards,",
    'device state package — until the package is handed to the socket); guest-visible pause: last source vCPU',
    'step → first destination vCPU step (`x-vcpu-stop-time` → `x-vcpu-start-time`, wall clocks of one machine).',
    '',
    '| guest | downtime | guest-visible pause | discard ranges | goal ≤ 20 ms |',
    '|---|---:|---:|---:|---|',
    `| ${r.bigMem}, dirtying 2 × ${r.rate} pages/s | ${f1(downtime)} ms | ${f1(pause)} ms | ${discards?.toFixed(0) ?? '–'} | ${ok(downtime !== undefined && downtime <= 20)} (pause: ${ok(pause !== undefined && pause <= 20)}) |`,
    '',
    '### Postcopy time vs raw TCP (same run)',
    '',
    "Raw loopback TCP: the precopy bench's physical reference (`raw-tcp.ts`: 1 MiB writes from distinct memory,",
    `the receiver drops the bytes), ${r.bigMem}, median ${(r.rawBps / 1e6).toFixed(0)} MB/s; its time for the same bytes is`,
    "bytes ÷ that rate. The postcopy figures are the source's (`total-time`; the postcopy phase = switch to completion).",
    '',
    '| run | bytes | time | throughput | raw TCP time, same bytes | time ÷ raw TCP time |',
    '|---|---:|---:|---:|---:|---:|',
    `| postcopy from the start (all of RAM in postcopy, guest faulting; downtime ${f1(wholeDown)} ms) | ${(wholeBytes / MIB).toFixed(0)} MiB | ${wholeMs.toFixed(0)} ms | ${mbs(wholeBytes, wholeMs)} | ${rawMs(wholeBytes).toFixed(0)} ms | ${f2(wholeMs / rawMs(wholeBytes))} |`,
    `| postcopy phase after one precopy pass (dirtied pages only) | ${(pcBytes / MIB).toFixed(0)} MiB | ${pcMs.toFixed(0)} ms | ${mbs(pcBytes, pcMs)} | ${rawMs(pcBytes).toFixed(0)} ms | ${f2(pcMs / rawMs(pcBytes))} |`,
  ].join('\n');
}
