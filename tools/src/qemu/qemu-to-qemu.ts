import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writePatternFile } from './boot-guest.js';
import {
  migrate,
  migrateIncoming,
  paceUntilSyncs,
  setParameters,
  waitFor,
  waitForMigration,
} from './migration-control.js';
import { QemuProcess } from './qemu-process.js';
import { RATE_GUEST_MAX_MBPS, writeRateGuestImage } from './rate-guest.js';

export interface QemuToQemuOptions {
  memMiB: number;
  /**
   * `idle`: `-M none`, stopped, RAM = incompressible random bytes (a memory-backend-file), so every
   * page is a full PAGE record — comparable with e2k-migrate's stopped incompressible guest.
   * `dirty`: `-M pc` running a boot-sector guest that keeps dirtying RAM (at `dirtyMBps` when
   * given, else the fixtures' guest dirtying every page on every pass).
   */
  guest: 'idle' | 'dirty';
  /** Rate-limited dirtying in MB/s (10^6 bytes of 4 KiB pages per second), `dirty` only. */
  dirtyMBps?: number;
  /** Source `max-bandwidth` in bytes/s (0 = unlimited). */
  maxBandwidth: number;
  downtimeLimitMs: number;
}

export interface QemuToQemuResult {
  /** Source total-time. */
  seconds: number;
  /** RAM bytes put on the wire per second of total-time. */
  throughputBytesPerSec: number;
  downtimeMs: number;
  /** The source's final query-migrate. */
  queryMigrate: Record<string, unknown>;
}

/**
 * QEMU 7.2 → QEMU 7.2 over loopback TCP (the precopy benchmark's reference): starts a source and
 * an `-incoming defer` destination with the same machine, migrates, and reports QEMU's own numbers.
 * Both processes are killed afterwards, also on failure.
 */
export async function runQemuToQemuMigration(opts: QemuToQemuOptions): Promise<QemuToQemuResult> {
  const scratch = join(tmpdir(), `e2k-q2q-${process.pid}-${Date.now()}`);
  const procs: QemuProcess[] = [];
  try {
    let src: QemuProcess;
    let dstMachine: string;
    if (opts.guest === 'idle') {
      const pattern = `${scratch}.pattern`;
      await writePatternFile(pattern, opts.memMiB << 20, 100);
      src = await QemuProcess.start({
        machine: 'none',
        memMiB: opts.memMiB,
        memoryBackendFile: pattern,
        prealloc: true,
        name: 'q2q-src',
      });
      procs.push(src);
      await src.qmp.execute('stop');
      dstMachine = 'none';
    } else {
      let boot: string | true = true;
      if (opts.dirtyMBps !== undefined) {
        if (!(opts.dirtyMBps > 0 && opts.dirtyMBps <= RATE_GUEST_MAX_MBPS)) {
          throw new Error(`dirtyMBps must be in (0, ${RATE_GUEST_MAX_MBPS}], got ${opts.dirtyMBps}`);
        }
        boot = `${scratch}.boot.img`;
        await writeRateGuestImage(boot, opts.dirtyMBps);
      }
      src = await QemuProcess.start({ machine: 'pc', memMiB: opts.memMiB, boot, name: 'q2q-src' });
      procs.push(src);
      // The first `B`: one whole pass done, so no page is a zero page any more.
      await waitFor('a first guest pass', async () => ((await src.serial()).includes('B') ? true : undefined), 120_000);
      dstMachine = 'pc';
    }
    const dst = await QemuProcess.start({
      machine: dstMachine,
      memMiB: opts.memMiB,
      boot: opts.guest === 'dirty',
      incoming: 'defer',
      paused: true,
      name: 'q2q-dst',
    });
    procs.push(dst);
    const uri = await migrateIncoming(dst.qmp, 'tcp:127.0.0.1:0');
    await setParameters(src.qmp, { 'max-bandwidth': opts.maxBandwidth, 'downtime-limit': opts.downtimeLimitMs });
    await migrate(src.qmp, uri);
    const q = await waitForMigration(src.qmp, {
      timeoutMs: 600_000,
      // A guest dirtying faster than the link never converges: give up on the limit after a while.
      onPoll: opts.guest === 'dirty' ? paceUntilSyncs(src.qmp, 30) : undefined,
    });
    await waitForMigration(dst.qmp, { timeoutMs: 60_000 });
    const totalMs = q['total-time'] ?? 0;
    const seconds = totalMs / 1000;
    const transferred = q.ram?.transferred ?? 0;
    return {
      seconds,
      throughputBytesPerSec: seconds > 0 ? transferred / seconds : 0,
      downtimeMs: q.downtime ?? 0,
      queryMigrate: q,
    };
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
    await rm(`${scratch}.pattern`, { force: true });
    await rm(`${scratch}.boot.img`, { force: true });
  }
}
