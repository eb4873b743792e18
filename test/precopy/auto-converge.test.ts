/**
 * auto-converge: the increment workload rewrites all of RAM faster than any paced bandwidth can
 * send it, so precopy cannot converge — until the vCPUs are throttled (QEMU 7.2 rules: two
 * high-dirty periods, then cpu-throttle-initial, then +cpu-throttle-increment up to
 * max-cpu-throttle).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, checkWorkload, expectRunning, FINAL, setCaps, VmSet, waitMigrate, waitSteps } from './helpers.js';

beforeAll(() => buildCli(), 240_000);

let vms: VmSet;
afterEach(async () => {
  await vms?.close();
});

describe('auto-converge', () => {
  it('throttles the vCPUs of a guest that dirties faster than the bandwidth until it converges', async () => {
    vms = new VmSet();
    const args = ['--mem', '32M', '--vcpus', '1', '--workload', 'increment'];
    const uri = `unix:${vms.dir}/mig.sock`;
    const dst = await vms.start('dst', [...args, '--incoming', uri]);
    const src = await vms.start('src', args);
    await waitSteps(src, 1_000_000);
    await setCaps(src, ['auto-converge', 'events']);
    await src.qmp.execute('migrate-set-parameters', {
      'max-bandwidth': 256 << 20,
      'downtime-limit': 20,
      'cpu-throttle-initial': 90,
      'cpu-throttle-increment': 9,
    });
    await src.qmp.execute('migrate', { uri });
    const throttled = await waitMigrate(
      src,
      (q) => (q['cpu-throttle-percentage'] ?? 0) > 0 || FINAL.includes(q.status ?? ''),
    );
    expect(throttled.status).toBe('active');
    expect(throttled['cpu-throttle-percentage']).toBe(90);
    const q = await waitMigrate(src, undefined, 90_000);
    expect(q.status).toBe('completed');
    expect(q.ram?.['dirty-sync-count']).toBeGreaterThan(4);
    // throttling stops with the migration
    expect(q['cpu-throttle-percentage']).toBeUndefined();
    expect((await waitMigrate(dst)).status).toBe('completed');
    expect((await checkWorkload(dst)).ok).toBe(true);
    const run = await expectRunning(dst);
    expect(run.status).toBe('running');
    expect(run.after).toBeGreaterThan(run.before);
  });
});
