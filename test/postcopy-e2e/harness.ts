/**
 * Shared pieces of the E2K ↔ E2K postcopy end-to-end suites: every VM is a separate
 * `e2k-migrate vm` process driven over QMP (as a user would), the migration runs over real TCP
 * (through test/support's proxy where a test acts on the stream), and the result is checked
 * against an unmigrated reference VM stopped at the same step: RAM sha256 and every register.
 */
import type { VmProcess } from '@e2k-migrate/cli';
import { encodeCommand } from '@e2k-migrate/migration';
import type { ShapedPipe, TcpProxy } from '@e2k-migrate/test-support';
import { expect } from 'vitest';
import { type QueryMigrate, queryMigrate, setCaps, type VmSet, waitMigrate, waitSteps } from '../precopy/helpers.js';

export const MiB = 1 << 20;

/** The guest every suite runs: seeded random stores over all of RAM on 2 vCPUs. */
export interface Guest {
  mem: string;
  vcpus: number;
  workload: string[];
  /** Every VM stops at this many executed bundles per vCPU (`--stop-at`). */
  steps: number;
}

export const RANDOM_GUEST: Guest = {
  mem: '16M',
  vcpus: 2,
  workload: ['--workload', 'random', '--seed', '11'],
  steps: 30_000_000,
};

export function guestArgs(g: Guest): string[] {
  return ['--mem', g.mem, '--vcpus', String(g.vcpus), ...g.workload, '--stop-at', String(g.steps)];
}

export interface PairOptions {
  /** Guest RAM backing of source and destination (the reference runs on anonymous memory). */
  kind: 'anonymous' | 'hugetlb';
  preempt: boolean;
}

export interface Pair {
  src: VmProcess;
  dst: VmProcess;
  /** Where the destination listens (`tcp:127.0.0.1:PORT`). */
  uri: string;
  port: number;
}

/** A destination waiting on tcp (postcopy-ram [+ preempt], postcopy-blocktime) and a running source. */
export async function startPair(vms: VmSet, g: Guest, o: PairOptions): Promise<Pair> {
  const kind = ['--ram-kind', o.kind];
  const [dst, src] = await Promise.all([
    vms.start('dst', [...guestArgs(g), ...kind, '--incoming', 'defer']),
    vms.start('src', [...guestArgs(g), ...kind]),
  ]);
  const caps = ['postcopy-ram', ...(o.preempt ? ['postcopy-preempt'] : [])];
  await Promise.all([setCaps(dst, [...caps, 'postcopy-blocktime', 'events']), setCaps(src, [...caps, 'events'])]);
  await dst.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
  const port = Number((await queryMigrate(dst))['socket-address']?.[0]?.port);
  return { src, dst, uri: `tcp:127.0.0.1:${port}`, port };
}

/** The pacing of every postcopy case: precopy at 64 MiB/s, postcopy background at `postcopyBw`. */
export async function setPostcopyParams(src: VmProcess, extra: Record<string, number> = {}): Promise<void> {
  await src.qmp.execute('migrate-set-parameters', {
    'max-bandwidth': 64 * MiB,
    'downtime-limit': 1,
    'max-postcopy-bandwidth': 16 * MiB,
    ...extra,
  });
}

/** Steps every vCPU has executed. */
export async function vcpuSteps(vm: VmProcess): Promise<number[]> {
  return ((await vm.qmp.execute('x-query-vcpus')) as { steps: number }[]).map((v) => v.steps);
}

