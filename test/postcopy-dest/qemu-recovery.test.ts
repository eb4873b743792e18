import { join } from 'node:path';
import { QmpClient } from '@e2k-migrate/qmp';
import { needs, startTcpProxy } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import {
  checkGuestInvariant,
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
import { sha256, startCutProxy, uffdAvailable } from './support.js';

const MiB = 1 << 20;
const qemu = qemuAvailable();
const uffd = uffdAvailable();
const run = needs('qemu', qemu.ok, qemu.reason) && needs('uffd', uffd.ok, uffd.reason);

/**
 * Postcopy recovery with QEMU 7.2 as the source (spec §9.6): the connection is cut by a proxy
 * while both sides are in postcopy (the guest already runs on our side and faults), both pause
 * without losing anything, `migrate-recover` on our QMP monitor listens again, QEMU's
 * `migrate {"resume": true}` reconnects, RECV_BITMAP/POSTCOPY_RESUME are answered and the
 * migration completes with RAM equal to QEMU's.
 */
describe.runIf(run)('QEMU 7.2 → e2k-migrate incoming: postcopy recovery after a cut (live)', () => {
  const work = liveSuite('pc-recover');

  interface Proxy {
    uri: string;
    close(): Promise<void>;
  }

  /**
   * QEMU's booted guest migrating to `e2k-migrate incoming` (with a QMP monitor) through `proxy`,
   * switched to postcopy after 2 dirty syncs; resolves once the destination runs the guest and
   * has requested pages. `body` then cuts, recovers and checks; the monitor and proxy are closed.
   */
  async function inPostcopy<P extends Proxy>(
    name: string,
    caps: string[],
    makeProxy: (port: number) => Promise<P>,
    body: (p: { src: QemuProcess; inc: ReturnType<typeof runE2k>; dst: QmpClient; proxy: P }) => Promise<void>,
  ): Promise<void> {
    const src = await QemuProcess.start({ machine: 'pc', memMiB: 32, boot: true, name: `${name}-src` });
    await waitFor('the guest to print B', async () => (serialMarkers(await src.serial()).b > 0 ? true : undefined));
    const qmpPath = join(work(), `${name}.qmp`);
    const inc = runE2k([
      ...['incoming', 'tcp:127.0.0.1:0', '--store', join(work(), name)],
      ...['--caps', ['postcopy-ram', ...caps].join(','), '--qmp', `unix:${qmpPath}`, '--json'],
    ]);
    const port = Number((await inc.waitForStderr(/listening on tcp:127\.0\.0\.1:(\d+)/))[1]);
    await inc.waitForStderr(/QMP monitor on/);
    const dst = await QmpClient.connect(`unix:${qmpPath}`);
    const proxy = await makeProxy(port);
    try {
      await setCapabilities(src.qmp, ['postcopy-ram', ...caps.filter((c) => c === 'postcopy-preempt')]);
      await setParameters(src.qmp, {
        'max-bandwidth': 64 * MiB,
        'downtime-limit': 1,
        'max-postcopy-bandwidth': 8 * MiB,
      });
      await src.qmp.execute('migrate', { uri: proxy.uri });
      await waitFor('2 dirty syncs', async () =>
        ((await queryMigrate(src.qmp)).ram?.['dirty-sync-count'] ?? 0) >= 2 ? true : undefined,
      );
      await src.qmp.execute('migrate-start-postcopy');
      await waitFor('destination postcopy with page requests', async () => {
        const q = (await dst.execute('query-migrate')) as Record<string, unknown>;
        return q.status === 'postcopy-active' && (q['x-postcopy-requests'] as number) > 0 ? true : undefined;
      });
      await body({ src, inc, dst, proxy });
    } finally {
      await dst.close().catch(() => undefined);
      await proxy.close();
    }
  }

  /** Waits for both sides to pause, recovers (migrate-recover + migrate resume) and waits for completion. */
  async function pauseAndResume(src: QemuProcess, dst: QmpClient): Promise<Record<string, unknown>> {
    await waitFor('both sides paused', async () => {
      const s = (await queryMigrate(src.qmp)).status;
      const d = ((await dst.execute('query-migrate')) as { status?: string }).status;
      return s === 'postcopy-paused' && d === 'postcopy-paused' ? true : undefined;
    });
    const paused = (await dst.execute('query-migrate')) as Record<string, unknown>;
    const { uri } = (await dst.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' })) as { uri: string };
    await src.qmp.execute('migrate', { uri, resume: true });
    const q = await waitForMigration(src.qmp, { timeoutMs: 120_000 });
    expect(q.status).toBe('completed');
    return paused;
  }

  it('pauses on both sides, resumes through migrate-recover + migrate resume, RAM equals the source', async () => {
    await inPostcopy(
      'recover',
      ['postcopy-blocktime'],
      (port) => startTcpProxy({ host: '127.0.0.1', port }),
      async ({ src, inc, dst, proxy }) => {
        // In postcopy, with the guest running here and pages requested: cut 2 MiB further on.
        proxy.cutAfter(proxy.forwarded + 2 * MiB);
        const paused = await pauseAndResume(src, dst);
        expect(paused['x-pause-reason']).toMatch(/E_/);
        expect(await inc.exit).toBe(0);
        const result = JSON.parse(inc.stdout()) as {
          blocks: { idstr: string; sha256: string }[];
          postcopy: {
            requests: number;
            faults: number;
            backend: string;
            pages: { duplicates: number; alreadyPlaced: number };
          };
        };
        const pmem = await src.pmemsave(0, 32 * MiB);
        expect(checkGuestInvariant(pmem).ok).toBe(true);
        expect(result.blocks.find((b) => b.idstr === 'pc.ram')?.sha256).toBe(sha256(pmem));
        expect(result.postcopy.backend).toBe('uffd');
        expect(result.postcopy.requests).toBeGreaterThan(0);
        // After the resume QEMU re-sent exactly what the received bitmap lacked: nothing twice.
        expect(result.postcopy.pages).toMatchObject({ duplicates: 0, alreadyPlaced: 0 });
        expect(inc.stderr()).toMatch(/state postcopy-paused/);
        expect(inc.stderr()).toMatch(/state postcopy-recover/);
      },
    );
  });

  it('with postcopy-preempt: both connections cut, the main one and the preempt one reconnect', async () => {
    await inPostcopy(
      'recover-preempt',
      ['postcopy-preempt'],
      (port) => startCutProxy({ host: '127.0.0.1', port }),
      async ({ src, inc, dst, proxy }) => {
        expect(proxy.connections).toBe(2);
        proxy.cutAll();
        await pauseAndResume(src, dst);
        expect(await inc.exit).toBe(0);
        const result = JSON.parse(inc.stdout()) as {
          blocks: { idstr: string; sha256: string }[];
          postcopy: { requests: number; pages: { duplicates: number; alreadyPlaced: number } };
        };
        expect(result.blocks.find((b) => b.idstr === 'pc.ram')?.sha256).toBe(sha256(await src.pmemsave(0, 32 * MiB)));
        expect(result.postcopy.pages).toMatchObject({ duplicates: 0, alreadyPlaced: 0 });
        // QEMU 7.2 reconnects the preempt channel too; it is read to its final EOS again.
        expect(inc.stderr().match(/postcopy-preempt connection attached/g)).toHaveLength(2);
      },
    );
  });
});
