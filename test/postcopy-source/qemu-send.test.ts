import { join } from 'node:path';
import { QmpClient } from '@e2k-migrate/qmp';
import { needs } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import { hugePagePool } from '../../native/src/hugepages.js';
import {
  checkGuestInvariant,
  e2k,
  migrateIncoming,
  QemuProcess,
  qemuAvailable,
  queryMigrate,
  runE2k,
  serialMarkers,
  setCapabilities,
  waitFor,
  waitForMigration,
} from '../../tools/src/qemu/index.js';
import { guestArgs, liveSuite, recordStore, within } from '../qemu/helpers.js';
import { freePort, startCutProxy } from './cut-proxy.js';

const qemu = qemuAvailable();
const run = needs('qemu', qemu.ok, qemu.reason);
const MiB = 1 << 20;

interface LiveSendResult {
  status: string;
  downtime: number | null;
  query: {
    status: string;
    downtime?: number;
    'error-desc'?: string;
    ram: Record<string, number>;
    'x-postcopy-discard-ranges'?: number;
    'x-postcopy-preempt-host-pages'?: number;
    'x-postcopy-requested-host-pages'?: number;
  };
}

/** A QEMU 7.2 destination waiting with postcopy-ram (+preempt) on; the guest runs as soon as RUN arrives. */
async function postcopyDestination(caps: string[], huge = false): Promise<{ dst: QemuProcess; uri: string }> {
  const dst = await QemuProcess.start({
    machine: 'pc',
    memMiB: 32,
    boot: true,
    incoming: 'defer',
    name: 'pc-postcopy-dst',
    extraArgs: guestArgs(huge, 32),
  });
  await setCapabilities(dst.qmp, caps);
  return { dst, uri: await migrateIncoming(dst.qmp, 'tcp:127.0.0.1:0') };
}

/** The guest keeps running on the destination: more B markers, no reboot, a growing pass counter, the invariant. */
async function expectGuestRunsOn(dst: QemuProcess, storedPasses: number): Promise<void> {
  const before = serialMarkers(await dst.serial()).b;
  await waitFor('20 more passes on the destination', async () =>
    serialMarkers(await dst.serial()).b >= before + 20 ? true : undefined,
  );
  await dst.qmp.execute('stop');
  const inv = checkGuestInvariant(await dst.pmemsave(0, 32 * MiB));
  expect(inv.violations).toEqual([]);
  expect(inv.ok).toBe(true);
  expect(inv.passes).toBeGreaterThan(storedPasses);
  expect(serialMarkers(await dst.serial()).a).toBe(0);
}

const PACING = [
  '--set',
  'max-bandwidth=64M',
  '--set',
  'downtime-limit=1',
  '--set',
  'max-postcopy-bandwidth=16M',
  '--postcopy-after',
  '0.2',
];

/**
 * e2k-migrate as the postcopy SOURCE, QEMU 7.2 as the destination: a migration stored from a
 * running QEMU is sent with postcopy-ram (and postcopy-preempt); QEMU runs the guest before its
 * memory has arrived, faults, and e2k-migrate serves its page requests. Both sides complete,
 * the guest keeps running and its invariant holds.
 */
