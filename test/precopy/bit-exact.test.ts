/**
 * The strongest check the deterministic guest allows: a VM migrated live in the middle of its
 * run and stopped at step N on the destination has exactly the RAM and CPU state of a VM that ran
 * N steps without migrating (same sha256 of RAM, same e2k-cpu sections, same registers).
 */

import type { VmProcess } from '@e2k-migrate/cli';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, FINAL, listenTcp, setCaps, VmSet, waitMigrate, waitSteps } from './helpers.js';

beforeAll(() => buildCli(), 240_000);

let vms: VmSet;
afterEach(async () => {
  await vms?.close();
});

async function waitAllAt(vm: VmProcess, n: number, vcpus: number): Promise<void> {
  const deadline = performance.now() + 120_000;
  for (;;) {
    const v = (await vm.qmp.execute('x-query-vcpus')) as { steps: number; state: string }[];
    if (v.length === vcpus && v.every((x) => x.steps === n && x.state === 'stopped')) return;
    if (performance.now() > deadline) throw new Error(`${vm.name} did not reach step ${n}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const cases = [
  { name: 'random over all RAM', workload: ['--workload', 'random', '--seed', '11'], steps: 30_000_000, xbzrle: false },
  {
    name: 'random over 64 pages with XBZRLE iterations',
    workload: ['--workload', 'random', '--seed', '5', '--working-set', '64'],
    steps: 60_000_000,
    xbzrle: true,
  },
];

describe('bit-exact against an unmigrated run', () => {
  it.each(cases)('$name', async (c) => {
    vms = new VmSet();
    const args = ['--mem', '32M', '--vcpus', '2', ...c.workload, '--stop-at', String(c.steps)];
    const ref = await vms.start('ref', args);
    const dst = await vms.start('dst', [...args, '--incoming', 'defer']);
    const src = await vms.start('src', args);
    const uri = await listenTcp(dst);
    await waitSteps(src, 1_000_000);
    if (c.xbzrle) {
      await setCaps(src, ['xbzrle']);
      await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 1 << 20, 'downtime-limit': 1 });
    }
    await src.qmp.execute('migrate', { uri });
    if (c.xbzrle) {
      await waitMigrate(src, (q) => (q['xbzrle-cache']?.pages ?? 0) > 100 || FINAL.includes(q.status ?? ''));
      await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 0, 'downtime-limit': 300 });
    }
    const q = await waitMigrate(src);
    expect(q.status).toBe('completed');
    if (c.xbzrle) expect(q['xbzrle-cache']?.pages).toBeGreaterThan(0);
    // the migration happened in the middle of the run, not after it
    const atMigration = (await src.qmp.execute('x-query-vcpus')) as { steps: number }[];
    for (const v of atMigration) expect(v.steps).toBeLessThan(c.steps);
    expect((await waitMigrate(dst)).status).toBe('completed');

    await Promise.all([waitAllAt(dst, c.steps, 2), waitAllAt(ref, c.steps, 2)]);
    expect(await dst.qmp.execute('x-query-registers')).toEqual(await ref.qmp.execute('x-query-registers'));
    expect(await dst.qmp.execute('x-query-ram-hash')).toEqual(await ref.qmp.execute('x-query-ram-hash'));
    const [d, r] = await Promise.all([vms.quit(dst), vms.quit(ref)]);
    expect(d.summary.ramSha256).toBe(r.summary.ramSha256);
    expect(d.summary.vcpus).toEqual(r.summary.vcpus);
    expect(d.summary.serialBytes).toBe(r.summary.serialBytes);
    expect((d.summary.workload as { ok: boolean }).ok).toBe(true);
  });
});
