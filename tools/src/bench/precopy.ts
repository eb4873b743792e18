import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmProcess } from '@e2k-migrate/cli';
import { XBZRLE_OVERFLOW, xbzrleEncode } from '@e2k-migrate/migration';
import { xbzrleEncodeFast } from '@e2k-migrate/migration-ram';
import { type Bench, type BenchOptions, median, memcpyGBps } from './bench.js';
import { rawLoopbackTcp } from './raw-tcp.js';

const MIB = 1 << 20;
const GIB = 1 << 30;

interface MigrationRun {
  seconds: number;
  throughput: number;
  downtimeMs: number;
  pauseMs: number | undefined;
  q: Record<string, unknown>;
}

type QemuRun = {
  seconds: number;
  throughputBytesPerSec: number;
  downtimeMs: number;
  queryMigrate: Record<string, unknown>;
};
type QemuHarness = (o: {
  memMiB: number;
  guest: 'idle' | 'dirty';
  dirtyMBps?: number;
  maxBandwidth: number;
  downtimeLimitMs: number;
}) => Promise<QemuRun>;

/** The QEMU → QEMU harness of the interop work (tools/src/qemu), if it and QEMU are here. */
async function qemuHarness(): Promise<QemuHarness | string> {
  try {
    const mod = (await import('../qemu/index.js')) as { runQemuToQemuMigration?: QemuHarness };
    if (!mod.runQemuToQemuMigration) return 'not measured: harness missing';
    return mod.runQemuToQemuMigration;
  } catch (e) {
    return `not measured: harness missing (${(e as Error).message})`;
  }
}

/**
 * One e2k → e2k migration between two `e2k-migrate vm` processes over loopback TCP.
 * `stopped`: the source is paused with incompressible RAM (every page a PAGE record).
 */
