import { needs, readFixture } from '@e2k-migrate/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkGuestInvariant,
  killAllQemu,
  QemuProcess,
  qemuAvailable,
  rateGuestImage,
  runQemuToQemuMigration,
  serialMarkers,
  waitFor,
} from '../../tools/src/qemu/index.js';
import { tempDir } from './helpers.js';

const MiB = 1 << 20;

describe('boot-sector guest invariant checker', () => {
  it('accepts the fixtures reference RAM of a running guest', () => {
    const inv = checkGuestInvariant(readFixture('bootblock-live/bootblock-live.ram'));
    // INDEX.md: passes=5578, end=0x1f00000, boundary at 0x4f0000.
    expect(inv).toMatchObject({ passes: 5578, end: 0x1f00000, boundary: 0x4f0000, ok: true });
  });

  it('rejects a page out of order and a value from another pass', () => {
    const ram = new Uint8Array(readFixture('bootblock-live/bootblock-live.ram'));
    const p = 5578;
    ram[0x200000] = p & 0xff; // inside the (P+1) prefix: a second boundary
    let inv = checkGuestInvariant(ram);
    expect(inv.ok).toBe(false);
    expect(inv.violations[0]?.page).toBe(0x201000);
    ram[0x200000] = (p + 1) & 0xff;
    ram[0x1000000] = (p + 7) & 0xff;
    inv = checkGuestInvariant(ram);
    expect(inv.violations).toEqual([{ page: 0x1000000, value: (p + 7) & 0xff }]);
  });

  it('the rate guest image carries its rate and the boot signature', () => {
    const img = rateGuestImage(64);
    expect(img.length).toBe(512);
    expect([img[510], img[511]]).toEqual([0x55, 0xaa]);
    const k = new DataView(img.buffer).getUint32(0x1f4, true);
    expect(k).toBe(Math.round((64 * 256 * 2 ** 24) / 1_193_182));
    expect(() => rateGuestImage(0)).toThrow(RangeError);
  });
});

const qemu = qemuAvailable();
describe.runIf(needs('qemu', qemu.ok, qemu.reason))('QEMU harness (live)', () => {
  afterEach(async () => {
    await killAllQemu();
  });

  it('the rate guest dirties memory at about the requested rate, keeping the invariant', async () => {
    const dir = await tempDir('rate');
    const img = `${dir}/rate.img`;
    const { writeFile, rm } = await import('node:fs/promises');
    await writeFile(img, rateGuestImage(16));
    const q = await QemuProcess.start({ machine: 'pc', memMiB: 32, boot: img, name: 'rate' });
    try {
      await waitFor('A', async () => (serialMarkers(await q.serial()).a === 1 ? true : undefined));
      const pages = (r: ReturnType<typeof checkGuestInvariant>) => r.passes * 7680 + (r.boundary - MiB) / 4096;
      // pmemsave of a running guest is not a snapshot (the guest writes while QEMU copies): stop
      // it for each sample and count only the time it ran in between.
      const sample = async () => {
        await q.qmp.execute('stop');
        const at = performance.now();
        const r = checkGuestInvariant(await q.pmemsave(0, 32 * MiB));
        return { r, at };
      };
      const a = await sample();
      await q.qmp.execute('cont');
      const ranFrom = performance.now();
      await new Promise((r) => setTimeout(r, 2000));
      const b = await sample();
      const mibPerSec = (pages(b.r) - pages(a.r)) / 256 / ((b.at - ranFrom) / 1000);
      expect(a.r.ok && b.r.ok).toBe(true);
      // Paced, not exact: TCG catches up on missed PIT ticks on a loaded machine, so allow 4x either
      // way; the unpaced guest dirties thousands of MiB/s, so this still proves the pacing works.
      expect(mibPerSec).toBeGreaterThan(4);
      expect(mibPerSec).toBeLessThan(64);
    } finally {
      await q.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runQemuToQemuMigration: idle (stopped, incompressible) and dirty (rate guest) complete', async () => {
    const idle = await runQemuToQemuMigration({ memMiB: 32, guest: 'idle', maxBandwidth: 0, downtimeLimitMs: 300 });
    expect(idle.queryMigrate.status).toBe('completed');
    expect(idle.seconds).toBeGreaterThan(0);
    // Incompressible RAM: every page goes as a full PAGE record.
    expect((idle.queryMigrate.ram as { normal: number }).normal).toBeGreaterThanOrEqual(8192);
    expect(idle.throughputBytesPerSec).toBeGreaterThan(0);
    const dirty = await runQemuToQemuMigration({
      memMiB: 32,
      guest: 'dirty',
      dirtyMBps: 4,
      maxBandwidth: 256 * MiB,
      downtimeLimitMs: 300,
    });
    expect(dirty.queryMigrate.status).toBe('completed');
    expect(dirty.downtimeMs).toBeGreaterThanOrEqual(0);
  });
});
