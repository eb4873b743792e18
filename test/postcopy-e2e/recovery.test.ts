/**
 * Postcopy recovery E2K ↔ E2K with the connection cut at exact byte offsets (cut-points.ts):
 * both sides pause with nothing lost, the operator runs `migrate-recover` on the destination and
 * `migrate {"uri", "resume": true}` on the source over QMP, the sides exchange RECV_BITMAP and
 * POSTCOPY_RESUME / RESUME_ACK, and the migration completes — bit-exact against an unmigrated
 * run every time. Some cases cut the recovery's own connection too (inside the handshake).
 */
import type { VmProcess } from '@e2k-migrate/cli';
import { needs, startTcpProxy, type TcpProxy } from '@e2k-migrate/test-support';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hugetlbAvailable, uffdAvailable } from '../postcopy-dest/support.js';
import { buildCli, queryMigrate, VmSet } from '../precopy/helpers.js';
import { CUT_CASES, type CutCase } from './cut-points.js';
import {
  cutAfterPackage,
  expectBothPaused,
  expectSameAsReference,
  guestArgs,
  migrationEvents,
  RANDOM_GUEST,
  recover,
  setPostcopyParams,
  startMigration,
  startPair,
  vcpuSteps,
  waitCompleted,
} from './harness.js';

const uffd = uffdAvailable();
const huge = hugetlbAvailable();
/** Fewer steps than the matrix: the destination runs on to N after every case. */
const G = { ...RANDOM_GUEST, steps: 16_000_000 };

let refs: VmSet;
let ref: VmProcess;
let vms: VmSet | undefined;
const proxies: TcpProxy[] = [];
beforeAll(async () => {
  buildCli();
  refs = new VmSet();
  ref = await refs.start('ref', guestArgs(G));
}, 240_000);
afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
  await vms?.close();
  vms = undefined;
});
afterAll(async () => {
  await refs?.close();
});

async function runCase(c: CutCase): Promise<void> {
  vms = new VmSet();
  const { src, dst, port } = await startPair(vms, G, c);
  const proxy = await startTcpProxy({ host: '127.0.0.1', port }, { connections: 'all', cut: 'exact' });
  proxies.push(proxy);
  const armed = c.afterPackage !== undefined ? cutAfterPackage(proxy, c.afterPackage) : undefined;
  // switch after one pass (the second dirty sync): the guest dirties all of RAM meanwhile
  await setPostcopyParams(src, { 'x-postcopy-after-iterations': 1 });
  await startMigration(src, proxy.uri);
  if (c.preemptOffset !== undefined) (await proxy.waitForConnection(1)).cutAfter(c.preemptOffset);

  const paused = await expectBothPaused(src, dst);
  if (armed) {
    // exactly the bytes up to the cut reached the destination; with preempt, the preempt channel
    // may break first (the source tears both down), and the destination stops reading main there
    const { cutAt } = await armed;
    if (c.preempt) expect(paused['x-bytes-received']).toBeLessThanOrEqual(cutAt);
    else expect(paused['x-bytes-received']).toBe(cutAt);
  } else expect(proxy.pipe(1)?.forwarded).toBe(c.preemptOffset);
  expect(paused['x-postcopy-state']).toBe('running');
  // the switch happened in the middle of the run
  for (const n of await vcpuSteps(src)) expect(n).toBeLessThan(G.steps);
  let cuts = 1;

  if (c.recovery !== undefined) {
    const at = c.recovery;
    await recover(src, dst, async (p) => {
      const second = await startTcpProxy({ host: '127.0.0.1', port: p }, { connections: 'all', cut: 'exact' });
      proxies.push(second);
      second.cutAfter(at);
      return second;
    });
    const again = await expectBothPaused(src, dst, 2);
    const resumedFrom = paused['x-bytes-received'] as number;
    if (c.preempt) expect(again['x-bytes-received']).toBeLessThanOrEqual(resumedFrom + at);
    else expect(again['x-bytes-received']).toBe(resumedFrom + at);
    cuts++;
  }
  await recover(src, dst);
  const { s, d } = await waitCompleted(src, dst);
  // a recovery whose connection broke before RESUME_ACK reached the source does not count
  expect(s['x-postcopy-recoveries']).toBe(c.recovery !== undefined && c.recovery > 18 ? 2 : 1);
  for (const vm of [src, dst]) {
    expect(migrationEvents(vm).filter((x) => x === 'postcopy-paused')).toHaveLength(cuts);
    expect(migrationEvents(vm).at(-1)).toBe('completed');
  }
  // after each resume the source sent exactly what the received bitmap lacked
  expect(d['x-postcopy-pages']).toMatchObject({ duplicates: 0, alreadyPlaced: 0 });
  expect(d['x-postcopy-outstanding-requests']).toBe(0);
  await expectSameAsReference(dst, ref, G);
  expect((await queryMigrate(dst)).status).toBe('completed');
}

describe('E2K ↔ E2K postcopy recovery at exact cut points', () => {
  for (const c of CUT_CASES) {
    const ok = needs('uffd', uffd.ok, uffd.reason) && (c.kind !== 'hugetlb' || needs('hugetlb', huge.ok, huge.reason));
    it.runIf(ok)(c.name, () => runCase(c));
  }
});