describe.runIf(run)('e2k-migrate send --caps postcopy-ram → QEMU 7.2 (live)', () => {
  let store: string;
  let storedPasses: number;
  const work = liveSuite(
    'pcsrc',
    async (dir) => {
      store = join(dir, 'pc');
      storedPasses = await recordStore(store, false);
    },
    180_000,
  );

  for (const preempt of [false, true]) {
    it(`4 KiB pages${preempt ? ', postcopy-preempt' : ''}: QEMU runs the guest, faults, we serve; both complete`, async () => {
      const caps = preempt ? ['postcopy-ram', 'postcopy-preempt'] : ['postcopy-ram'];
      const { dst, uri } = await postcopyDestination(caps);
      const r = await e2k(['send', store, uri, '--caps', caps.join(','), ...PACING, '--json']);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      const sent = JSON.parse(r.stdout) as LiveSendResult;
      expect(sent.query.status).toBe('completed');
      expect(sent.query.ram['postcopy-requests']).toBeGreaterThan(0);
      expect(sent.query.ram['postcopy-bytes']).toBeGreaterThan(0);
      expect(sent.query['x-postcopy-discard-ranges']).toBeGreaterThan(0);
      expect(sent.downtime).toBeGreaterThanOrEqual(0);
      // requested pages not sent yet go on the preempt connection when it exists, else on main
      expect(sent.query['x-postcopy-requested-host-pages']).toBeGreaterThan(0);
      expect(sent.query['x-postcopy-preempt-host-pages']).toBe(
        preempt ? sent.query['x-postcopy-requested-host-pages'] : 0,
      );
      const q = await waitForMigration(dst.qmp, { timeoutMs: 30_000 });
      expect(q.status).toBe('completed');
      await expectGuestRunsOn(dst, storedPasses);
    });
  }

  it('postcopy-ram advised but never started: the migration completes in precopy, QEMU loads it', async () => {
    const { dst, uri } = await postcopyDestination(['postcopy-ram', 'postcopy-preempt']);
    const r = await e2k(['send', store, uri, '--caps', 'postcopy-ram,postcopy-preempt', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const sent = JSON.parse(r.stdout) as LiveSendResult;
    expect(sent.query.status).toBe('completed');
    expect(sent.query.ram['postcopy-bytes']).toBe(0);
    expect((await waitForMigration(dst.qmp, { timeoutMs: 30_000 })).status).toBe('completed');
    await expectGuestRunsOn(dst, storedPasses);
  });

  for (const preempt of [false, true]) {
    it(`recovery${preempt ? ' with postcopy-preempt' : ''}: a cut in postcopy-active pauses QEMU and us; migrate-recover + migrate resume complete it`, {
      timeout: 150_000,
    }, async () => {
      const caps = preempt ? ['postcopy-ram', 'postcopy-preempt'] : ['postcopy-ram'];
      const { dst, uri } = await postcopyDestination(caps);
      const [, host, port] = /^tcp:([^:]+):(\d+)$/.exec(uri) as RegExpExecArray;
      const proxy = await startCutProxy({ host: host as string, port: Number(port) });
      const qmpSock = join(work(), `send-${preempt}.qmp`);
      const send = runE2k([
        'send',
        store,
        proxy.uri,
        '--caps',
        caps.join(','),
        '--set',
        'max-bandwidth=64M',
        '--set',
        'downtime-limit=1',
        '--set',
        'max-postcopy-bandwidth=4M',
        '--postcopy-after',
        '0.2',
        '--qmp',
        `unix:${qmpSock}`,
        '--json',
      ]);
      try {
        await send.waitForStderr(/QMP monitor on/);
        const mon = await QmpClient.connect(`unix:${qmpSock}`);
        try {
          await waitFor('postcopy-active on QEMU', async () =>
            (await queryMigrate(dst.qmp)).status === 'postcopy-active' ? true : undefined,
          );
          // a little into postcopy, every connection breaks at once (pages in flight are lost)
          const at = proxy.forwarded;
          await waitFor('256 KiB more', () => (proxy.forwarded > at + 256 * 1024 ? true : undefined));
          proxy.cut();
          await waitFor('postcopy-paused on QEMU', async () =>
            (await queryMigrate(dst.qmp)).status === 'postcopy-paused' ? true : undefined,
          );
          await waitFor('postcopy-paused on the source', async () =>
            ((await mon.execute('query-migrate')) as { status?: string }).status === 'postcopy-paused'
              ? true
              : undefined,
          );
          // migrate_cancel is refused in postcopy: the guest runs on the destination
          await mon.execute('migrate_cancel');
          expect(((await mon.execute('query-migrate')) as { status?: string }).status).toBe('postcopy-paused');
          const recoverUri = `tcp:127.0.0.1:${await freePort()}`;
          await dst.qmp.execute('migrate-recover', { uri: recoverUri });
          await mon.execute('migrate', { uri: recoverUri, resume: true });
          // Bounded, and saying where both sides are, rather than a bare test timeout.
          const code = await within(send.exit, 45_000, async () => {
            const q = await queryMigrate(dst.qmp).catch((e: Error) => ({ status: e.message }));
            return `send did not finish after the resume; QEMU: ${q.status}; send's log:\n${send.stderr().slice(-3000)}`;
          });
          expect(code, send.stderr()).toBe(0);
        } finally {
          await mon.close().catch(() => undefined);
        }
        const sent = JSON.parse(send.stdout()) as LiveSendResult;
        expect(sent.query.status).toBe('completed');
        expect((sent.query as Record<string, unknown>)['x-postcopy-recoveries']).toBe(1);
        await waitForMigration(dst.qmp, { timeoutMs: 30_000 });
        await expectGuestRunsOn(dst, storedPasses);
      } finally {
        send.kill();
        await proxy.close();
      }
    });
  }
});

const huge =
  run && needs('hugetlb', hugePagePool().free() >= 16, `${hugePagePool().free()} free 2 MiB huge pages, need 16`);

describe.runIf(huge)('e2k-migrate send --caps postcopy-ram → QEMU 7.2 on 2 MiB huge pages (live)', () => {
  let store: string;
  let storedPasses: number;
  liveSuite(
    'pcsrc-huge',
    async (dir) => {
      store = join(dir, 'pc-huge');
      // the store comes from a guest on 2 MiB pages, as the destination will be
      storedPasses = await recordStore(store, true);
    },
    180_000,
  );

  for (const preempt of [false, true]) {
    it(`2 MiB pages${preempt ? ', postcopy-preempt' : ''}: whole host pages, QEMU completes, the guest runs on`, async () => {
      const caps = preempt ? ['postcopy-ram', 'postcopy-preempt'] : ['postcopy-ram'];
      const { dst, uri } = await postcopyDestination(caps, true);
      const r = await e2k([
        'send',
        store,
        uri,
        '--caps',
        caps.join(','),
        ...PACING,
        '--host-page-size',
        'mem=2M',
        '--json',
      ]);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      const sent = JSON.parse(r.stdout) as LiveSendResult;
      expect(sent.query.status).toBe('completed');
      expect(sent.query.ram['postcopy-requests']).toBeGreaterThan(0);
      expect(sent.query['x-postcopy-preempt-host-pages']).toBe(
        preempt ? sent.query['x-postcopy-requested-host-pages'] : 0,
      );
      expect((await waitForMigration(dst.qmp, { timeoutMs: 30_000 })).status).toBe('completed');
      await expectGuestRunsOn(dst, storedPasses);
    });
  }
});
