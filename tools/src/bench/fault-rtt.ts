/**
 * The fault round trip (a worker's first touch of a missing page → fault → JS → `UFFDIO_COPY` →
 * the worker resumes), measured in this process or in a child process pinned to one CPU. Used by
 * `pnpm bench native` (beside the C program) and `pnpm bench postcopy` (the bare round trip).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type BackendName, createGuestMemoryWith, createUserfault, type FaultEvent } from '@e2k-migrate/native';
import { percentile } from './bench.js';

const PAGE = 4096;
/** Faults served before the measured ones (4 KiB runs). */
export const WARMUP_FAULTS = 3000;

/** How the handling thread receives faults (see native/README.md, "Two ways to receive faults"). */
export type FaultDelivery = 'handler' | 'sync';

export interface FaultRtt {
  /** Fault round trip seen by the faulting worker (touch → resumed), µs. */
  p50: number;
  p99: number;
  /** Fault read by the addon's fault thread → JS handler entry, p50 µs. */
  handoff: number;
  /** Fault read → page installed (after `UFFDIO_COPY` returns): what the postcopy destination's latency statistics time, µs. */
  placedP50: number;
  placedP99: number;
}

/**
 * Fault round trip of `pages` first touches (4 KiB anonymous, or 2 MiB hugetlb pages): p50/p99 in
 * µs. `delivery`: `handler` = the fault handler on this thread's event loop (the fault thread hands
 * each batch over through a thread-safe function); `sync` = this thread blocks in `waitFaults` and
 * installs each page itself (the C program's shape: one hand-off, faulting thread → handler thread).
 */
export async function faultRtt(
  backend: BackendName,
  pages: number,
  kind: 'anonymous' | 'hugetlb' = 'anonymous',
  delivery: FaultDelivery = 'handler',
): Promise<FaultRtt> {
  const pageSize = kind === 'hugetlb' ? 2 << 20 : PAGE;
  // Steady state: the first faults (JIT tier-ups, first allocations) are served but not counted.
  // Huge pages are scarce, so the hugetlb runs have no warm-up.
  const warmup = kind === 'hugetlb' ? 0 : WARMUP_FAULTS;
  const total = pages + warmup;
  const mem = createGuestMemoryWith(backend, { size: total * pageSize, kind });
  const uf = createUserfault({ mode: backend === 'native' ? 'uffd' : 'cooperative' });
  const page = new Uint8Array(pageSize).fill(0x5a);
  const handoff: number[] = [];
  const placed: number[] = [];
  const serve = (events: readonly FaultEvent[]): void => {
    const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, like the events' timestamps
    for (const e of events) {
      handoff.push(Number(now - e.timestampNs) / 1e3);
      uf.copy(mem, e.offset - (e.offset % pageSize), page);
      placed.push(Number(process.hrtime.bigint() - e.timestampNs) / 1e3);
    }
  };
  if (delivery === 'handler') uf.setFaultHandler(serve);
  uf.register(mem);
  const w = new Worker(join(import.meta.dirname, 'native-fault-worker.js'), {
    workerData: { handle: mem.handle, pages: total },
  });
  const exited = new Promise((res) => w.once('exit', res));
  if (delivery === 'sync') {
    // The worker runs on its own; its messages queue until this loop gives the event loop back.
    const deadline = performance.now() + 120_000;
    while (placed.length < total) {
      if (performance.now() > deadline) throw new Error(`fault round trip: ${placed.length}/${total} faults served`);
      serve(uf.waitFaults(1000));
    }
  }
  const { lat } = await new Promise<{ lat: Float64Array }>((res, rej) => {
    w.once('message', res);
    w.once('error', rej);
    w.once('exit', (code) => rej(new Error(`fault worker exited with ${code} before reporting`)));
  });
  await exited;
  uf.unregister(mem);
  uf.close();
  mem.close();
  const xs = [...lat.subarray(warmup)].map((ns) => ns / 1e3);
  const counted = (v: number[]): number[] => v.slice(warmup);
  return {
    p50: percentile(xs, 50),
    p99: percentile(xs, 99),
    handoff: percentile(counted(handoff), 50),
    placedP50: percentile(counted(placed), 50),
    placedP99: percentile(counted(placed), 99),
  };
}

/** Where a measurement runs: this process as scheduled, or a child process pinned to CPU 0. */
export type Placement = 'unpinned' | 'one-cpu';

/**
 * `faultRtt` in a fresh child process; `one-cpu` pins it (`taskset -c 0`) so the faulting and the
 * handling thread share a core, as the C reference's threads end up doing, instead of paying this
 * VM's cross-core wake-up (tens of µs) on every fault.
 */
export function faultRttProcess(
  placement: Placement,
  backend: BackendName,
  pages: number,
  delivery: FaultDelivery,
): FaultRtt {
  const child = join(import.meta.dirname, 'fault-rtt-child.js');
  const [cmd, args] = placedCommand(placement, process.execPath, [child, backend, String(pages), delivery]);
  return JSON.parse(execFileSync(cmd, args, { encoding: 'utf8' })) as FaultRtt;
}

/** The command line that runs `bin args` as `placement` says (the C reference uses it too). */
export function placedCommand(placement: Placement, bin: string, args: string[]): [string, string[]] {
  return placement === 'one-cpu' ? ['taskset', ['-c', '0', bin, ...args]] : [bin, args];
}
