import { connect } from '@e2k-migrate/transports';
import { afterEach, describe, expect, it } from 'vitest';
import { faultOnDiscarded, MiB, sha256, startSource, type TestSource, TPS, until } from './helpers.js';
import { TestDestination } from './test-destination.js';

/**
 * The postcopy SOURCE against a protocol-exact test destination (real sockets, the return path,
 * page requests, a PostcopyTmpPage per channel): switchover sequence, discards, requests served
 * first, preempt channel, huge pages, recovery. The destination's RAM must equal the source's
 * RAM bit for bit at the end (the source VM stops at the switch, so its RAM is final).
 */
const live: { src?: TestSource; dest?: TestDestination }[] = [];
afterEach(async () => {
  for (const l of live.splice(0)) {
    l.src?.stop();
    await l.dest?.close();
  }
});

async function setup(o: {
  preempt?: boolean;
  hostPageSize?: number;
  size?: number;
  caps?: ('postcopy-ram' | 'postcopy-preempt' | 'return-path')[];
  params?: Record<string, unknown>;
}) {
  const dest = await TestDestination.start({ preempt: o.preempt ?? false });
  const src = startSource(dest, {
    size: o.size ?? 8 * MiB,
    ...(o.hostPageSize ? { hostPageSize: o.hostPageSize } : {}),
    caps: o.caps ?? (o.preempt ? ['postcopy-ram', 'postcopy-preempt'] : ['postcopy-ram']),
    params: {
      'max-bandwidth': 16 * MiB,
      'downtime-limit': 1,
      'max-postcopy-bandwidth': 4 * MiB,
      ...(o.params ?? {}),
    },
  });
  live.push({ src, dest });
  return { dest, src };
}

/** Starts postcopy once `syncs` dirty syncs happened (like the fixtures' generator). */
async function startPostcopyAfterSyncs(src: TestSource, syncs: number): Promise<void> {
  await until('dirty syncs', () => (src.out.query().ram?.['dirty-sync-count'] ?? 0) >= syncs);
  src.out.startPostcopy();
}

/** Pages that differ between the destination (at its first discard) and the final source RAM lie in discards. */
function checkDiscards(dest: TestDestination, src: TestSource): { discardedPages: number } {
  const before = dest.beforeDiscards;
  if (!before) throw new Error('no discard snapshot');
  const final = src.mem.views()[0] as Uint8Array;
  const discarded = new Set<number>();
  const hps = dest.hostPageSize.get('pc.ram') ?? TPS;
  for (const d of dest.discards) {
    expect(d.block).toBe('pc.ram');
    expect(d.start % hps).toBe(0);
    expect(d.length % hps).toBe(0);
    for (let a = d.start; a < d.start + d.length; a += TPS) discarded.add(a / TPS);
  }
  const ram = before.ram.get('pc.ram') as Uint8Array;
  const rec = before.received.get('pc.ram') as Uint8Array;
  for (let p = 0; p < final.length / TPS; p++) {
    const got = ((rec[p >>> 3] as number) >>> (p & 7)) & 1;
    if (discarded.has(p)) {
      // only pages never sent, or written by the guest (possibly after being sent), are discarded
      if (got && !src.dirtied.has(p)) {
        const sameHostPage = [...src.dirtied].some((q) => Math.floor(q / (hps / TPS)) === Math.floor(p / (hps / TPS)));
        expect(sameHostPage, `page ${p} discarded though sent and never dirtied`).toBe(true);
      }
    } else {
      // every page kept must already be final on the destination
      expect(got, `page ${p} neither received nor discarded`).toBe(1);
      expect(sha256(ram.subarray(p * TPS, (p + 1) * TPS)), `page ${p} stale but not discarded`).toBe(
        sha256(final.subarray(p * TPS, (p + 1) * TPS)),
      );
    }
  }
  return { discardedPages: discarded.size };
}

