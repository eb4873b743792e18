import type { VmProcess } from '@e2k-migrate/cli';
import { needs, startTcpProxy } from '@e2k-migrate/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, listenTcp, queryMigrate, setCaps, VmSet, waitMigrate, waitSteps } from '../precopy/helpers.js';
import { hugetlbAvailable, uffdAvailable } from './support.js';

beforeAll(() => buildCli(), 240_000);

const uffd = uffdAvailable();
const huge = hugetlbAvailable();

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
  { name: '4 KiB pages', mem: '16M', kind: 'anonymous', preempt: false, cooperative: false, steps: 40_000_000 },
  {
    name: '4 KiB pages, postcopy-preempt',
    mem: '16M',
    kind: 'anonymous',
    preempt: true,
    cooperative: false,
    steps: 40_000_000,
  },
  { name: '2 MiB hugetlb pages', mem: '16M', kind: 'hugetlb', preempt: false, cooperative: false, steps: 40_000_000 },
  {
    name: 'cooperative destination (E2K_NATIVE=0)',
    mem: '16M',
    kind: 'anonymous',
    preempt: false,
    cooperative: true,
    steps: 40_000_000,
  },
];

/**
 * E2K → E2K postcopy (both sides speak QEMU 7.2's protocol), checked the strongest way the
 * deterministic guest allows: the destination's vCPUs start at POSTCOPY_RUN while most of RAM is
 * still on the source, fault (userfaultfd, or the cooperative fallback) and are served; stopped at
 * step N, the destination equals a VM that ran N steps without migrating (RAM, registers).
 */
describe('E2K → E2K postcopy: bit-exact against an unmigrated run', () => {
  for (const c of cases) {
    const ok =
      (c.cooperative || needs('uffd', uffd.ok, uffd.reason)) &&
      (c.kind !== 'hugetlb' || needs('hugetlb', huge.ok, huge.reason));
    it.runIf(ok)(c.name, async () => {
      vms = new VmSet();
      const args = [
        '--mem',
        c.mem,
        '--vcpus',
        '2',
        '--workload',
        'random',
        '--seed',
        '11',
        '--stop-at',
        String(c.steps),
      ];
      const kind = ['--ram-kind', c.kind];
      const ref = await vms.start('ref', args);
      const dst = c.cooperative
        ? await startWithEnv(vms, 'dst', [...args, ...kind, '--incoming', 'defer'], { E2K_NATIVE: '0' })
        : await vms.start('dst', [...args, ...kind, '--incoming', 'defer']);
      const src = await vms.start('src', [...args, ...kind]);
      const caps = ['postcopy-ram', ...(c.preempt ? ['postcopy-preempt'] : [])];
      await setCaps(dst, [...caps, 'postcopy-blocktime']);
      await setCaps(src, caps);
      const uri = await listenTcp(dst);
      await waitSteps(src, 1_000_000);
      await src.qmp.execute('migrate-set-parameters', {
        'max-bandwidth': 64 << 20,
        'downtime-limit': 1,
        'max-postcopy-bandwidth': 16 << 20,
      });
      await src.qmp.execute('migrate', { uri });
      await waitMigrate(src, (q) => (q.ram?.['dirty-sync-count'] ?? 0) >= 2 || q.status === 'failed');
      await src.qmp.execute('migrate-start-postcopy');
      const during = await waitMigrate(dst, (q) => q.status === 'postcopy-active' || q.status === 'failed');
      expect(during.status).toBe('postcopy-active');
      const q = await waitMigrate(src, undefined, 90_000);
      expect(q.status).toBe('completed');
      const d = await waitMigrate(dst);
      expect(d.status).toBe('completed');
      expect(d['x-postcopy-backend']).toBe(c.cooperative ? 'cooperative' : 'uffd');
      expect(d['x-postcopy-faults'] as number).toBeGreaterThan(0);
      expect(d['x-postcopy-requests'] as number).toBeGreaterThan(0);
      expect(q.ram?.['postcopy-requests']).toBe(d['x-postcopy-requests']);
      expect(d['postcopy-vcpu-blocktime'] as number[]).toHaveLength(2);
      expect((d['postcopy-latency-dist'] as number[]).reduce((a, b) => a + b, 0)).toBe(d['x-postcopy-faults']);
      expect((await queryMigrate(dst))['x-postcopy-pages']).toMatchObject({ alreadyPlaced: 0 });

      await Promise.all([waitAllAt(dst, c.steps, 2), waitAllAt(ref, c.steps, 2)]);
      expect(await dst.qmp.execute('x-query-registers')).toEqual(await ref.qmp.execute('x-query-registers'));
      expect(await dst.qmp.execute('x-query-ram-hash')).toEqual(await ref.qmp.execute('x-query-ram-hash'));
    });
  }
});

describe.runIf(needs('uffd', uffd.ok, uffd.reason))('E2K → E2K postcopy recovery', () => {
  it('a cut during postcopy pauses both sides; migrate-recover + migrate resume complete it bit-exact', async () => {
    vms = new VmSet();
    const steps = 40_000_000;
    const args = ['--mem', '16M', '--vcpus', '2', '--workload', 'random', '--seed', '7', '--stop-at', String(steps)];
    const ref = await vms.start('ref', args);
    const dst = await vms.start('dst', [...args, '--caps', 'postcopy-ram', '--incoming', 'defer']);
    const src = await vms.start('src', args);
    await setCaps(src, ['postcopy-ram']);
    const direct = await listenTcp(dst);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(direct.split(':')[2]) });
    try {
      await waitSteps(src, 1_000_000);
      await src.qmp.execute('migrate-set-parameters', {
        'max-bandwidth': 64 << 20,
        'downtime-limit': 1,
        'max-postcopy-bandwidth': 8 << 20,
      });
      await src.qmp.execute('migrate', { uri: proxy.uri });
      await waitMigrate(src, (q) => (q.ram?.['dirty-sync-count'] ?? 0) >= 2 || q.status === 'failed');
      await src.qmp.execute('migrate-start-postcopy');
      await waitMigrate(dst, (q) => (q['x-postcopy-requests'] as number) > 0 || q.status === 'failed');
      proxy.cutAfter(proxy.forwarded + (1 << 20));
      const paused = await waitMigrate(dst, (q) => q.status === 'postcopy-paused' || q.status === 'failed');
      expect(paused.status).toBe('postcopy-paused');
      expect((await waitMigrate(src, (q) => q.status === 'postcopy-paused' || q.status === 'failed')).status).toBe(
        'postcopy-paused',
      );
      await dst.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' });
      const port = (await queryMigrate(dst))['socket-address']?.[0]?.port;
      await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${port}`, resume: true });
      expect((await waitMigrate(src, undefined, 90_000)).status).toBe('completed');
      const d = await waitMigrate(dst);
      expect(d.status).toBe('completed');
      expect(d['x-postcopy-pages']).toMatchObject({ duplicates: 0, alreadyPlaced: 0 });
      await Promise.all([waitAllAt(dst, steps, 2), waitAllAt(ref, steps, 2)]);
      expect(await dst.qmp.execute('x-query-registers')).toEqual(await ref.qmp.execute('x-query-registers'));
      expect(await dst.qmp.execute('x-query-ram-hash')).toEqual(await ref.qmp.execute('x-query-ram-hash'));
    } finally {
      await proxy.close();
    }
  });
});

async function startWithEnv(set: VmSet, name: string, args: string[], env: Record<string, string>): Promise<VmProcess> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await set.start(name, args);
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}
