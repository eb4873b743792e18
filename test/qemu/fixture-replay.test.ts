import { join } from 'node:path';
import { needs } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import {
  checkGuestInvariant,
  e2k,
  migrateIncoming,
  type QemuOptions,
  QemuProcess,
  qemuAvailable,
  serialMarkers,
  waitFor,
  waitForMigration,
} from '../../tools/src/qemu/index.js';
import { fixtureCatCommand, fixtureSha, liveSuite, readManifest, sha256 } from './helpers.js';

const qemu = qemuAvailable();
const run = needs('qemu', qemu.ok, qemu.reason);
const MiB = 1 << 20;

/** Fixture → the destination QEMU it was captured with (same machine, RAM, disk). */
const CASES: { name: string; dst: Omit<QemuOptions, 'incoming' | 'paused'>; runs: boolean }[] = [
  { name: 'none-32M-pattern', dst: { machine: 'none', memMiB: 32 }, runs: false },
  { name: 'idle-pc-64M', dst: { machine: 'pc-i440fx-7.2', memMiB: 64 }, runs: false },
  { name: 'bootblock-live', dst: { machine: 'pc-i440fx-7.2', memMiB: 32, boot: true }, runs: true },
  { name: 'bootblock-xbzrle', dst: { machine: 'pc-i440fx-7.2', memMiB: 32, boot: true }, runs: true },
];

/**
 * The captured QEMU 7.2 streams through e2k-migrate: `incoming` stores them, `send` replays the
 * store into a fresh QEMU, whose RAM must equal the fixture's reference RAM; guests then run on.
 */
describe.runIf(run)('fixture streams replayed into QEMU 7.2 through incoming + send', () => {
  const work = liveSuite('replay');

  for (const c of CASES) {
    it(`${c.name}`, async () => {
      const store = join(work(), c.name);
      const inc = await e2k(['incoming', `exec:${fixtureCatCommand(c.name)}`, '--store', store, '--json']);
      expect(inc.code, inc.stderr).toBe(0);
      const ramSha = fixtureSha(`${c.name}/${c.name}.ram`);
      expect((await readManifest(store)).blocks[0]?.sha256).toBe(ramSha);

      const dst = await QemuProcess.start({ ...c.dst, incoming: 'defer', paused: true, name: `${c.name}-dst` });
      const uri = await migrateIncoming(dst.qmp, 'tcp:127.0.0.1:0');
      const sent = await e2k(['send', store, uri, '--caps', 'return-path', '--json']);
      expect(sent.code, sent.stderr).toBe(0);
      await waitForMigration(dst.qmp, { timeoutMs: 30_000 });
      const size = c.dst.memMiB * MiB;
      const loaded = await dst.pmemsave(0, size);
      expect(sha256(loaded)).toBe(ramSha);
      if (!c.runs) return;
      const before = checkGuestInvariant(loaded).passes;
      await dst.qmp.execute('cont');
      await waitFor('20 passes', async () => (serialMarkers(await dst.serial()).b >= 20 ? true : undefined));
      await dst.qmp.execute('stop');
      const after = checkGuestInvariant(await dst.pmemsave(0, size));
      expect(after.ok).toBe(true);
      expect(after.passes).toBeGreaterThanOrEqual(before + 20);
      expect(serialMarkers(await dst.serial()).a).toBe(0);
    });
  }
});
