/**
 * Failures in the middle of a live migration, made deterministic: the migration is paced
 * (max-bandwidth 16 MiB/s and a guest that dirties all of RAM, so it cannot finish by itself)
 * and the connection goes through a proxy that cuts or corrupts it at an exact byte. The source
 * must keep running with the reason reported; the destination must fail with a typed error and
 * exit with status 3.
 */
import { startTcpProxy, type TcpProxy } from '@e2k-migrate/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCli,
  expectRunning,
  listenTcp,
  parseSummary,
  queryMigrate,
  VmSet,
  waitMigrate,
  waitSteps,
} from './helpers.js';

beforeAll(() => buildCli(), 240_000);

let vms: VmSet;
let proxy: TcpProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  await vms?.close();
});

const ARGS = ['--mem', '32M', '--vcpus', '2', '--workload', 'increment'];
const EXIT_INCOMING_FAILED = 3;

/** Source and destination with the source paced at 16 MiB/s, connected through a proxy. */
async function pacedPair() {
  vms = new VmSet();
  const dst = await vms.start('dst', [...ARGS, '--incoming', 'defer']);
  const src = await vms.start('src', ARGS);
  const uri = await listenTcp(dst);
  const port = Number(uri.split(':').pop());
  proxy = await startTcpProxy({ host: '127.0.0.1', port });
  await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 16 << 20 });
  await src.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  await waitSteps(src, 100_000);
  return { src, dst, proxy };
}

describe('faults during a live migration', () => {
  it('cancel: the source goes cancelled and keeps running; the destination exits with the reason', async () => {
    const { src, dst, proxy: p } = await pacedPair();
    await src.qmp.execute('migrate', { uri: p.uri });
    await p.waitForBytes(4 << 20);
    expect((await queryMigrate(src)).status).toBe('active');
    await src.qmp.execute('migrate_cancel');
    const q = await waitMigrate(src);
    expect(q.status).toBe('cancelled');
    const run = await expectRunning(src);
    expect(run.status).toBe('running');
    expect(run.after).toBeGreaterThan(run.before);
    expect(src.qmp.events.filter((e) => e.event === 'MIGRATION').map((e) => e.data?.status)).toEqual([
      'setup',
      'active',
      'cancelling',
      'cancelled',
    ]);
    const exit = await dst.exited;
    expect(exit.code).toBe(EXIT_INCOMING_FAILED);
    const summary = parseSummary(exit.stdout);
    expect(summary.reason).toBe('incoming-failed');
    expect((summary.error as { code: string }).code).toMatch(/^E_/);
    expect(vms.log('dst')).toMatch(/incoming migration failed: E_[A-Z_]+: /);
    expect(vms.log('dst')).not.toMatch(/\n\s+at /); // a reason, not a stack trace
  });

  it('a connection cut at an exact byte: source failed with the error, VM running; destination typed error', async () => {
    const { src, dst, proxy: p } = await pacedPair();
    p.cutAfter(3 << 20);
    await src.qmp.execute('migrate', { uri: p.uri });
    const q = await waitMigrate(src);
    expect(q.status).toBe('failed');
    expect(q['error-desc']).toMatch(/E_[A-Z_]+: /);
    expect(p.forwarded).toBe(3 << 20);
    const run = await expectRunning(src);
    expect(run.status).toBe('running');
    expect(run.after).toBeGreaterThan(run.before);
    const exit = await dst.exited;
    expect(exit.code).toBe(EXIT_INCOMING_FAILED);
    const err = parseSummary(exit.stdout).error as { code: string; message: string };
    // the stream stopped in the middle of a RAM record or at a reset
    expect(['E_TRUNCATED', 'E_IO', 'E_CLOSED', 'E_EOF']).toContain(err.code);
    // and the source can migrate again afterwards (to a new destination)
    const dst2 = await vms.start('dst2', [...ARGS, '--incoming', 'defer']);
    const uri2 = await listenTcp(dst2);
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
    await src.qmp.execute('migrate', { uri: uri2 });
    expect((await waitMigrate(src)).status).toBe('completed');
    expect((await waitMigrate(dst2)).status).toBe('completed');
  });

  it('a malformed stream: the destination names the offset and section, the source keeps running', async () => {
    const { src, dst, proxy: p } = await pacedPair();
    // Stream prefix: header (8) + configuration "e2k" (8) + ram START header (17) + block list
    // (24) + EOS (8) + footer (5) = 70; PART header (5) → first record word at 75, flags at 82.
    // Page 0 (reserved, zero) is a ZERO record (flags 0x02): xor 0x03 makes it the obsolete
    // RAM_SAVE_FLAG_FULL (0x01).
    p.corruptAt(82, 0x03);
    await src.qmp.execute('migrate', { uri: p.uri });
    const exit = await dst.exited;
    expect(exit.code).toBe(EXIT_INCOMING_FAILED);
    const err = parseSummary(exit.stdout).error as { code: string; offset: number; section: string; message: string };
    expect(err.code).toBe('E_BAD_RAM_FLAGS');
    expect(err.offset).toBe(75);
    expect(err.section).toBe('ram (0)');
    expect(err.message).toMatch(/obsolete/);
    const q = await waitMigrate(src);
    expect(q.status).toBe('failed');
    const run = await expectRunning(src);
    expect(run.status).toBe('running');
    expect(run.after).toBeGreaterThan(run.before);
  });
});