describe('postcopy source → test destination', () => {
  it('vanilla, 4 KiB pages: QEMU 7.2 switchover sequence, exact discards, requests served, bit-exact RAM', async () => {
    const { dest, src } = await setup({});
    const faults = faultOnDiscarded(dest, 'pc.ram', 20);
    await startPostcopyAfterSyncs(src, 2);
    const end = await src.out.done;
    expect(end, JSON.stringify(src.out.query())).toEqual({ status: 'completed' });
    await dest.finished;
    expect(dest.state).toBe('done');
    expect(dest.violations).toEqual([]);
    const channels = await faults;
    expect(channels.length).toBeGreaterThan(0);
    expect(src.states).toEqual(['setup', 'active', 'postcopy-active', 'completed']);

    // stream start and switchover, in QEMU 7.2's order
    const c = dest.commands;
    expect(c.slice(0, 3)).toEqual(['OPEN_RETURN_PATH', 'PING 1', 'POSTCOPY_ADVISE']);
    expect(dest.advise).toEqual({ summary: 4096, tps: 4096 });
    const i2 = c.indexOf('PING 2');
    expect(c.slice(3, i2).every((x) => /^DISCARD ([1-9]|1[0-2])$/.test(x))).toBe(true);
    expect(c.slice(i2)).toEqual(['PING 2', 'PACKAGED', 'POSTCOPY_LISTEN', 'PING 3', 'POSTCOPY_RUN', 'PING 4']);
    expect(dest.memSize?.blocks).toEqual([{ name: 'pc.ram', usedLength: 8 * MiB }]);

    // discards: every page not discarded was final on the destination; discarded ones were dirty
    const { discardedPages } = checkDiscards(dest, src);
    expect(discardedPages).toBeGreaterThan(0);
    // the first record after the switch names its block
    const firstPost = dest.records.find((r) => r.postcopy);
    expect(firstPost?.named).toBe(true);
    expect(dest.records.filter((r) => r.postcopy).every((r) => r.channel === 0)).toBe(true);

    expect(sha256(dest.ram.get('pc.ram') as Uint8Array)).toBe(sha256(src.mem.views()[0] as Uint8Array));
    const q = src.out.query();
    expect(q.ram?.['postcopy-requests']).toBe(dest.requestsSent.length);
    expect(q.ram?.['postcopy-bytes']).toBeGreaterThan(0);
    expect(q.downtime).toBeGreaterThanOrEqual(0);
    expect(q['x-postcopy-discard-ranges']).toBe(dest.discards.length);
    expect(dest.requestsSent[0]?.withId).toBe(true);
    expect(dest.requestsSent.slice(1).every((r) => !r.withId)).toBe(true);
    // the source VM stays stopped: the guest lives on the destination
    expect(src.vm.runState).toBe('postmigrate');
  });

  it('postcopy-preempt, 4 KiB pages: requested pages come on the second connection, which ends with EOS', async () => {
    const { dest, src } = await setup({ preempt: true });
    const faults = faultOnDiscarded(dest, 'pc.ram', 20);
    await startPostcopyAfterSyncs(src, 2);
    expect(await src.out.done).toEqual({ status: 'completed' });
    await dest.finished;
    expect(dest.violations).toEqual([]);
    const channels = await faults;
    expect(channels.filter((ch) => ch === 1).length).toBeGreaterThan(channels.length / 2);
    const onPreempt = dest.records.filter((r) => r.channel === 1);
    expect(onPreempt.length).toBeGreaterThan(0);
    expect(onPreempt.every((r) => r.postcopy)).toBe(true);
    expect(onPreempt[0]?.named).toBe(true);
    expect(dest.preemptEos).toBe(1);
    expect(src.pc.sent.requestedOnPreempt).toBe(channels.filter((ch) => ch === 1).length);
    checkDiscards(dest, src);
    expect(sha256(dest.ram.get('pc.ram') as Uint8Array)).toBe(sha256(src.mem.views()[0] as Uint8Array));
  });

  it('postcopy-preempt, 2 MiB host pages: MEM_SIZE and ADVISE carry the size, discards and pages are whole host pages', async () => {
    const { dest, src } = await setup({ preempt: true, hostPageSize: 2 * MiB, size: 16 * MiB });
    const faults = faultOnDiscarded(dest, 'pc.ram', 4);
    await startPostcopyAfterSyncs(src, 2);
    expect(await src.out.done).toEqual({ status: 'completed' });
    await dest.finished;
    // the TmpPage of each channel saw whole host pages only: never split across channels
    expect(dest.violations).toEqual([]);
    expect(dest.advise).toEqual({ summary: 2 * MiB, tps: 4096 });
    expect(dest.memSize?.blocks).toEqual([{ name: 'pc.ram', usedLength: 16 * MiB, pageSize: 2 * MiB }]);
    checkDiscards(dest, src);
    await faults;
    expect(sha256(dest.ram.get('pc.ram') as Uint8Array)).toBe(sha256(src.mem.views()[0] as Uint8Array));
  });

  it('recovery: a cut in postcopy pauses both sides; resume exchanges RECV_BITMAP and completes bit-exact', async () => {
    const { dest, src } = await setup({ preempt: true, params: { 'max-postcopy-bandwidth': 2 * MiB } });
    const faults = faultOnDiscarded(dest, 'pc.ram', 10);
    await startPostcopyAfterSyncs(src, 2);
    await until('some postcopy pages', () => dest.records.filter((r) => r.postcopy).length > 50);
    dest.cut();
    await until('postcopy-paused', () => src.out.state.status === 'postcopy-paused');
    await dest.waitPaused();
    expect(dest.state).toBe('paused');
    // cancel is refused in postcopy: the guest runs on the destination
    src.out.cancel();
    expect(src.out.state.status).toBe('postcopy-paused');
    const uri = await dest.recover();
    src.out.resume((signal) => connect(uri, { signal }));
    expect(await src.out.done).toEqual({ status: 'completed' });
    await dest.finished;
    await faults;
    expect(dest.violations).toEqual([]);
    expect(dest.commands.filter((c) => c === 'RECV_BITMAP').length).toBe(1);
    expect(dest.commands).toContain('POSTCOPY_RESUME');
    expect(src.states).toEqual([
      'setup',
      'active',
      'postcopy-active',
      'postcopy-paused',
      'postcopy-recover',
      'postcopy-active',
      'completed',
    ]);
    expect(src.out.query()['x-postcopy-recoveries']).toBe(1);
    expect(sha256(dest.ram.get('pc.ram') as Uint8Array)).toBe(sha256(src.mem.views()[0] as Uint8Array));
  });

  it('migrate-pause drops the connections in postcopy-active; a resume completes bit-exact', async () => {
    const { dest, src } = await setup({ params: { 'max-postcopy-bandwidth': 2 * MiB } });
    expect(() => src.out.pause()).toThrow(/only supported in postcopy-active/);
    await startPostcopyAfterSyncs(src, 2);
    await until('postcopy pages', () => dest.records.filter((r) => r.postcopy).length > 20);
    src.out.pause();
    await until('postcopy-paused', () => src.out.state.status === 'postcopy-paused');
    await dest.waitPaused();
    const uri = await dest.recover();
    src.out.resume((signal) => connect(uri, { signal }));
    expect(() => src.out.resume((signal) => connect(uri, { signal }))).toThrow(/no paused migration/);
    expect(await src.out.done).toEqual({ status: 'completed' });
    await dest.finished;
    expect(dest.violations).toEqual([]);
    expect(sha256(dest.ram.get('pc.ram') as Uint8Array)).toBe(sha256(src.mem.views()[0] as Uint8Array));
  });

  it('the postcopy policy switches by itself after N passes (x-postcopy-after-iterations)', async () => {
    const { dest, src } = await setup({ params: { 'x-postcopy-after-iterations': 2 } });
    expect(await src.out.done).toEqual({ status: 'completed' });
    await dest.finished;
    expect(src.states).toContain('postcopy-active');
    expect(String(src.out.query()['x-postcopy-trigger'])).toMatch(/x-postcopy-after-iterations=2: 2 passes/);
    expect(sha256(dest.ram.get('pc.ram') as Uint8Array)).toBe(sha256(src.mem.views()[0] as Uint8Array));
  });

  it('a misaligned page request fails the migration with a typed error; the source VM is not restarted', async () => {
    const { dest, src } = await setup({ params: { 'max-postcopy-bandwidth': 1 * MiB } });
    dest.onListen = () => {
      void dest.request('pc.ram', 0x800, TPS);
    };
    src.out.startPostcopy();
    const end = await src.out.done;
    expect(end.status).toBe('failed');
    expect(end.status === 'failed' && end.error).toMatch(/^E_BAD_PAGE_REQUEST: .*0x800/);
    expect(src.vm.runState).not.toBe('running');
  });

  it('return-path alone (precopy): OPEN_RETURN_PATH + PING 1, completion waits for SHUT', async () => {
    const { dest, src } = await setup({ caps: ['return-path'], params: { 'downtime-limit': 300 } });
    expect(await src.out.done).toEqual({ status: 'completed' });
    await dest.finished;
    expect(dest.commands).toEqual(['OPEN_RETURN_PATH', 'PING 1']);
    expect(sha256(dest.ram.get('pc.ram') as Uint8Array)).toBe(sha256(src.mem.views()[0] as Uint8Array));
  });
});
