/**
 * E2K ↔ E2K postcopy, 4 KiB and 2 MiB (hugetlb) guest RAM × vanilla and postcopy-preempt, each
 * side a separate `e2k-migrate vm` process: the source runs the seeded random workload, precopy
 * sends one pass, `migrate-start-postcopy` switches (the background paced at 16 MiB/s, so the
 * destination's vCPUs fault and request most pages), both sides complete; the destination then
 * runs to step N and equals an unmigrated reference VM at step N (RAM sha256, every register).
 */
import type { VmProcess } from '@e2k-migrate/cli';
import { needs } from '@e2k-migrate/test-support';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hugetlbAvailable, uffdAvailable } from '../postcopy-dest/support.js';
import { buildCli, queryMigrate, VmSet, waitMigrate } from '../precopy/helpers.js';
import {
  expectSameAsReference,
  guestArgs,
  RANDOM_GUEST,
  setPostcopyParams,
  startMigration,
  startPair,
  vcpuSteps,
  waitCompleted,
  waitStatus,
} from './harness.js';

const uffd = uffdAvailable();
const huge = hugetlbAvailable();
const G = RANDOM_GUEST;

let refs: VmSet;
let ref: VmProcess;
let vms: VmSet | undefined;
beforeAll(async () => {
  buildCli();
  refs = new VmSet();
  ref = await refs.start('ref', guestArgs(G));
}, 240_000);
afterEach(async () => {
  await vms?.close();
  vms = undefined;
});
afterAll(async () => {
  await refs?.close();
});

const cases = [
  { name: '4 KiB pages', kind: 'anonymous', preempt: false },
  { name: '4 KiB pages, postcopy-preempt', kind: 'anonymous', preempt: true },
  { name: '2 MiB hugetlb pages', kind: 'hugetlb', preempt: false },
  { name: '2 MiB hugetlb pages, postcopy-preempt', kind: 'hugetlb', preempt: true },
] as const;

describe('E2K ↔ E2K postcopy matrix: bit-exact against an unmigrated run', () => {
  for (const c of cases) {
    const ok = needs('uffd', uffd.ok, uffd.reason) && (c.kind !== 'hugetlb' || needs('hugetlb', huge.ok, huge.reason));
    it.runIf(ok)(c.name, async () => {
      vms = new VmSet();
      const { src, dst, uri } = await startPair(vms, G, c);
      await setPostcopyParams(src);
      await startMigration(src, uri);
      // one full pass sent, then the user's migrate-start-postcopy
      await waitMigrate(src, (q) => (q.ram?.['dirty-sync-count'] ?? 0) >= 2 || q.status !== 'active');
      await src.qmp.execute('migrate-start-postcopy');
      const during = await waitStatus(dst, ['postcopy-active']);
      expect(during.status).toBe('postcopy-active');
      // the switch happened in the middle of the run
      for (const n of await vcpuSteps(src)) expect(n).toBeLessThan(G.steps);
      const { s, d } = await waitCompleted(src, dst);

      // the source: postcopy happened, requests were served (on the preempt channel when on)
      expect(s.ram?.['postcopy-bytes']).toBeGreaterThan(0);
      expect(s.ram?.['postcopy-requests']).toBeGreaterThan(0);
      expect(s.downtime).toBeGreaterThanOrEqual(0);
      expect(s['x-postcopy-discard-ranges']).toBeGreaterThan(0);
      if (c.preempt) expect(s['x-postcopy-preempt-host-pages']).toBeGreaterThan(0);
      else expect(s['x-postcopy-preempt-host-pages']).toBe(0);
      expect(((await src.qmp.execute('query-status')) as { status: string }).status).toBe('postmigrate');
      // the destination: userfaultfd, faults, one request per missing host page, all answered
      expect(d['x-postcopy-backend']).toBe('uffd');
      expect(d['x-postcopy-faults'] as number).toBeGreaterThan(0);
      expect(d['x-postcopy-requests']).toBe(s.ram?.['postcopy-requests']);
      expect(d['x-postcopy-outstanding-requests']).toBe(0);
      expect(d['postcopy-vcpu-blocktime'] as number[]).toHaveLength(G.vcpus);
      expect((d['postcopy-latency-dist'] as number[]).reduce((a, b) => a + b, 0)).toBe(d['x-postcopy-faults']);
      // nothing placed twice: the received bitmap and the source's dirty bitmap agree
      expect(d['x-postcopy-pages']).toMatchObject({ duplicates: 0, alreadyPlaced: 0 });
      const hostPage = c.kind === 'hugetlb' ? 2 * 1024 * 1024 : 4096;
      expect((d['x-postcopy-discarded-bytes'] as number) % hostPage).toBe(0);

      await expectSameAsReference(dst, ref, G);
      expect((await queryMigrate(dst)).status).toBe('completed');
    });
  }
});
