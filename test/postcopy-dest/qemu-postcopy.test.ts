import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { needs } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import {
  checkGuestInvariant,
  e2k,
  migrate,
  migrateIncoming,
  paceUntilSyncs,
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
import { liveSuite } from '../qemu/helpers.js';
import { hugetlbAvailable, sha256, uffdAvailable } from './support.js';

const MiB = 1 << 20;
/** Hugetlb guests are small: QEMU's RAM and ours come out of the 64 huge pages the test setup reserves. */
const HUGE_GUEST_MIB = 16;
const qemu = qemuAvailable();
const uffd = uffdAvailable();
const huge = hugetlbAvailable();
const run = needs('qemu', qemu.ok, qemu.reason) && needs('uffd', uffd.ok, uffd.reason);

interface PostcopyResult {
  status: string;
  blocks: { idstr: string; usedLength: number; pageSize: number; sha256: string; file: string }[];
  postcopy: {
    state: string;
    backend: string;
    requests: number;
    faults: number;
    latencyNs: number;
    latencyDist: number[];
    blocktimeMs?: number;
    vcpuBlocktimeMs?: number[];
    discardedBytes: number;
    toucher: { touched: number };
  };
}

/**
 * QEMU 7.2 as the postcopy source, `e2k-migrate incoming --caps postcopy-ram[,postcopy-preempt]`
 * as the destination, over real TCP: the boot-sector guest dirties every page, the migration is
 * switched to postcopy after two dirty syncs, and `max-postcopy-bandwidth` 16 MiB/s keeps the
 * background stream slow enough that the destination's toucher faults and requests pages. The
 * stored RAM must equal QEMU's own pmemsave of the stopped source.
 */
describe.runIf(run)('QEMU 7.2 → e2k-migrate incoming, postcopy (live)', () => {
  const work = liveSuite('pc-dest');

  const cases = [
    { label: '4 KiB pages', preempt: false, hugepages: false },
    { label: '4 KiB pages + postcopy-preempt', preempt: true, hugepages: false },
    { label: '2 MiB hugetlb pages', preempt: false, hugepages: true },
    { label: '2 MiB hugetlb pages + postcopy-preempt', preempt: true, hugepages: true },
  ];
  for (const c of cases) {
    const ok = !c.hugepages || needs('hugetlb', huge.ok, huge.reason);
    it.runIf(ok)(`${c.label}: stored RAM equals QEMU's, pages were requested`, async () => {
      const name = `pc-${c.hugepages ? 'huge' : 'small'}${c.preempt ? '-preempt' : ''}`;
      const src = await startSource(name, c.hugepages);
      const store = join(work(), name);
      const caps = ['postcopy-ram', ...(c.preempt ? ['postcopy-preempt'] : []), 'postcopy-blocktime'];
      const inc = runE2k(['incoming', 'tcp:127.0.0.1:0', '--store', store, '--caps', caps.join(','), '--json']);
      const uri = (await inc.waitForStderr(/listening on (\S+)/))[1] as string;
      await setCapabilities(src.qmp, ['postcopy-ram', ...(c.preempt ? ['postcopy-preempt'] : [])]);
      await setParameters(src.qmp, {
        'max-bandwidth': 64 * MiB,
        'downtime-limit': 1,
        'max-postcopy-bandwidth': 16 * MiB,
      });
      await migrate(src.qmp, uri);
      await switchToPostcopyAfterSyncs(src, 2);
      const q = await waitForMigration(src.qmp, { timeoutMs: 120_000 });
      expect(q.status).toBe('completed');
      expect(await inc.exit).toBe(0);
      const result = JSON.parse(inc.stdout()) as PostcopyResult;
      const ramMiB = c.hugepages ? HUGE_GUEST_MIB : 32;
      const pmem = await src.pmemsave(0, ramMiB * MiB);
      expect(checkGuestInvariant(pmem).ok).toBe(true);
      const ramName = c.hugepages ? 'mem' : 'pc.ram';
      const block = result.blocks.find((b) => b.idstr === ramName);
      expect(block).toMatchObject({ usedLength: ramMiB * MiB, pageSize: c.hugepages ? 2 * MiB : 4096 });
      expect(block?.sha256).toBe(sha256(pmem));
      expect(sha256(await readFile(join(store, block?.file as string)))).toBe(sha256(pmem));
      const pc = result.postcopy;
      expect(pc.backend).toBe('uffd');
      expect(pc.discardedBytes).toBeGreaterThan(0);
      expect(pc.requests).toBeGreaterThan(0);
      expect(pc.faults).toBeGreaterThanOrEqual(pc.requests);
      expect(pc.latencyDist.reduce((a, b) => a + b, 0)).toBe(pc.faults);
      expect(pc.vcpuBlocktimeMs).toHaveLength(1);
      // QEMU counted our requests as its postcopy-requests.
      expect(q.ram?.['postcopy-requests']).toBe(pc.requests);
      if (c.hugepages || c.preempt) return;
      // The store is a complete migration: sent on to a fresh QEMU, the guest continues from it.
      const dst = await QemuProcess.start({
        machine: 'pc',
        memMiB: 32,
        boot: true,
        incoming: 'defer',
        paused: true,
        name: 'resend',
      });
      const resendUri = await migrateIncoming(dst.qmp, 'tcp:127.0.0.1:0');
      // A postcopy stream has no vmdesc: without a return path `send` closes after EOF, which QEMU
      // takes as "no vmdesc" (with a return path QEMU would wait for one, and send for QEMU's SHUT).
      const sent = await e2k(['send', store, resendUri, '--json']);
      expect(sent.code, sent.stderr).toBe(0);
      await waitForMigration(dst.qmp, { timeoutMs: 30_000 });
      expect(sha256(await dst.pmemsave(0, 32 * MiB))).toBe(sha256(pmem));
      await dst.qmp.execute('cont');
      const passes = checkGuestInvariant(pmem).passes;
      await waitFor('the guest to run on', async () => (serialMarkers(await dst.serial()).b >= 20 ? true : undefined));
      await dst.qmp.execute('stop');
      const after = checkGuestInvariant(await dst.pmemsave(0, 32 * MiB));
      expect(after.ok).toBe(true);
      expect(after.passes).toBeGreaterThan(passes);
      expect(serialMarkers(await dst.serial()).a).toBe(0); // no reboot: the device state was complete
    });
  }

  it('postcopy-ram on both sides but never switched: completes as precopy (vmdesc, no userfaultfd)', async () => {
    const src = await startSource('pc-never', false);
    const store = join(work(), 'never');
    const inc = runE2k(['incoming', 'tcp:127.0.0.1:0', '--store', store, '--caps', 'postcopy-ram', '--json']);
    const uri = (await inc.waitForStderr(/listening on (\S+)/))[1] as string;
    await setCapabilities(src.qmp, ['postcopy-ram']);
    await setParameters(src.qmp, { 'max-bandwidth': 64 * MiB, 'downtime-limit': 1 });
    await migrate(src.qmp, uri);
    await waitForMigration(src.qmp, { onPoll: paceUntilSyncs(src.qmp, 2), timeoutMs: 120_000 });
    expect(await inc.exit).toBe(0);
    const result = JSON.parse(inc.stdout()) as PostcopyResult & { vmdesc: number | null };
    expect(result.blocks.find((b) => b.idstr === 'pc.ram')?.sha256).toBe(sha256(await src.pmemsave(0, 32 * MiB)));
    expect(result.vmdesc).toBeGreaterThan(0);
    expect(result.postcopy).toMatchObject({ state: 'advise', backend: 'none', requests: 0 });
  });
});

/** A -M pc (32 MiB, hugetlb 16 MiB) running the fixtures' dirtying boot-sector guest; RAM on 2 MiB hugetlb pages if asked. */
async function startSource(name: string, hugepages: boolean): Promise<QemuProcess> {
  const src = await QemuProcess.start({
    machine: hugepages ? 'pc,memory-backend=mem' : 'pc',
    memMiB: hugepages ? HUGE_GUEST_MIB : 32,
    boot: true,
    name,
    ...(hugepages
      ? {
          extraArgs: ['-object', `memory-backend-memfd,id=mem,size=${HUGE_GUEST_MIB}M,hugetlb=on,hugetlbsize=2M`],
        }
      : {}),
  });
  await waitFor('the guest to print B', async () => (serialMarkers(await src.serial()).b > 0 ? true : undefined));
  return src;
}

/** migrate-start-postcopy once QEMU has synced the dirty bitmap `syncs` times (precopy cannot converge). */
async function switchToPostcopyAfterSyncs(src: QemuProcess, syncs: number): Promise<void> {
  await waitFor(
    `${syncs} dirty syncs`,
    async () => {
      const q = await queryMigrate(src.qmp);
      if (q.status === 'failed') throw new Error(`migration failed: ${q['error-desc']}`);
      return (q.ram?.['dirty-sync-count'] ?? 0) >= syncs ? true : undefined;
    },
    60_000,
  );
  await src.qmp.execute('migrate-start-postcopy');
}
