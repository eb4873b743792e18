import { join } from 'node:path';
import { needs } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import {
  checkGuestInvariant,
  e2k,
  migrate,
  migrateIncoming,
  QemuProcess,
  qemuAvailable,
  queryStatus,
  runE2k,
  serialMarkers,
  waitFor,
  waitForMigration,
  writePatternFile,
} from '../../tools/src/qemu/index.js';
import { liveSuite, readManifest, recordStore, sha256 } from './helpers.js';

const qemu = qemuAvailable();
const run = needs('qemu', qemu.ok, qemu.reason);
const MiB = 1 << 20;

interface SendResult {
  status: string;
  bytes: number;
  records: { normal: number; duplicate: number; skipped: number };
  returnPath: { pongs: number[]; shut: number } | null;
}

/**
 * e2k-migrate as the source: a migration stored from a real, running QEMU is sent to a fresh
 * QEMU 7.2 destination, which completes, and (after `cont`) runs the guest on from where it was
 * stopped: no new `A`, more `B`s, a growing pass counter and the invariant intact.
 */
describe.runIf(run)('e2k-migrate send → QEMU 7.2 -incoming (live)', () => {
  let pcStore: string;
  let storedPasses: number;
  const work = liveSuite(
    'e2q',
    async (dir) => {
      // The store: a live migration of the dirtying boot-sector guest out of a real QEMU.
      pcStore = join(dir, 'pc');
      storedPasses = await recordStore(pcStore, false);
    },
    180_000,
  );

  it('tcp: the destination completes with the stored RAM, then runs the guest on', async () => {
    const dst = await QemuProcess.start({
      machine: 'pc',
      memMiB: 32,
      boot: true,
      incoming: 'defer',
      paused: true,
      name: 'dst',
    });
    const uri = await migrateIncoming(dst.qmp, 'tcp:127.0.0.1:0');
    const r = await e2k(['send', pcStore, uri, '--caps', 'return-path', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const sent = JSON.parse(r.stdout) as SendResult;
    expect(sent.returnPath).toEqual({ pongs: [1], shut: 0 });
    await waitForMigration(dst.qmp, { timeoutMs: 30_000 });
    expect((await queryStatus(dst.qmp)).status).toBe('paused');
    const loaded = await dst.pmemsave(0, 32 * MiB);
    const m = await readManifest(pcStore);
    expect(sha256(loaded)).toBe(m.blocks[0]?.sha256);
    expect(checkGuestInvariant(loaded).passes).toBe(storedPasses);

    await dst.qmp.execute('cont');
    await waitFor('50 more passes', async () => (serialMarkers(await dst.serial()).b >= 50 ? true : undefined));
    await dst.qmp.execute('stop');
    const after = checkGuestInvariant(await dst.pmemsave(0, 32 * MiB));
    expect(after.ok).toBe(true);
    expect(after.passes).toBeGreaterThanOrEqual(storedPasses + 50);
    // The guest continued where it stopped: it did not reboot (no second 'A').
    expect(serialMarkers(await dst.serial()).a).toBe(0);
  });

  it('exec: to a file that QEMU then loads with -incoming "exec:cat FILE"', async () => {
    const file = join(work(), 'pc.mig');
    const r = await e2k(['send', pcStore, `exec:cat > ${file}`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const dst = await QemuProcess.start({
      machine: 'pc',
      memMiB: 32,
      boot: true,
      incoming: `exec:cat ${file}`,
      paused: true,
      name: 'dst-exec',
    });
    await waitForMigration(dst.qmp, { timeoutMs: 30_000 });
    const m = await readManifest(pcStore);
    expect(sha256(await dst.pmemsave(0, 32 * MiB))).toBe(m.blocks[0]?.sha256);
    expect(dst.stderr).not.toMatch(/vmdescription/);
  });

  it('unix: a -M none migration with zero pages skipped loads into a fresh -M none', async () => {
    const pattern = join(work(), 'pattern.bin');
    await writePatternFile(pattern, 32 * MiB, 25, 11);
    const store = join(work(), 'none');
    const src = await QemuProcess.start({ machine: 'none', memMiB: 32, memoryBackendFile: pattern, name: 'none-src' });
    await src.qmp.execute('stop');
    const inc = runE2k(['incoming', 'tcp:127.0.0.1:0', '--store', store, '--json']);
    await migrate(src.qmp, (await inc.waitForStderr(/listening on (\S+)/))[1] as string);
    await waitForMigration(src.qmp);
    expect(await inc.exit).toBe(0);
    const srcRam = sha256(await src.pmemsave(0, 32 * MiB));

    const dst = await QemuProcess.start({
      machine: 'none',
      memMiB: 32,
      incoming: 'defer',
      paused: true,
      name: 'none-dst',
    });
    const uri = await migrateIncoming(dst.qmp, `unix:${join(work(), 'none-dst.sock')}`);
    const r = await e2k(['send', store, uri, '--zero-pages', 'skip', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const sent = JSON.parse(r.stdout) as SendResult;
    expect(sent.records.skipped).toBeGreaterThan(4000);
    expect(sent.records.duplicate).toBe(0);
    await waitForMigration(dst.qmp, { timeoutMs: 30_000 });
    expect(sha256(await dst.pmemsave(0, 32 * MiB))).toBe(srcRam);
  });

  it('a destination with a different machine rejects the stream; with a return path send fails typed', async () => {
    const dst = await QemuProcess.start({
      machine: 'none',
      memMiB: 32,
      incoming: 'defer',
      paused: true,
      name: 'wrong-dst',
    });
    const uri = await migrateIncoming(dst.qmp, 'tcp:127.0.0.1:0');
    const r = await e2k(['send', pcStore, uri, '--caps', 'return-path', '--json']);
    expect(r.code).toBe(1);
    const { error } = JSON.parse(r.stdout) as { error: { code: string } };
    // QEMU rejects the configuration record and closes: the send reports the peer's failure.
    expect(error.code).toBe('E_PEER_FAILED');
    await waitFor('QEMU to report the failure', async () =>
      /Machine type received/.test(dst.stderr) ? true : undefined,
    );
  });
});
