import { readFileSync } from 'node:fs';
import { needs } from '@e2k-migrate/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { e2k } from '../../tools/src/qemu/index.js';
import {
  buildCli,
  checkWorkload,
  expectRunning,
  listenTcp,
  queryMigrate,
  setCaps,
  VmSet,
  waitMigrate,
  waitSteps,
} from '../precopy/helpers.js';
import { faultOnDiscarded, MiB, sha256 } from './helpers.js';
import { TestDestination } from './test-destination.js';

/**
 * The E2K VM (`e2k-migrate vm`) as a postcopy source, driven over QMP like QEMU: migrate with
 * postcopy-ram, migrate-start-postcopy, page requests, completion with the VM left stopped; the
 * destination's RAM equals the source's bit for bit. Then E2K → E2K.
 */
beforeAll(() => buildCli(), 240_000);

let vms: VmSet | undefined;
let dest: TestDestination | undefined;
afterEach(async () => {
  await vms?.close();
  await dest?.close();
  vms = undefined;
  dest = undefined;
});

function freeHugePages(): number {
  const m = /^HugePages_Free:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : 0;
}

describe('E2K VM as the postcopy source', () => {
  for (const huge of [false, true]) {
    const run = !huge || needs('hugetlb', freeHugePages() >= 8, `${freeHugePages()} free 2 MiB huge pages, need 8`);
    it.runIf(run)(
      `${huge ? '2 MiB hugetlb RAM, postcopy-preempt' : '4 KiB pages'}: QMP migrate-start-postcopy, requests served, bit-exact RAM`,
      async () => {
        vms = new VmSet();
        dest = await TestDestination.start({ preempt: huge });
        const src = await vms.start('src', [
          ...['--mem', '16M', '--vcpus', '2', '--workload', 'increment'],
          ...(huge ? ['--ram-kind', 'hugetlb'] : []),
        ]);
        await setCaps(src, huge ? ['postcopy-ram', 'postcopy-preempt', 'events'] : ['postcopy-ram', 'events']);
        // switch after one pass whatever the guest dirties (QMP migrate-start-postcopy could come
        // too late: a guest that has not started dirtying yet lets precopy converge at once)
        await src.qmp.execute('migrate-set-parameters', {
          'max-bandwidth': 32 * MiB,
          'downtime-limit': 1,
          'max-postcopy-bandwidth': 8 * MiB,
          'x-postcopy-after-iterations': 1,
        });
        const faults = faultOnDiscarded(dest, 'e2k.ram', 16);
        await waitSteps(src, 200_000);
        await src.qmp.execute('migrate', { uri: dest.uri });
        await src.qmp.execute('migrate-start-postcopy');
        const q = await waitMigrate(src);
        expect(q.status, `${JSON.stringify(q)} ${dest.state} ${dest.error?.stack} ${dest.commands}`).toBe('completed');
        await dest.finished;
        expect(dest.violations).toEqual([]);
        expect((await faults).length).toBeGreaterThan(0);
        expect(dest.commands.slice(0, 3)).toEqual(['OPEN_RETURN_PATH', 'PING 1', 'POSTCOPY_ADVISE']);
        expect(dest.advise?.summary).toBe(huge ? 2 * MiB : 4096);
        expect(dest.commands.slice(dest.commands.indexOf('PING 2'))).toEqual([
          'PING 2',
          'PACKAGED',
          'POSTCOPY_LISTEN',
          'PING 3',
          'POSTCOPY_RUN',
          'PING 4',
        ]);
        expect(q.ram?.['postcopy-requests']).toBe(dest.requestsSent.length);
        expect(typeof q.downtime).toBe('number');
        // the source VM stays stopped after the switch: its RAM is what the destination must hold
        expect(((await src.qmp.execute('query-status')) as { status: string }).status).toBe('postmigrate');
        const { sha256: srcRam } = (await src.qmp.execute('x-query-ram-hash')) as { sha256: string };
        expect(sha256(dest.ram.get('e2k.ram') as Uint8Array)).toBe(srcRam);
      },
    );
  }
});

describe('E2K → E2K postcopy (both sides e2k-migrate)', () => {
  it('the destination runs the guest at RUN, faults, is served; both complete; the workload invariant holds', async () => {
    vms = new VmSet();
    const MEM = ['--mem', '32M', '--vcpus', '2', '--workload', 'increment'];
    const dst = await vms.start('dst', [...MEM, '--incoming', 'defer']);
    const src = await vms.start('src', MEM);
    await setCaps(dst, ['postcopy-ram', 'postcopy-preempt']);
    await setCaps(src, ['postcopy-ram', 'postcopy-preempt']);
    const uri = await listenTcp(dst);
    await src.qmp.execute('migrate-set-parameters', {
      'max-bandwidth': 64 * MiB,
      'downtime-limit': 1,
      'max-postcopy-bandwidth': 16 * MiB,
      'x-postcopy-after-iterations': 1,
    });
    await waitSteps(src, 200_000);
    await src.qmp.execute('migrate', { uri });
    const q = await waitMigrate(src);
    expect(q.status, JSON.stringify(q)).toBe('completed');
    const d = await waitMigrate(dst);
    expect(d.status, JSON.stringify(d)).toBe('completed');
    expect(q.ram?.['postcopy-bytes'], `${JSON.stringify(q)}\n${JSON.stringify(d)}`).toBeGreaterThan(0);
    expect(q['x-postcopy-trigger']).toMatch(/x-postcopy-after-iterations=1/);
    const running = await expectRunning(dst);
    expect(running.status).toBe('running');
    expect(running.after).toBeGreaterThan(running.before);
    expect((await checkWorkload(dst)).ok).toBe(true);
    expect((await queryMigrate(src)).status).toBe('completed');
  });

  it('driven by the CLI: e2k-migrate migrate --caps postcopy-ram --postcopy-after SEC', async () => {
    vms = new VmSet();
    const MEM = ['--mem', '32M', '--vcpus', '1', '--workload', 'random', '--seed', '5'];
    const dst = await vms.start('dst', [...MEM, '--incoming', 'defer']);
    const src = await vms.start('src', MEM);
    await setCaps(dst, ['postcopy-ram']);
    const uri = await listenTcp(dst);
    await waitSteps(src, 200_000);
    const r = await e2k([
      'migrate',
      '--qmp',
      src.qmpAddress,
      uri,
      '--caps',
      'postcopy-ram',
      '--set',
      'max-bandwidth=32M',
      '--set',
      'downtime-limit=1',
      '--set',
      'max-postcopy-bandwidth=16M',
      '--postcopy-after',
      '0.2',
      '--json',
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const q = JSON.parse(r.stdout) as { status: string; ram: Record<string, number> };
    expect(q.status).toBe('completed');
    expect(q.ram['postcopy-bytes']).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/migrate-start-postcopy/);
    expect((await waitMigrate(dst)).status).toBe('completed');
    expect((await checkWorkload(dst)).ok).toBe(true);
  });
});
