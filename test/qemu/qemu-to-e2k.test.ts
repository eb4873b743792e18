import { join } from 'node:path';
import { needs } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import {
  checkGuestInvariant,
  migrate,
  paceUntilSyncs,
  QemuProcess,
  qemuAvailable,
  queryMigrate,
  queryStatus,
  runE2k,
  serialMarkers,
  setCapabilities,
  setParameters,
  waitFor,
  waitForMigration,
  writePatternFile,
} from '../../tools/src/qemu/index.js';
import { liveSuite, readManifest, sha256, storedBlock } from './helpers.js';

const qemu = qemuAvailable();
const run = needs('qemu', qemu.ok, qemu.reason);
const MiB = 1 << 20;

interface IncomingResult {
  status: string;
  machine: string;
  blocks: { idstr: string; usedLength: number; sha256: string }[];
  records: { normal: number; duplicate: number; xbzrle: number };
  sections: { start: number; part: number; end: number };
  devices: { bytes: number; sections: number };
  returnPath: boolean;
}

/**
 * QEMU 7.2 as the source, `e2k-migrate incoming` as the destination, over real sockets. Each
 * case checks the stored RAM against QEMU's own `pmemsave` of the stopped source after
 * `completed` (32 MiB guests: pc.ram = guest-physical 0..32 MiB).
 */
