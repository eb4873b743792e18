import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  type BackendName,
  backendInfo,
  createDirtyTracker,
  createGuestMemoryWith,
  createUserfault,
  type GuestMemory,
} from '@e2k-migrate/native';
import { type Bench, memcpyGBps } from './bench.js';
import { type FaultRtt, faultRttProcess, type Placement, placedCommand, WARMUP_FAULTS } from './fault-rtt.js';

/**
 * `pnpm bench native`: what the addon pays for — zero detection against memcpy, UFFDIO_COPY one
 * page per call vs batched, the fault round trip against a C program with the same thread
 * hand-off, kernel dirty collection over 1 GiB against C — with the fallback's figures beside.
 */
const C_DIR = resolve(import.meta.dirname, '..', '..', 'src', 'bench', 'c');
const PAGE = 4096;

/** Compiles `tools/src/bench/c/NAME.c` with `cc -O2 -pthread` into `dir`; returns the binary's path. */
export function compile(dir: string, name: string): string {
  const out = join(dir, name);
  execFileSync('cc', ['-O2', '-pthread', '-o', out, join(C_DIR, `${name}.c`)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return out;
}

/** Runs a C reference program and parses the one JSON value it prints. */
export function runC<T>(bin: string, args: string[]): T {
  return JSON.parse(execFileSync(bin, args, { encoding: 'utf8' })) as T;
}

function populate(mem: GuestMemory): void {
  for (let off = 0; off < mem.size; off += mem.pageSize) {
    mem.store8(off, 1);
    mem.store8(off, 0);
  }
}

function zeroGBps(backend: BackendName, bytes: number, reps: number): number {
  const mem = createGuestMemoryWith(backend, { size: bytes });
  populate(mem);
  mem.zeroPages(0, mem.size);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) mem.zeroPages(0, mem.size);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  mem.close();
  return (bytes * reps) / s / 1e9;
}

/** µs per page: one copy call per page (with wake) vs 64-page copyPages (DONTWAKE) + one wake. */
function copyCost(backend: BackendName, pages: number): { single: number; batched: number } {
  const mem = createGuestMemoryWith(backend, { size: pages * PAGE });
  const uf = createUserfault({ mode: backend === 'native' ? 'uffd' : 'cooperative' });
  uf.register(mem);
  const src = new Uint8Array(64 * PAGE).fill(0x5a);
  const one = src.subarray(0, PAGE);
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < pages; i++) uf.copy(mem, i * PAGE, one);
  const single = Number(process.hrtime.bigint() - t0) / 1e3 / pages;
  uf.discard(mem, 0, mem.size);
  const offsets = new Float64Array(64);
  t0 = process.hrtime.bigint();
  for (let i = 0; i + 64 <= pages; i += 64) {
    for (let k = 0; k < 64; k++) offsets[k] = (i + k) * PAGE;
    uf.copyPages(mem, offsets, src, { wake: false });
    uf.wake(mem, i * PAGE, 64 * PAGE);
  }
  const batched = Number(process.hrtime.bigint() - t0) / 1e3 / (pages - (pages % 64));
  uf.unregister(mem);
  uf.close();
  mem.close();
  return { single, batched };
}

/** Dirty collection over `mib` MiB with every 16th page written: mean ms per collection. */
function dirtyCollect(backend: BackendName, mib: number, reps: number): { ms: number; dirty: number } {
  const mem = createGuestMemoryWith(backend, { size: mib << 20 });
  for (let off = 0; off < mem.size; off += PAGE) mem.store8(off, 1);
  const t = createDirtyTracker(mem, { mode: backend === 'native' ? 'kernel' : 'software' });
  t.start();
  const out = new Uint32Array(Math.ceil(mem.pageCount / 32));
  let total = 0;
  let dirty = 0;
  for (let r = 0; r < reps; r++) {
    for (let off = 0; off < mem.size; off += 16 * PAGE) mem.store8(off + 8, r);
    const t0 = process.hrtime.bigint();
    t.collect(0, mem.size, out);
    total += Number(process.hrtime.bigint() - t0) / 1e6;
    dirty = 0;
    for (const w of out) dirty += popcount(w);
  }
  t.stop();
  mem.close();
  return { ms: total / reps, dirty };
}

function popcount(x: number): number {
  let v = x >>> 0;
  let n = 0;
  while (v) {
    v &= v - 1;
    n++;
  }
  return n;
}

