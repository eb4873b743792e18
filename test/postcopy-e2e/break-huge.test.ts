/**
 * Break-huge E2K ↔ E2K (QEMU 7.2's x-postcopy-preempt-break-huge, spec §9.5): guest RAM on 2 MiB
 * hugetlb pages, postcopy-preempt, and from the switchover on the main connection throttled to
 * 8 MiB/s by the proxy (reached over a Unix socket, reading no further ahead than it forwards) —
 * so the source's background scan spends its time blocked in the middle of a huge page on the
 * main channel (it looks at the return path every 64 target pages: 7 of those 8 points lie inside
 * a huge page) while the destination's vCPUs fault on other huge pages. Those requests suspend
 * the half-sent huge page, go whole on the preempt channel, and the suspended page is finished on
 * the main channel: a host page is never split across channels (the destination's
 * PostcopyTmpPage per channel would reject it), and the result is bit-exact against an
 * unmigrated run. Not byte-exact like the cut suites: the outcome (suspensions > 0) held 4–5 times
 * per run, also with other suites loading both cores.
 */
import { join } from 'node:path';
import type { VmProcess } from '@e2k-migrate/cli';
import { needs, startTcpProxy, type TcpProxy } from '@e2k-migrate/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hugetlbAvailable, uffdAvailable } from '../postcopy-dest/support.js';
import { buildCli, VmSet } from '../precopy/helpers.js';
import {
  expectSameAsReference,
  type Guest,
  guestArgs,
  MiB,
  SWITCHOVER_MARK,
  setPostcopyParams,
  startMigration,
  startPair,
  waitCompleted,
} from './harness.js';

const uffd = uffdAvailable();
const huge = hugetlbAvailable();
const G: Guest = { mem: '32M', vcpus: 2, workload: ['--workload', 'random', '--seed', '3'], steps: 30_000_000 };

let vms: VmSet | undefined;
let proxy: TcpProxy | undefined;
beforeAll(() => buildCli(), 240_000);
afterEach(async () => {
  await proxy?.close();
  await vms?.close();
  vms = undefined;
  proxy = undefined;
});

const ok = needs('uffd', uffd.ok, uffd.reason) && needs('hugetlb', huge.ok, huge.reason);

describe.runIf(ok)('postcopy-preempt break-huge, E2K ↔ E2K', () => {
  it('requests arriving while a huge page is half sent on main suspend it; bit-exact', async () => {
    vms = new VmSet();
    const ref: VmProcess = await vms.start('ref', guestArgs(G));
    const { src, dst, port } = await startPair(vms, G, { kind: 'hugetlb', preempt: true });
    // The source reaches the proxy over a Unix socket: small kernel buffers, so a throttled main
    // channel holds the source back within a few huge pages (a loopback TCP receive buffer may
    // grow to 32 MiB here and swallow the whole guest at once).
    proxy = await startTcpProxy(
      { host: '127.0.0.1', port },
      { connections: 'all', unixPath: join(vms.dir, 'mig.sock') },
    );
    const p = proxy;
    const throttled = new Promise<void>((resolve) =>
      p.onMatch(SWITCHOVER_MARK, 4, () => {
        p.pipe(0)?.throttle(8 * MiB);
        resolve();
      }),
    );
    // no postcopy rate limit at the source: only the slow link holds the background back
    await setPostcopyParams(src, { 'x-postcopy-after-iterations': 1, 'max-postcopy-bandwidth': 0 });
    await startMigration(src, p.uri);
    const { s, d } = await waitCompleted(src, dst);
    await throttled;

    expect(s['x-postcopy-break-huge'] as number).toBeGreaterThan(0);
    expect(s['x-postcopy-preempt-host-pages'] as number).toBeGreaterThan(0);
    expect(s['x-postcopy-preempt-host-pages']).toBe(s['x-postcopy-requested-host-pages']);
    expect(d['x-postcopy-requests'] as number).toBeGreaterThan(0);
    // every huge page placed once, whole (a split one would have failed the migration)
    expect(d['x-postcopy-pages']).toMatchObject({ duplicates: 0, alreadyPlaced: 0 });
    const pages = d['x-postcopy-pages'] as { copied: number; zero: number };
    expect((pages.copied + pages.zero) * 2 * MiB).toBe(d['x-postcopy-discarded-bytes']);
    await expectSameAsReference(dst, ref, G);
  });
});