/** Resolves once every vCPU of `vm` is stopped at exactly step `n`. */
export async function waitAllAt(vm: VmProcess, n: number, vcpus: number, timeoutMs = 120_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = (await vm.qmp.execute('x-query-vcpus')) as { steps: number; state: string }[];
    if (v.length === vcpus && v.every((x) => x.steps === n && x.state === 'stopped')) return;
    if (performance.now() > deadline) throw new Error(`${vm.name} did not reach step ${n}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The strongest check the deterministic guest allows: `dst`, migrated in the middle of its run,
 * stopped at step N equals `ref`, which ran N steps without migrating — every register of every
 * vCPU and the sha256 of all of RAM.
 */
export async function expectSameAsReference(dst: VmProcess, ref: VmProcess, g: Guest): Promise<void> {
  await Promise.all([waitAllAt(dst, g.steps, g.vcpus), waitAllAt(ref, g.steps, g.vcpus)]);
  const [dr, rr] = await Promise.all([dst.qmp.execute('x-query-registers'), ref.qmp.execute('x-query-registers')]);
  expect(dr).toEqual(rr);
  const [dh, rh] = await Promise.all([dst.qmp.execute('x-query-ram-hash'), ref.qmp.execute('x-query-ram-hash')]);
  expect(dh).toEqual(rh);
}

/** Polls query-migrate until the status is one of `want` (or a final one); returns the reply. */
export async function waitStatus(vm: VmProcess, want: string[], timeoutMs = 60_000): Promise<QueryMigrate> {
  return waitMigrate(vm, (q) => want.includes(q.status ?? '') || q.status === 'failed', timeoutMs);
}

/** Source and destination both `completed`; returns both query-migrate replies. */
export async function waitCompleted(src: VmProcess, dst: VmProcess): Promise<{ s: QueryMigrate; d: QueryMigrate }> {
  const s = await waitMigrate(src, undefined, 90_000);
  expect(s.status, JSON.stringify(s)).toBe('completed');
  const d = await waitMigrate(dst, undefined, 30_000);
  expect(d.status, JSON.stringify(d)).toBe('completed');
  return { s, d };
}

/** Waits until the source has run `steps` bundles, then starts the migration to `uri`. */
export async function startMigration(src: VmProcess, uri: string, steps = 1_000_000): Promise<void> {
  await waitSteps(src, steps);
  await src.qmp.execute('migrate', { uri });
}

/**
 * The bytes that start the postcopy switchover on the main channel: PING(2) and the PACKAGED
 * command header up to its be32 length (spec §9.2 steps 6–7). They appear once per migration;
 * the package ends `length` bytes after that length field.
 */
export const SWITCHOVER_MARK: Uint8Array = Buffer.concat([
  encodeCommand({ cmd: 'PING', value: 2 }).written(),
  encodeCommand({ cmd: 'PACKAGED', length: 0 }).written().subarray(0, 5),
]);

/**
 * Arms a cut `delta` bytes after the end of the postcopy package on `pipe` (the main channel):
 * the destination has then processed POSTCOPY_RUN (it runs the guest) and everything after is the
 * postcopy phase. Resolves with the package end and the cut offset (both absolute stream offsets).
 */
export function cutAfterPackage(
  pipe: Pick<ShapedPipe, 'onMatch' | 'cutAfter'>,
  delta: number,
): Promise<{ packageEnd: number; cutAt: number }> {
  return new Promise((resolve) => {
    pipe.onMatch(SWITCHOVER_MARK, 4, (end, extra) => {
      const packageEnd = end + extra.readUInt32BE(0);
      pipe.cutAfter(packageEnd + delta);
      resolve({ packageEnd, cutAt: packageEnd + delta });
    });
  });
}

/**
 * The operator's recovery of a paused postcopy migration, through QMP: `migrate-recover` on the
 * destination (a fresh port), then `migrate {"uri", "resume": true}` on the source — through
 * `via` (a proxy in front of the recovery port) when given.
 */
export async function recover(
  src: VmProcess,
  dst: VmProcess,
  via?: (port: number) => Promise<TcpProxy>,
): Promise<TcpProxy | undefined> {
  await dst.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' });
  const port = Number((await queryMigrate(dst))['socket-address']?.[0]?.port);
  const proxy = via ? await via(port) : undefined;
  await src.qmp.execute('migrate', { uri: proxy?.uri ?? `tcp:127.0.0.1:${port}`, resume: true });
  return proxy;
}

/** The statuses of the MIGRATION events `vm` emitted so far (capability `events`). */
export function migrationEvents(vm: VmProcess): string[] {
  return vm.qmp.events.filter((e) => e.event === 'MIGRATION').map((e) => String(e.data?.status));
}

/** Resolves once `vm` entered `status` `count` times (MIGRATION events), or fails on `failed`. */
export async function waitEntered(vm: VmProcess, status: string, count: number, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const seen = migrationEvents(vm);
    if (seen.filter((s) => s === status).length >= count) return;
    if (seen.includes('failed') || seen.includes('completed') || performance.now() > deadline) {
      throw new Error(`${vm.name}: expected "${status}" ×${count}, MIGRATION events: ${seen.join(' → ')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Both sides entered `postcopy-paused` for the `nth` time (a cut during postcopy loses nothing;
 * the reason is reported); returns the destination's query-migrate.
 */
export async function expectBothPaused(src: VmProcess, dst: VmProcess, nth = 1): Promise<QueryMigrate> {
  await Promise.all([waitEntered(dst, 'postcopy-paused', nth), waitEntered(src, 'postcopy-paused', nth)]);
  const d = await queryMigrate(dst);
  expect(d.status, JSON.stringify(d)).toBe('postcopy-paused');
  expect(d['x-pause-reason']).toMatch(/\S/);
  expect((await queryMigrate(src)).status).toBe('postcopy-paused');
  return d;
}
