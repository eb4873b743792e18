/**
 * Live precopy migration between two `e2k-migrate vm` processes over real sockets: every
 * workload pattern, unix: and tcp:, XBZRLE on and off, kernel and software dirty tracking,
 * QMP events, and the destination guest verified (workload invariant, still running).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCli,
  checkWorkload,
  eventNames,
  expectRunning,
  FINAL,
  listenTcp,
  type QueryMigrate,
  queryMigrate,
  setCaps,
  VmSet,
  waitMigrate,
  waitSteps,
} from './helpers.js';

beforeAll(() => buildCli(), 240_000);

let vms: VmSet;
afterEach(async () => {
  await vms?.close();
});

const MEM = ['--mem', '32M', '--vcpus', '2'];

interface Case {
  name: string;
  workload: string[];
  transport: 'unix' | 'tcp';
  tracking?: string;
}

const cases: Case[] = [
  { name: 'increment', workload: ['--workload', 'increment'], transport: 'unix' },
  { name: 'random', workload: ['--workload', 'random', '--seed', '7'], transport: 'tcp' },
  {
    name: 'hotset (software dirty bitmap)',
    workload: ['--workload', 'hotset', '--working-set', '32'],
    transport: 'unix',
    tracking: 'software',
  },
  { name: 'rate', workload: ['--workload', 'rate', '--rate', '4000'], transport: 'tcp' },
];

describe('precopy between two VM processes', () => {
  it.each(cases)('migrates the $name workload over $transport', async (c) => {
    vms = new VmSet();
    const dst = await vms.start('dst', [...MEM, ...c.workload, '--incoming', 'defer']);
    const src = await vms.start('src', [
      ...MEM,
      ...c.workload,
      ...(c.tracking ? ['--dirty-tracking', c.tracking] : []),
    ]);
    await setCaps(dst, ['events']);
    await setCaps(src, ['events']);
    let uri: string;
    if (c.transport === 'tcp') uri = await listenTcp(dst);
    else {
      uri = `unix:${vms.dir}/mig.sock`;
      await dst.qmp.execute('migrate-incoming', { uri });
    }
    expect((await queryMigrate(dst)).status).toBe('setup');
    await waitSteps(src, 100_000); // let the guest dirty memory
    await src.qmp.execute('migrate', { uri });
    const q = await waitMigrate(src);
    expect(q['error-desc']).toBeUndefined();
    expect(q.status).toBe('completed');
    const ram = q.ram as Record<string, number>;
    expect(ram.total).toBe(32 << 20);
    expect(ram.remaining).toBe(0);
    expect(ram['page-size']).toBe(4096);
    expect(ram.normal + ram.duplicate).toBeGreaterThanOrEqual(8192); // every page once at least
    expect(ram['normal-bytes']).toBe(ram.normal * 4096);
    expect(ram.transferred).toBeGreaterThan(ram.normal * 4096);
    expect(ram['dirty-sync-count']).toBeGreaterThanOrEqual(2);
    expect(ram['precopy-bytes'] + ram['downtime-bytes']).toBe(ram.transferred);
    expect(q.downtime).toBeGreaterThanOrEqual(0);
    expect(q['total-time']).toBeGreaterThanOrEqual(q['setup-time'] as number);
    expect(q['x-vcpu-stop-time']).toBeTypeOf('number');

    const dq = await waitMigrate(dst);
    expect(dq.status).toBe('completed');
    const run = await expectRunning(dst);
    expect(run.status).toBe('running');
    expect(run.after).toBeGreaterThan(run.before);
    const check = await checkWorkload(dst);
    expect(check.error).toBeUndefined();
    expect(check.ok).toBe(true);
    // the guest continued from where the source stopped: its vCPUs did not restart from 0
    const srcSteps = (await src.qmp.execute('x-query-vcpus')) as { steps: number }[];
    const dstSteps = (await dst.qmp.execute('x-query-vcpus')) as { steps: number }[];
    for (const [i, d] of dstSteps.entries()) expect(d.steps).toBeGreaterThanOrEqual(srcSteps[i]?.steps as number);
    // the source stays paused after a successful migration, as QEMU's does
    expect(((await src.qmp.execute('query-status')) as { status: string }).status).toBe('postmigrate');

    expect(eventNames(src.qmp.events, 'MIGRATION')).toEqual(['setup', 'active', 'completed']);
    expect(src.qmp.events.filter((e) => e.event === 'STOP')).toHaveLength(1);
    expect(src.qmp.events.some((e) => e.event === 'MIGRATION_PASS')).toBe(true);
    expect(eventNames(dst.qmp.events, 'MIGRATION')).toEqual(['setup', 'active', 'completed']);
    expect(dst.qmp.events.filter((e) => e.event === 'RESUME')).toHaveLength(1);

    const { exit, summary } = await vms.quit(dst);
    expect(exit.code).toBe(0);
    expect((summary.workload as { ok: boolean }).ok).toBe(true);
  });

  it('uses XBZRLE for pages dirtied again after the first pass (QEMU 7.2 rules)', async () => {
    vms = new VmSet();
    const wl = ['--workload', 'hotset', '--working-set', '64'];
    const dst = await vms.start('dst', [...MEM, ...wl, '--incoming', 'defer']);
    const src = await vms.start('src', [...MEM, ...wl]);
    const uri = await listenTcp(dst);
    await setCaps(src, ['xbzrle']);
    await waitSteps(src, 100_000);
    // At 1 MiB/s the first pass (~1 MB: code, mailboxes, the hot set, zero records) outlasts
    // QEMU's first 100 ms bandwidth measurement, and a 1 ms downtime limit cannot be met while
    // the hot set is dirty: iterate with XBZRLE...
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 1 << 20, 'downtime-limit': 1 });
    await src.qmp.execute('migrate', { uri });
    // (a starved guest may dirty nothing between two syncs, which completes the migration: fine)
    await waitMigrate(src, (q) => (q['xbzrle-cache']?.pages ?? 0) > 200 || FINAL.includes(q.status ?? ''));
    // ...then allow the switchover
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 64 << 20, 'downtime-limit': 300 });
    const q = await waitMigrate(src);
    expect(q.status).toBe('completed');
    const x = q['xbzrle-cache'] as Record<string, number>;
    expect(x['cache-size']).toBe(64 << 20);
    expect(x.pages).toBeGreaterThan(0);
    expect(x['cache-miss']).toBeGreaterThan(0);
    // only byte 0 of a hot page changes per pass: each delta is a few bytes, not a page
    expect(x.bytes).toBeLessThan(x.pages * 64);
    await waitMigrate(dst);
    expect((await checkWorkload(dst)).ok).toBe(true);
    expect((await expectRunning(dst)).status).toBe('running');
  });

  it('keeps iterating under a downtime limit it cannot meet, and reports expected-downtime', async () => {
    vms = new VmSet();
    const wl = ['--workload', 'increment'];
    const dst = await vms.start('dst', [...MEM, ...wl, '--incoming', 'defer']);
    const src = await vms.start('src', [...MEM, ...wl]);
    const uri = await listenTcp(dst);
    await waitSteps(src, 100_000);
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 16 << 20 });
    await src.qmp.execute('migrate', { uri });
    // increment dirties all 32 MiB continuously; 16 MiB/s × 300 ms never fits: still active
    const q: QueryMigrate = await waitMigrate(src, (x) => (x.ram?.['dirty-sync-count'] ?? 0) >= 3);
    expect(q.status).toBe('active');
    expect(q['expected-downtime']).toBeGreaterThan(0);
    const mbps = q.ram?.mbps as number;
    expect(mbps).toBeGreaterThan(0);
    expect(mbps).toBeLessThan(16 * 8.4 * 1.25); // max-bandwidth is honoured (16 MiB/s ≈ 134 Mbps)
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
    expect((await waitMigrate(src)).status).toBe('completed');
    await waitMigrate(dst);
    expect((await checkWorkload(dst)).ok).toBe(true);
  });
});
