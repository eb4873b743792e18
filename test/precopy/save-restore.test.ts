/**
 * `e2k-migrate save` writes a live migration into a file (via FILE.tmp, renamed when complete);
 * `e2k-migrate analyze` reads that E2K stream (RAM sha256 and device sections from its vmdesc);
 * `e2k-migrate vm --incoming file:FILE` restores it bit for bit.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { E2K_MIGRATE_BIN } from '@e2k-migrate/cli';
import { analyzeStream } from '@e2k-migrate/migration';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, checkWorkload, expectRunning, VmSet, waitMigrate, waitSteps } from './helpers.js';

const run = promisify(execFile);

beforeAll(() => buildCli(), 240_000);

let vms: VmSet;
afterEach(async () => {
  await vms?.close();
});

const ARGS = ['--mem', '32M', '--vcpus', '2', '--workload', 'random', '--seed', '3', '--working-set', '512'];

describe('save, analyze, restore', () => {
  it('saves a running VM to a file that analyze reads and vm --incoming file: restores exactly', async () => {
    vms = new VmSet();
    const src = await vms.start('src', ARGS);
    await waitSteps(src, 2_000_000);
    const file = join(vms.dir, 'vm.mig');
    const saved = await run(process.execPath, [E2K_MIGRATE_BIN, 'save', '--qmp', src.qmpAddress, file, '--json']);
    const q = JSON.parse(saved.stdout) as { status: string; file: string; ram: Record<string, number> };
    expect(q.status).toBe('completed');
    expect(q.file).toBe(file);
    expect(existsSync(file)).toBe(true);
    expect(existsSync(`${file}.tmp`)).toBe(false);
    expect(((await src.qmp.execute('query-status')) as { status: string }).status).toBe('postmigrate');
    const ram = (await src.qmp.execute('x-query-ram-hash')) as { sha256: string };
    const regs = await src.qmp.execute('x-query-registers');

    // the analyzer reads the E2K stream like any QEMU stream
    const a = await analyzeStream({ input: file });
    expect(a.summary.ram_sha256).toEqual({ 'e2k.ram': ram.sha256 });
    expect(a.vmdesc?.parsed.devices.map((d) => `${d.name}:${d.instance_id}`)).toEqual([
      'timer:0',
      'e2k-cpu:0',
      'e2k-cpu:1',
      'e2k-serial:0',
      'e2k-machine:0',
      'globalstate:0',
    ]);
    // every device body decodes with the vmdesc (none had to be found by footer scan)
    expect(a.devices.map((d) => [d.lengthGuessed, d.decodeError, d.value !== undefined])).toEqual(
      Array(6).fill([false, undefined, true]),
    );
    expect([...a.state.keys()]).toContain('e2k-cpu (2)');
    // and so does the CLI
    const cli = await run(process.execPath, [E2K_MIGRATE_BIN, 'analyze', file, '--format', 'summary', '--json']);
    expect(JSON.stringify(JSON.parse(cli.stdout))).toContain(ram.sha256);

    // restore, paused (-S) so the state can be compared before it runs on
    const restored = await vms.start('restored', [...ARGS, '--paused', '--incoming', `file:${file}`]);
    expect((await waitMigrate(restored)).status).toBe('completed');
    expect(((await restored.qmp.execute('query-status')) as { status: string }).status).toBe('paused');
    expect(await restored.qmp.execute('x-query-ram-hash')).toEqual(ram);
    expect(await restored.qmp.execute('x-query-registers')).toEqual(regs);
    await restored.qmp.execute('cont');
    const r = await expectRunning(restored);
    expect(r.status).toBe('running');
    expect(r.after).toBeGreaterThan(r.before);
    expect((await checkWorkload(restored)).ok).toBe(true);
  });

  it('a save that fails leaves no file behind', async () => {
    vms = new VmSet();
    const src = await vms.start('src', ARGS);
    const file = join(vms.dir, 'missing-dir', 'vm.mig');
    const r = await run(process.execPath, [E2K_MIGRATE_BIN, 'save', '--qmp', src.qmpAddress, file, '--json']).catch(
      (e: { code: number; stdout: string }) => e,
    );
    expect((r as { code: number }).code).toBe(1);
    expect(JSON.parse(r.stdout).status).toBe('failed');
    expect(existsSync(file)).toBe(false);
    expect(existsSync(`${file}.tmp`)).toBe(false);
    expect(((await src.qmp.execute('query-status')) as { status: string }).status).toBe('running');
  });
});
