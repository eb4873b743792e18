/**
 * The user-facing commands: `e2k-migrate migrate` driving a VM's monitor with progress on stderr
 * and one JSON value on stdout, and `e2k-migrate demo`, the README's main command.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { E2K_MIGRATE_BIN } from '@e2k-migrate/cli';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, checkWorkload, VmSet, waitMigrate, waitSteps } from './helpers.js';

const run = promisify(execFile);

beforeAll(() => buildCli(), 240_000);

let vms: VmSet | undefined;
afterEach(async () => {
  await vms?.close();
  vms = undefined;
});

describe('e2k-migrate migrate', () => {
  it('migrates with the given capabilities and parameters, progress on stderr, JSON on stdout', async () => {
    vms = new VmSet();
    const args = ['--mem', '32M', '--vcpus', '2', '--workload', 'hotset'];
    const uri = `unix:${vms.dir}/mig.sock`;
    const dst = await vms.start('dst', [...args, '--incoming', uri]);
    const src = await vms.start('src', args);
    await waitSteps(src, 100_000);
    const r = await run(process.execPath, [
      E2K_MIGRATE_BIN,
      'migrate',
      '--qmp',
      src.qmpAddress,
      uri,
      '--caps',
      'xbzrle,events',
      '--set',
      'max-bandwidth=64M',
      '--set',
      'xbzrle-cache-size=16M',
      '--json',
    ]);
    const q = JSON.parse(r.stdout) as { status: string; 'xbzrle-cache': { 'cache-size': number } };
    expect(q.status).toBe('completed');
    expect(q['xbzrle-cache']['cache-size']).toBe(16 << 20);
    expect(r.stderr).toMatch(/completed\s+\[#+\]\s+sent [\d.]+ MiB\s+left 0\.0 MiB\s+\d+ Mbps\s+pass \d+/);
    const params = (await src.qmp.execute('query-migrate-parameters')) as Record<string, number>;
    expect(params['max-bandwidth']).toBe(64 << 20);
    expect((await waitMigrate(dst)).status).toBe('completed');
    expect((await checkWorkload(dst)).ok).toBe(true);
  });
});

describe('e2k-migrate demo', () => {
  it('migrates a running guest between two processes and verifies it (--json)', async () => {
    const r = await run(process.execPath, [E2K_MIGRATE_BIN, 'demo', '--mem', '32M', '--json'], {
      timeout: 120_000,
    });
    const q = JSON.parse(r.stdout) as Record<string, unknown> & { ram: Record<string, number> };
    expect(q.status).toBe('completed');
    expect(q.verified).toBe(true);
    expect(q.ram.total).toBe(32 << 20);
    expect(q.downtime).toBeTypeOf('number');
    expect(q['x-guest-pause-ms']).toBeTypeOf('number');
    expect(q['x-guest-pause-ms']).toBeGreaterThanOrEqual(0);
    expect((q['x-destination'] as { status: string }).status).toBe('running');
    expect(r.stderr).toMatch(/destination running; workload invariant holds/);
  });
});
