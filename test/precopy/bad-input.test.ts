/**
 * Wrong requests get QEMU-like errors that say what is wrong: unknown capabilities and
 * parameters list the valid names, multifd is a typed "not supported yet", bad URIs say what
 * is wrong with them, and commands out of state are refused. Both over QMP and on the
 * `e2k-migrate migrate` command line (where nothing is sent before the checks pass).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { VmProcess } from '@e2k-migrate/cli';
import { E2K_MIGRATE_BIN } from '@e2k-migrate/cli';
import { MIGRATION_CAPABILITIES, PARAMETER_NAMES } from '@e2k-migrate/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, listenTcp, queryMigrate, VmSet, waitMigrate, waitSteps } from './helpers.js';

const run = promisify(execFile);

let vms: VmSet;
let src: VmProcess;
let dst: VmProcess;

beforeAll(async () => {
  buildCli();
  vms = new VmSet();
  const args = ['--mem', '16M', '--vcpus', '1', '--workload', 'increment'];
  src = await vms.start('src', args);
  dst = await vms.start('dst', [...args, '--incoming', 'defer']);
}, 240_000);

afterAll(async () => {
  await vms?.close();
});

async function qmpError(vm: VmProcess, cmd: string, args?: Record<string, unknown>): Promise<string> {
  try {
    await vm.qmp.execute(cmd, args as never);
  } catch (e) {
    return (e as { desc: string }).desc;
  }
  throw new Error(`${cmd} succeeded`);
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [E2K_MIGRATE_BIN, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe('QMP: bad migration requests', () => {
  it('an unknown capability is an error listing every valid one; nothing changes', async () => {
    const desc = await qmpError(src, 'migrate-set-capabilities', {
      capabilities: [
        { capability: 'xbzrle', state: true },
        { capability: 'warp-speed', state: true },
      ],
    });
    expect(desc).toContain('"warp-speed"');
    for (const c of MIGRATION_CAPABILITIES) expect(desc).toContain(c);
    const caps = (await src.qmp.execute('query-migrate-capabilities')) as { capability: string; state: boolean }[];
    expect(caps.find((c) => c.capability === 'xbzrle')?.state).toBe(false);
  });

  it('multifd is a typed "not supported yet" error', async () => {
    const desc = await qmpError(src, 'migrate-set-capabilities', {
      capabilities: [{ capability: 'multifd', state: true }],
    });
    expect(desc).toMatch(/multifd is not supported by e2k-migrate yet/);
  });

  it('an unknown parameter lists the valid ones; a value out of range names the range', async () => {
    const desc = await qmpError(src, 'migrate-set-parameters', { 'max-bandwith': 1 });
    expect(desc).toContain('unknown migration parameter "max-bandwith"; valid parameters: ');
    for (const name of PARAMETER_NAMES) expect(desc).toContain(name);
    const d2 = await qmpError(src, 'migrate-set-parameters', { 'downtime-limit': 3_000_000 });
    expect(d2).toMatch(/downtime-limit: must be in \[0, 2000000\]/);
    const d3 = await qmpError(src, 'migrate-set-parameters', { 'xbzrle-cache-size': 5000 });
    expect(d3).toMatch(/power of two/);
    const p = (await src.qmp.execute('query-migrate-parameters')) as Record<string, unknown>;
    expect(p['downtime-limit']).toBe(300);
    expect(Object.keys(p).sort()).toEqual([...PARAMETER_NAMES].sort());
  });

  it('bad URIs say what is wrong', async () => {
    expect(await qmpError(src, 'migrate', { uri: 'tcp:localhost' })).toMatch(/missing ":PORT"/);
    expect(await qmpError(src, 'migrate', { uri: 'rdma:1.2.3.4:5' })).toMatch(/rdma.*not supported/);
    expect(await qmpError(src, 'migrate', { uri: 'bogus' })).toMatch(/missing transport prefix/);
    expect((await queryMigrate(src)).status).toBeUndefined();
  });

  it('refuses commands out of state', async () => {
    expect(await qmpError(dst, 'migrate', { uri: 'tcp:127.0.0.1:1' })).toBe(
      'Guest is waiting for an incoming migration',
    );
    expect(await qmpError(src, 'migrate-incoming', { uri: 'tcp:127.0.0.1:0' })).toBe(
      "'-incoming' was not specified on the command line",
    );
    const uri = await listenTcp(dst);
    expect(await qmpError(dst, 'migrate-incoming', { uri })).toBe('The incoming migration has already been started');
    await waitSteps(src, 100_000);
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 4 << 20 });
    await src.qmp.execute('migrate', { uri });
    expect(await qmpError(src, 'migrate', { uri })).toBe("There's a migration process in progress");
    expect(
      await qmpError(src, 'migrate-set-capabilities', { capabilities: [{ capability: 'xbzrle', state: true }] }),
    ).toBe("There's a migration process in progress");
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
    expect((await waitMigrate(src)).status).toBe('completed');
  });
});

describe('e2k-migrate migrate: checks before anything is sent', () => {
  // the monitor address does not exist: every error below comes before connecting
  const nowhere = ['migrate', '--qmp', 'unix:/nonexistent/e2k.qmp'];

  it('--caps multifd: typed not-supported error, exit 1', async () => {
    const r = await cli(...nowhere, 'tcp:127.0.0.1:4444', '--caps', 'multifd');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/E_NOT_SUPPORTED: capability multifd is not supported by e2k-migrate yet/);
  });

  it('--caps with an unknown name lists the valid capabilities (JSON error with --json)', async () => {
    const r = await cli(...nowhere, 'tcp:127.0.0.1:4444', '--caps', 'xbzrle,nope', '--json');
    expect(r.code).toBe(1);
    const err = JSON.parse(r.stdout).error as { code: string; subject: string; message: string };
    expect(err.code).toBe('E_UNKNOWN_CAPABILITY');
    expect(err.subject).toBe('nope');
    for (const c of MIGRATION_CAPABILITIES) expect(err.message).toContain(c);
  });

  it('--set with an unknown or bad parameter', async () => {
    const r = await cli(...nowhere, 'tcp:127.0.0.1:4444', '--set', 'speed=9');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /E_UNKNOWN_PARAMETER: unknown migration parameter "speed"; valid parameters: .*max-bandwidth/,
    );
    const r2 = await cli(...nowhere, 'tcp:127.0.0.1:4444', '--set', 'max-bandwidth=lots');
    expect(r2.stderr).toMatch(/E_BAD_PARAMETER: parameter max-bandwidth: expected an integer/);
    const r3 = await cli(...nowhere, 'tcp:127.0.0.1:4444', '--set', 'max-bandwidth');
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/is not name=value/);
  });

  it('a bad URI says what is wrong', async () => {
    const r = await cli(...nowhere, 'tcp:[::1');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/E_BAD_URI: .*closing "\]"/);
  });
});