describe.runIf(run)('QEMU 7.2 → e2k-migrate incoming (live)', () => {
  const work = liveSuite('q2e');

  /** Starts `incoming` and returns it with the URI it listens on. */
  async function incoming(uri: string, store: string, caps?: string) {
    const inc = runE2k(['incoming', uri, '--store', store, '--json', ...(caps ? ['--caps', caps] : [])]);
    const m = await inc.waitForStderr(/listening on (\S+)/);
    return { inc, uri: m[1] as string };
  }

  async function bootGuest(name: string): Promise<QemuProcess> {
    const src = await QemuProcess.start({ machine: 'pc', memMiB: 32, boot: true, name });
    await waitFor('the guest to print B', async () => (serialMarkers(await src.serial()).b > 0 ? true : undefined));
    return src;
  }

  it('plain precopy of a -M pc guest that keeps dirtying memory', async () => {
    const src = await bootGuest('plain-src');
    const store = join(work(), 'plain');
    const { inc, uri } = await incoming('tcp:127.0.0.1:0', store);
    await setParameters(src.qmp, { 'max-bandwidth': 64 * MiB, 'downtime-limit': 1 });
    await migrate(src.qmp, uri);
    const q = await waitForMigration(src.qmp, { onPoll: paceUntilSyncs(src.qmp, 3), timeoutMs: 120_000 });
    expect(q.ram?.['dirty-sync-count']).toBeGreaterThanOrEqual(3);
    expect(await inc.exit).toBe(0);
    const result = JSON.parse(inc.stdout()) as IncomingResult;

    expect((await queryStatus(src.qmp)).status).toBe('postmigrate');
    const pmem = await src.pmemsave(0, 32 * MiB);
    const inv = checkGuestInvariant(pmem);
    expect(inv.ok).toBe(true);
    expect(inv.passes).toBeGreaterThan(0);
    expect(result.status).toBe('completed');
    expect(result.machine).toBe('pc-i440fx-7.2');
    expect(result.blocks[0]).toMatchObject({ idstr: 'pc.ram', usedLength: 32 * MiB, sha256: sha256(pmem) });
    expect(sha256(await storedBlock(store, 'pc.ram'))).toBe(sha256(pmem));
    // Live: the guest re-dirtied every page, so pages were sent in several iterations.
    expect(result.sections.part).toBeGreaterThanOrEqual(2);
    expect(result.records.normal).toBeGreaterThan(2 * 7680);
    expect(result.devices.sections).toBeGreaterThan(25);
    const manifest = await readManifest(store);
    expect(manifest.devices.sections.map((s) => s.idstr)).toContain('cpu');
    expect(manifest.vmdesc?.bytes).toBeGreaterThan(10_000);
  });

  it('XBZRLE precopy of the dirtying guest: XBZRLE records decoded onto the received pages', async () => {
    const src = await bootGuest('xbzrle-src');
    const store = join(work(), 'xbzrle');
    const { inc, uri } = await incoming('tcp:127.0.0.1:0', store, 'xbzrle');
    await setCapabilities(src.qmp, ['xbzrle']);
    await setParameters(src.qmp, { 'max-bandwidth': 64 * MiB, 'downtime-limit': 1, 'xbzrle-cache-size': 16 * MiB });
    await migrate(src.qmp, uri);
    const q = await waitForMigration(src.qmp, { onPoll: paceUntilSyncs(src.qmp, 4), timeoutMs: 120_000 });
    expect(await inc.exit).toBe(0);
    const result = JSON.parse(inc.stdout()) as IncomingResult;
    const pmem = await src.pmemsave(0, 32 * MiB);
    expect(checkGuestInvariant(pmem).ok).toBe(true);
    expect(result.blocks[0]?.sha256).toBe(sha256(pmem));
    expect(result.records.xbzrle).toBeGreaterThan(0);
    expect((q['xbzrle-cache'] as { pages: number } | undefined)?.pages).toBeGreaterThan(0);
    expect((await readManifest(store)).capabilities).toEqual(['xbzrle']);
  });

  it('-M none, stopped, over a unix socket: RAM from a memory-backend-file pattern', async () => {
    const pattern = join(work(), 'pattern.bin');
    await writePatternFile(pattern, 32 * MiB, 30, 7);
    const src = await QemuProcess.start({ machine: 'none', memMiB: 32, memoryBackendFile: pattern, name: 'none-src' });
    await src.qmp.execute('stop');
    const store = join(work(), 'none');
    const { inc, uri } = await incoming(`unix:${join(work(), 'none.sock')}`, store);
    await migrate(src.qmp, uri);
    await waitForMigration(src.qmp, { timeoutMs: 60_000 });
    expect(await inc.exit).toBe(0);
    const result = JSON.parse(inc.stdout()) as IncomingResult;
    const pmem = await src.pmemsave(0, 32 * MiB);
    expect(result.machine).toBe('none');
    expect(result.blocks).toHaveLength(1);
    expect(result.blocks[0]).toMatchObject({ idstr: 'ram', sha256: sha256(pmem) });
    expect(result.records.normal).toBeGreaterThan(2000);
    expect(result.records.duplicate).toBeGreaterThan(4000);
    expect((await readManifest(store)).devices.sections.map((s) => s.idstr)).toEqual(['timer', 'globalstate']);
  });

  it('a source with the return-path capability gets PONG and SHUT 0 from incoming', async () => {
    const pattern = join(work(), 'pattern-rp.bin');
    await writePatternFile(pattern, 32 * MiB, 10, 3);
    const src = await QemuProcess.start({ machine: 'none', memMiB: 32, memoryBackendFile: pattern, name: 'rp-src' });
    await src.qmp.execute('stop');
    const store = join(work(), 'rp');
    const { inc, uri } = await incoming('tcp:127.0.0.1:0', store, 'return-path');
    await setCapabilities(src.qmp, ['return-path']);
    await migrate(src.qmp, uri);
    // A 7.2 source with a return path completes only after the destination's SHUT.
    await waitForMigration(src.qmp, { timeoutMs: 60_000 });
    expect(await inc.exit).toBe(0);
    const result = JSON.parse(inc.stdout()) as IncomingResult;
    expect(result.returnPath).toBe(true);
    expect(result.blocks[0]?.sha256).toBe(sha256(await src.pmemsave(0, 32 * MiB)));
  });

  it('a source that dies mid-stream: incoming exits non-zero with a typed error', async () => {
    const src = await bootGuest('killed-src');
    const store = join(work(), 'killed');
    const { inc, uri } = await incoming('tcp:127.0.0.1:0', store);
    await setParameters(src.qmp, { 'max-bandwidth': 8 * MiB, 'downtime-limit': 1 });
    await migrate(src.qmp, uri);
    await waitFor('2 MiB on the wire', async () => {
      const q = await queryMigrate(src.qmp);
      return (q.ram?.transferred ?? 0) > 2 * MiB ? true : undefined;
    });
    await src.kill();
    expect(await inc.exit).toBe(1);
    expect(inc.stderr()).toMatch(/E_TRUNCATED|E_CLOSED|E_IO/);
    await expect(readManifest(store)).rejects.toThrow();
  });
});