async function e2kRun(o: {
  mem: string;
  stopped: boolean;
  ratePagesPerVcpu?: number;
  maxBandwidth: number;
  downtimeLimitMs: number;
  destPrealloc?: boolean;
}): Promise<MigrationRun> {
  const dir = mkdtempSync(join(tmpdir(), 'e2k-bench-'));
  const vms: VmProcess[] = [];
  try {
    const base = ['--mem', o.mem, '--vcpus', '2'];
    const wl = o.ratePagesPerVcpu
      ? ['--workload', 'rate', '--rate', String(o.ratePagesPerVcpu)]
      : ['--workload', 'increment'];
    const dst = await VmProcess.start({
      dir,
      name: 'dst',
      args: [...base, ...wl, '--incoming', 'defer', ...(o.destPrealloc ? ['--mem-prealloc'] : [])],
    });
    vms.push(dst);
    const src = await VmProcess.start({
      dir,
      name: 'src',
      args: [...base, ...wl, ...(o.stopped ? ['--paused', '--fill', 'random'] : [])],
    });
    vms.push(src);
    await dst.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    const dq = (await dst.qmp.execute('query-migrate')) as { 'socket-address': { port: string }[] };
    const port = dq['socket-address'][0]?.port;
    if (!o.stopped) await new Promise((r) => setTimeout(r, 2000)); // the guest dirties a working set first
    await src.qmp.execute('migrate-set-parameters', {
      'max-bandwidth': o.maxBandwidth,
      'downtime-limit': o.downtimeLimitMs,
    });
    await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    let q: Record<string, unknown>;
    for (;;) {
      q = (await src.qmp.execute('query-migrate')) as Record<string, unknown>;
      if (q.status === 'completed' || q.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (q.status !== 'completed') throw new Error(`e2k migration ${String(q.status)}: ${String(q['error-desc'])}`);
    let d: Record<string, unknown>;
    for (;;) {
      d = (await dst.qmp.execute('query-migrate')) as Record<string, unknown>;
      if (d.status === 'completed' || d.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (q['total-time'] as number) / 1000;
    const ram = q.ram as Record<string, number>;
    const stop = q['x-vcpu-stop-time'];
    const start = d['x-vcpu-start-time'];
    return {
      seconds,
      throughput: (ram.transferred as number) / seconds,
      downtimeMs: q.downtime as number,
      pauseMs: typeof stop === 'number' && typeof start === 'number' ? start - stop : undefined,
      q,
    };
  } finally {
    await Promise.all(vms.map((v) => v.quit()));
    rmSync(dir, { recursive: true, force: true });
  }
}

const mbs = (bps: number) => `${(bps / 1e6).toFixed(0)} MB/s`;
const ms = (x: number | undefined) => (x === undefined ? '–' : `${x.toFixed(0)} ms`);

/** XBZRLE encode throughput (page bytes in per second) over pairs with `changed` bytes per page. */
function xbzrleGBps(encode: (a: Uint8Array, b: Uint8Array, o: Uint8Array) => number, changed: number): number {
  const pages = 4096;
  const prev = new Uint8Array(pages * 4096);
  for (let i = 0; i < prev.length; i += 7) prev[i] = i & 255;
  const next = Uint8Array.from(prev);
  for (let p = 0; p < pages; p++) {
    for (let k = 0; k < changed; k++) {
      const at = p * 4096 + ((k * 977 + p * 13) % 4096);
      next[at] = (next[at] as number) ^ 0x5a;
    }
  }
  const out = new Uint8Array(4096);
  const t0 = performance.now();
  let reps = 0;
  let sink = 0;
  while (performance.now() - t0 < 400) {
    for (let p = 0; p < pages; p++) {
      const n = encode(prev.subarray(p * 4096, (p + 1) * 4096), next.subarray(p * 4096, (p + 1) * 4096), out);
      sink += n === XBZRLE_OVERFLOW ? 1 : n;
    }
    reps++;
  }
  if (sink < 0) throw new Error('unreachable');
  return (reps * pages * 4096) / ((performance.now() - t0) / 1000) / 1e9;
}

export const precopyBench: Bench = {
  name: 'precopy',
  summary: 'live precopy e2k → e2k over loopback tcp: throughput vs raw TCP and QEMU, downtime, XBZRLE encode',
  async run({ quick, log }: BenchOptions): Promise<string> {
    const reps = quick ? 1 : 3;
    const mem = quick ? '256M' : '1G';
    const memBytes = quick ? 256 * MIB : GIB;
    const qemu = await qemuHarness();
    const memMiB = memBytes / MIB;

    // 1. throughput, interleaved so the box's noise hits every column alike
    const raw: number[] = [];
    const rawCopy: number[] = [];
    const e2k: MigrationRun[] = [];
    const e2kPre: MigrationRun[] = [];
    const q2q: QemuRun[] = [];
    for (let i = 0; i < reps; i++) {
      raw.push(await rawLoopbackTcp(memBytes));
      log(`raw tcp ${mbs(raw.at(-1) as number)}`);
      rawCopy.push(await rawLoopbackTcp(memBytes, 'copy'));
      log(`raw tcp, receiver copies into fresh guest memory ${mbs(rawCopy.at(-1) as number)}`);
      e2k.push(await e2kRun({ mem, stopped: true, maxBandwidth: 0, downtimeLimitMs: 300 }));
      log(`e2k ${mbs((e2k.at(-1) as MigrationRun).throughput)}`);
      e2kPre.push(await e2kRun({ mem, stopped: true, maxBandwidth: 0, downtimeLimitMs: 300, destPrealloc: true }));
      log(`e2k, destination preallocated ${mbs((e2kPre.at(-1) as MigrationRun).throughput)}`);
      if (typeof qemu !== 'string') {
        q2q.push(await qemu({ memMiB, guest: 'idle', maxBandwidth: 0, downtimeLimitMs: 300 }));
        log(`qemu ${mbs((q2q.at(-1) as QemuRun).throughputBytesPerSec)}`);
      }
    }
    const rawM = median(raw);
    const rawCopyM = median(rawCopy);
    const e2kM = median(e2k.map((r) => r.throughput));
    const preM = median(e2kPre.map((r) => r.throughput));
    const qM = q2q.length ? median(q2q.map((r) => r.throughputBytesPerSec)) : undefined;
    const vsQemu = (x: number) => (qM ? (x / qM).toFixed(2) : typeof qemu === 'string' ? qemu : '–');

    // 2. downtime: idle (stopped, incompressible) and dirtying 20 MB/s, QEMU's defaults
    const idle = [];
    const dirty = [];
    const qIdle: QemuRun[] = [];
    const qDirty: QemuRun[] = [];
    const rate = Math.round(20e6 / 4096 / 2); // pages/s per vCPU, 2 vCPUs → 20 MB/s
    for (let i = 0; i < reps; i++) {
      idle.push(await e2kRun({ mem, stopped: true, maxBandwidth: 128 * MIB, downtimeLimitMs: 300 }));
      log(`e2k idle downtime ${ms((idle.at(-1) as MigrationRun).downtimeMs)}`);
      dirty.push(
        await e2kRun({ mem, stopped: false, ratePagesPerVcpu: rate, maxBandwidth: 128 * MIB, downtimeLimitMs: 300 }),
      );
      log(`e2k 20 MB/s downtime ${ms((dirty.at(-1) as MigrationRun).downtimeMs)}`);
      if (typeof qemu !== 'string') {
        qIdle.push(await qemu({ memMiB, guest: 'idle', maxBandwidth: 128 * MIB, downtimeLimitMs: 300 }));
        qDirty.push(
          await qemu({ memMiB, guest: 'dirty', dirtyMBps: 20, maxBandwidth: 128 * MIB, downtimeLimitMs: 300 }),
        );
        log(
          `qemu downtime idle ${ms((qIdle.at(-1) as QemuRun).downtimeMs)}, dirty ${ms((qDirty.at(-1) as QemuRun).downtimeMs)}`,
        );
      }
    }
    const med = (xs: (number | undefined)[]) => {
      const v = xs.filter((x): x is number => x !== undefined);
      return v.length ? median(v) : undefined;
    };
    const qCol = (xs: QemuRun[]) => (xs.length ? ms(median(xs.map((r) => r.downtimeMs))) : String(qemu));

    // 3. XBZRLE encode
    const memcpy = memcpyGBps();
    const enc = [1, 8, 64, 512].map((changed) => ({
      changed,
      fast: xbzrleGBps(xbzrleEncodeFast, changed),
      ref: xbzrleGBps(xbzrleEncode, changed),
    }));

    const e2kMedRun = e2k[Math.floor(e2k.length / 2)] as MigrationRun;
    return [
      `Guest RAM ${mem}, 2 vCPUs, loopback tcp, median of ${reps} interleaved runs. Throughput = ram.transferred ÷`,
      'total-time of the source (QEMU: its own query-migrate). Goals: ≥ 0.8 × raw TCP, ≥ 1.0 × QEMU.',
      '',
      '### Throughput: stopped guest, incompressible RAM, max-bandwidth 0',
      '',
      '| run | throughput | ÷ raw TCP | ÷ QEMU |',
      '|---|---:|---:|---:|',
      `| raw loopback TCP (same transport, 1 MiB writes from distinct memory, reader drops) | ${mbs(rawM)} | 1.00 | ${qM ? (rawM / qM).toFixed(2) : '–'} |`,
      `| raw loopback TCP, the receiver only copies the bytes into fresh guest memory (native region, first-touch faults): the destination's floor | ${mbs(rawCopyM)} | ${(rawCopyM / rawM).toFixed(2)} | ${vsQemu(rawCopyM)} |`,
      `| e2k-migrate → e2k-migrate | ${mbs(e2kM)} | ${(e2kM / rawM).toFixed(2)} | ${vsQemu(e2kM)} |`,
      `| e2k-migrate, destination \`--mem-prealloc\` (no first-touch faults) | ${mbs(preM)} | ${(preM / rawM).toFixed(2)} | ${vsQemu(preM)} |`,
      `| QEMU 7.2 → QEMU 7.2 (\`-M none\`, memory-backend-file) | ${qM ? mbs(qM) : String(qemu)} | ${qM ? (qM / rawM).toFixed(2) : '–'} | ${qM ? '1.00' : '–'} |`,
      '',
      `e2k median run: ${(((e2kMedRun.q.ram as Record<string, number>).transferred ?? 0) / MIB).toFixed(0)} MiB in ${e2kMedRun.seconds.toFixed(2)} s, downtime ${ms(e2kMedRun.downtimeMs)} (with unlimited bandwidth the switchover threshold is large, so most of RAM moves in the downtime, as in QEMU).`,
      '',
      '### Downtime (max-bandwidth 128 MiB/s, downtime-limit 300 ms: QEMU 7.2 defaults)',
      '',
      '| guest | e2k downtime | e2k guest-visible pause | QEMU downtime |',
      '|---|---:|---:|---:|',
      `| idle (stopped, incompressible RAM) — goal ≤ 50 ms | ${ms(med(idle.map((r) => r.downtimeMs)))} | – (not running) | ${qCol(qIdle)} |`,
      `| dirtying 20 MB/s (rate workload, 2 × ${rate} pages/s) | ${ms(med(dirty.map((r) => r.downtimeMs)))} | ${ms(med(dirty.map((r) => r.pauseMs)))} | ${qCol(qDirty)} |`,
      '',
      "downtime: from stopping the source VM to the end of the stream on the source (QEMU's definition); guest-visible",
      'pause: last source vCPU step to first destination vCPU step (x-vcpu-stop-time → x-vcpu-start-time).',
      '',
      '### XBZRLE encode (page bytes in per second; 4 KiB pages)',
      '',
      '| changed bytes per page | xbzrleEncodeFast | reference encoder | memcpy | fast ÷ memcpy |',
      '|---:|---:|---:|---:|---:|',
      ...enc.map(
        (e) =>
          `| ${e.changed} | ${e.fast.toFixed(2)} GB/s | ${e.ref.toFixed(2)} GB/s | ${memcpy.toFixed(2)} GB/s | ${(e.fast / memcpy).toFixed(2)} |`,
      ),
    ].join('\n');
  },
};
