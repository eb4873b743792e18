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
  queryMigrate,
  runE2k,
  serialMarkers,
  setCapabilities,
  setParameters,
  waitFor,
  waitForMigration,
} from '../../tools/src/qemu/index.js';
import { sha256, uffdAvailable } from '../postcopy-dest/support.js';
import { liveSuite } from '../qemu/helpers.js';

const MiB = 1 << 20;
const qemu = qemuAvailable();
const uffd = uffdAvailable();
const run = needs('qemu', qemu.ok, qemu.reason) && needs('uffd', uffd.ok, uffd.reason);

describe.runIf(run)('send --caps return-path of a store received by postcopy', () => {
  const work = liveSuite('pc-send');

  it('QEMU answers SHUT 0 and completes; RAM and guest continue from the store', async () => {
    const src = await QemuProcess.start({ machine: 'pc', memMiB: 32, boot: true, name: 'pc-send-src' });
    await waitFor('the guest to print B', async () => (serialMarkers(await src.serial()).b > 0 ? true : undefined));
    const store = join(work(), 'store');
    const inc = runE2k(['incoming', 'tcp:127.0.0.1:0', '--store', store, '--caps', 'postcopy-ram', '--json']);
    const uri = (await inc.waitForStderr(/listening on (\S+)/))[1] as string;
    await setCapabilities(src.qmp, ['postcopy-ram']);
    await setParameters(src.qmp, {
      'max-bandwidth': 64 * MiB,
      'downtime-limit': 1,
      'max-postcopy-bandwidth': 16 * MiB,
    });
    await migrate(src.qmp, uri);
    await waitFor(
      '2 dirty syncs',
      async () => (((await queryMigrate(src.qmp)).ram?.['dirty-sync-count'] ?? 0) >= 2 ? true : undefined),
      60_000,
    );
    await src.qmp.execute('migrate-start-postcopy');
    expect((await waitForMigration(src.qmp, { timeoutMs: 120_000 })).status).toBe('completed');
    expect(await inc.exit).toBe(0);
    const received = JSON.parse(inc.stdout()) as { vmdesc: number | null; postcopy: { requests: number } };
    expect(received.vmdesc).toBeNull();
    expect(received.postcopy.requests).toBeGreaterThan(0);
    const pmem = await src.pmemsave(0, 32 * MiB);
    await src.kill();

    const dst = await QemuProcess.start({
      machine: 'pc',
      memMiB: 32,
      boot: true,
      incoming: 'defer',
      paused: true,
      name: 'pc-send-dst',
    });
    const resendUri = await migrateIncoming(dst.qmp, 'tcp:127.0.0.1:0');
    const sent = await e2k(['send', store, resendUri, '--caps', 'return-path', '--json']);
    expect(sent.code, sent.stderr).toBe(0);
    const out = JSON.parse(sent.stdout) as { returnPath: { pongs: number[]; shut: number }; vmdesc: string };
    expect(out.returnPath).toEqual({ pongs: [1], shut: 0 });
    expect(out.vmdesc).toBe('placeholder');
    expect((await waitForMigration(dst.qmp, { timeoutMs: 30_000 })).status).toBe('completed');
    expect(sha256(await dst.pmemsave(0, 32 * MiB))).toBe(sha256(pmem));
    await dst.qmp.execute('cont');
    const passes = checkGuestInvariant(pmem).passes;
    await waitFor('the guest to run on', async () => (serialMarkers(await dst.serial()).b >= 20 ? true : undefined));
    await dst.qmp.execute('stop');
    const after = checkGuestInvariant(await dst.pmemsave(0, 32 * MiB));
    expect(after.ok).toBe(true);
    expect(after.passes).toBeGreaterThan(passes);
  });
});
