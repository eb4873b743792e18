/**
 * A failure in the final wrap-up of postcopy pauses instead of failing: the postcopy-preempt
 * connection breaks after the main channel's EOF, while the destination waits for that channel's
 * final EOS (its vCPUs blocked on the requested pages the broken connection was carrying). Both
 * sides pause; after the operator's recovery the source sends what the received bitmap lacks —
 * the lost pages, then END, EOF and a new EOS — and the migration completes bit-exact.
 */
import type { VmProcess } from '@e2k-migrate/cli';
import { needs, startTcpProxy, type TcpProxy } from '@e2k-migrate/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uffdAvailable } from '../postcopy-dest/support.js';
import { buildCli, queryMigrate, VmSet, waitMigrate } from '../precopy/helpers.js';
import {
  expectBothPaused,
  expectSameAsReference,
  guestArgs,
  RANDOM_GUEST,
  recover,
  setPostcopyParams,
  startMigration,
  startPair,
  waitCompleted,
} from './harness.js';

const uffd = uffdAvailable();
const G = { ...RANDOM_GUEST, steps: 16_000_000 };

/**
 * The end of an E2K postcopy main stream: the ram END section (`03`, section id 0: ram is the
 * first section), its empty body (EOS), its footer (`7e`, id 0), then QEMU_VM_EOF. It occurs once,
 * at the very end (postcopy sends PART sections until then).
 */
const MAIN_STREAM_END = Uint8Array.from([
  ...[0x03, 0, 0, 0, 0],
  ...[0, 0, 0, 0, 0, 0, 0, 0x10],
  ...[0x7e, 0, 0, 0, 0],
  0x00,
]);

let vms: VmSet | undefined;
let proxy: TcpProxy | undefined;
beforeAll(() => buildCli(), 240_000);
afterEach(async () => {
  await proxy?.close();
  await vms?.close();
  vms = undefined;
  proxy = undefined;
});

describe.runIf(needs('uffd', uffd.ok, uffd.reason))('postcopy wrap-up failure', () => {
  it('the preempt connection breaks after the main EOF: both pause, recovery completes bit-exact', async () => {
    vms = new VmSet();
    const ref: VmProcess = await vms.start('ref', guestArgs(G));
    const { src, dst, port } = await startPair(vms, G, { kind: 'anonymous', preempt: true });
    proxy = await startTcpProxy({ host: '127.0.0.1', port }, { connections: 'all', cut: 'exact' });
    const mainEnd = new Promise<number>((resolve) => proxy?.onMatch(MAIN_STREAM_END, 0, (end) => resolve(end)));
    await setPostcopyParams(src, { 'x-postcopy-after-iterations': 1 });
    await startMigration(src, proxy.uri);
    // Hold every byte of the preempt connection: the requested pages never arrive.
    const preempt = await proxy.waitForConnection(1);
    preempt.pause();
    const end = await mainEnd;
    // The destination read the main stream through its EOF and now waits for the preempt EOS.
    const waiting = await waitMigrate(dst, (q) => q['x-bytes-received'] === end || q.status !== 'postcopy-active');
    expect(waiting.status).toBe('postcopy-active');
    expect(waiting['x-postcopy-outstanding-requests']).toBeGreaterThan(0);
    expect(preempt.holding).toBeGreaterThan(0);
    preempt.cutNow();

    const paused = await expectBothPaused(src, dst);
    expect(paused['x-pause-reason']).toMatch(/preempt/);
    await recover(src, dst);
    const { s, d } = await waitCompleted(src, dst);
    expect(s['x-postcopy-recoveries']).toBe(1);
    expect(d['x-postcopy-pages']).toMatchObject({ duplicates: 0, alreadyPlaced: 0 });
    expect(d['x-postcopy-outstanding-requests']).toBe(0);
    await expectSameAsReference(dst, ref, G);
    expect((await queryMigrate(dst)).status).toBe('completed');
  });
});