interface CResult {
  rttP50Ns: number;
  rttP99Ns: number;
  copySingleNsPerPage: number;
  copyBatchedNsPerPage: number;
}

/** The element with the median key. */
function medianBy<T>(xs: T[], key: (x: T) => number): T {
  return [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)] as T;
}

const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

export const nativeBench: Bench = {
  name: 'native',
  summary: 'zero detection vs memcpy, UFFDIO_COPY single vs batched, fault round trip and dirty scan vs C',
  async run({ quick, log }) {
    const info = backendInfo();
    if (info.name !== 'native') throw new Error(`bench native needs the addon: ${info.reason}`);
    const dir = mkdtempSync(join(tmpdir(), 'e2k-bench-native-'));
    try {
      const rttBin = compile(dir, 'uffd_fault_rtt');
      const scanBin = compile(dir, 'dirty_scan');
      const zeroBytes = (quick ? 64 : 256) << 20;
      const copyPages = quick ? 4096 : 16384;
      const rttPages = quick ? 500 : 3000;
      const dirtyMiB = 1024;
      const dirtyReps = quick ? 3 : 10;

      log('memcpy (Uint8Array.set, 64 MiB)');
      const memcpy = memcpyGBps(64 << 20, quick ? 4 : 16);
      log('zero detection');
      const zeroN = zeroGBps('native', zeroBytes, quick ? 2 : 6);
      const zeroF = zeroGBps('fallback', zeroBytes, quick ? 1 : 3);
      log('UFFDIO_COPY single vs batched');
      const copyN = copyCost('native', copyPages);
      const copyF = copyCost('fallback', copyPages);
      log('fault round trip');
      // Median of 3 interleaved runs of each, every run a fresh process: as this machine schedules
      // the threads (unpinned), and with the whole process on one CPU (like for like with the C
      // program, whose two threads share a core when the scheduler wakes them affine).
      const runs = quick ? 1 : 3;
      const placements: Placement[] = ['one-cpu', 'unpinned'];
      const rtt = new Map<string, FaultRtt[]>();
      const cRtt = new Map<Placement, CResult[]>();
      const push = <T>(m: Map<string, T[]>, k: string, v: T): void => {
        m.set(k, [...(m.get(k) ?? []), v]);
      };
      for (let i = 0; i < runs; i++) {
        for (const pl of placements) {
          for (const backend of ['native', 'fallback'] as const) {
            for (const d of ['sync', 'handler'] as const) {
              push(rtt, `${pl}/${backend}/${d}`, faultRttProcess(pl, backend, rttPages, d));
            }
          }
          const [cmd, args] = placedCommand(pl, rttBin, [String(rttPages)]);
          push(cRtt as Map<string, CResult[]>, pl, runC<CResult>(cmd, args));
        }
      }
      const med = (k: string): FaultRtt => medianBy(rtt.get(k) ?? [], (r) => r.p50);
      const medC = (pl: Placement): CResult => medianBy(cRtt.get(pl) ?? [], (r) => r.rttP50Ns);
      const cCopy = runC<CResult>(rttBin, [String(copyPages)]);
      log(`C p50 µs: ${placements.map((pl) => `${pl} ${f(medC(pl).rttP50Ns / 1e3)}`).join(', ')}`);
      log('dirty collection over 1 GiB, 1/16 dirty');
      const dirtyN = dirtyCollect('native', dirtyMiB, dirtyReps);
      const dirtyF = dirtyCollect('fallback', dirtyMiB, dirtyReps);
      const cScan = runC<{ meanNs: number; dirtyPages: number }>(scanBin, [String(dirtyMiB), String(dirtyReps)]);
      const cScanMs = cScan.meanNs / 1e6;
      const ok = (v: boolean): string => (v ? 'met' : '**not met**');
      const rows = [
        '| measure | native | fallback | reference | ratio (native) | goal |',
        '|---|---|---|---|---|---|',
        `| zero detection, GB/s (${zeroBytes >> 20} MiB of zero pages) | ${f(zeroN)} | ${f(zeroF)} | memcpy ${f(memcpy)} | ${f(zeroN / memcpy)} (fallback ${f(zeroF / memcpy)}) | ≥ 0.8: ${ok(zeroN / memcpy >= 0.8)} |`,
        `| install 1 page per call (${copyPages} pages), µs/page | ${f(copyN.single)} | ${f(copyF.single)} | C UFFDIO_COPY ${f(cCopy.copySingleNsPerPage / 1e3)} | — | — |`,
        `| install 64 pages per call (DONTWAKE + WAKE), µs/page | ${f(copyN.batched)} | ${f(copyF.batched)} | C ${f(cCopy.copyBatchedNsPerPage / 1e3)} | batched ÷ single ${f(copyN.batched / copyN.single)} (fallback ${f(copyF.batched / copyF.single)}, C ${f(cCopy.copyBatchedNsPerPage / cCopy.copySingleNsPerPage)}) | ≤ 0.5: ${ok(copyN.batched / copyN.single <= 0.5)} |`,
        ...placements.flatMap((pl) => {
          const c = medC(pl);
          const c50 = c.rttP50Ns / 1e3;
          const c99 = c.rttP99Ns / 1e3;
          const where = pl === 'one-cpu' ? 'one CPU (`taskset -c 0`)' : 'unpinned';
          const row = (d: 'sync' | 'handler', label: string, goal: boolean): string[] => {
            const n = med(`${pl}/native/${d}`);
            const fb = med(`${pl}/fallback/${d}`);
            const g = (r: number): string => (goal ? `≤ 2×: ${ok(r <= 2)}` : '—');
            return [
              `| fault round trip, ${label}, ${where}, p50 µs | ${f(n.p50)} | ${f(fb.p50)} | C ${f(c50)} | ${f(n.p50 / c50)}× C (fallback ${f(fb.p50 / c50)}×) | ${g(n.p50 / c50)} |`,
              `| fault round trip, ${label}, ${where}, p99 µs | ${f(n.p99)} | ${f(fb.p99)} | C ${f(c99)} | ${f(n.p99 / c99)}× C (fallback ${f(fb.p99 / c99)}×) | ${g(n.p99 / c99)} |`,
            ];
          };
          return [
            ...row('sync', 'synchronous delivery (`waitFaults`)', true),
            ...row('handler', 'event-loop handler (`setFaultHandler`)', false),
            `| of which fault read → JS (handler entry), ${where}, p50 µs | ${f(med(`${pl}/native/handler`).handoff)} (sync ${f(med(`${pl}/native/sync`).handoff)}) | ${f(med(`${pl}/fallback/handler`).handoff)} (ring → waitAsync) | — | — | — |`,
          ];
        }),
        `| dirty collection, 1 GiB with 1/16 dirty (${dirtyN.dirty} pages), ms | ${f(dirtyN.ms, 3)} | ${f(dirtyF.ms, 3)} | C PAGEMAP_SCAN ${f(cScanMs, 3)} (${cScan.dirtyPages} pages) | ${f(dirtyN.ms / cScanMs)}× C | ≤ 2×: ${ok(dirtyN.ms / cScanMs <= 2)} |`,
      ];
      return [
        'Native = the addon (`build/Release/e2k_native.node`); fallback = the TypeScript backend (SharedArrayBuffer RAM,',
        'cooperative paging, software dirty bitmap); reference = memcpy (`Uint8Array.set`) or the C programs in',
        '`tools/src/bench/c/` compiled by this bench with `cc -O2`. Fault round trip: a worker times each first touch of a',
        'missing page. JavaScript gets the fault in one of two ways. Synchronous delivery (`Userfault.waitFaults`): the',
        "handling JS thread blocks in poll() on the userfaultfd, reads the fault and installs the page, the C program's",
        'shape exactly (faulting thread → handler thread → `UFFDIO_COPY` → resume). Event-loop handler (`setFaultHandler`):',
        "the addon's fault thread reads the fault and wakes the main thread's event loop through a thread-safe function,",
        'one hand-off more. The fallback\'s "install" is a copy into a',
        'SharedArrayBuffer plus `Atomics.notify`, and its "dirty collection" swaps a software bitmap (it only sees writes',
        'made through the memory API), so its columns are not like for like with the kernel paths. The fault round',
        'trip is dominated by thread wake-ups: on this VM waking a thread on the other core costs tens of µs, waking one',
        "on the same core a few µs. The C program's two threads end up sharing a core (the scheduler wakes them affine);",
        "Node's do not (its own threads keep the other core busy), so each figure is given for the whole process pinned",
        'to one CPU (`taskset -c 0`: like for like; the goal is judged there) and unpinned (as this machine schedules',
        `it). Every run is a fresh process that serves ${WARMUP_FAULTS} warm-up faults first (JIT tier-up; not counted);`,
        'median of 3 interleaved runs.',
        '',
        ...rows,
      ].join('\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
