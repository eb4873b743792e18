import { createHash } from 'node:crypto';
import {
  Capabilities,
  MIGRATION_CAPABILITIES,
  MigrationFile,
  Parameters,
  type PostcopyIo,
  type SaveContext,
} from '@e2k-migrate/migration';
import { RamSaveHandler } from '@e2k-migrate/migration-ram';
import { createGuestMemory, type GuestMemory } from '@e2k-migrate/native';
import { afterEach, describe, expect, it } from 'vitest';
import { PostcopyRamSource } from './postcopy-ram-source.js';

const TPS = 4096;
const MiB = 1 << 20;
const mems: GuestMemory[] = [];
afterEach(() => {
  for (const m of mems.splice(0)) m.close();
});

/** A stream kept in memory (buffers are copied: the file recycles them). */
function memoryFile() {
  const chunks: Uint8Array[] = [];
  let accepted = 0;
  const file = new MigrationFile(
    {
      writeBuffered: 0,
      get bytesWritten() {
        return accepted;
      },
      async write(b: Uint8Array) {
        chunks.push(Uint8Array.from(b));
        accepted += b.length;
      },
      async flush() {},
    },
    { bufferBytes: 64 << 10 },
  );
  return {
    file,
    bytes(): Buffer {
      file.emit();
      return Buffer.concat(chunks);
    },
  };
}

function context(file: MigrationFile): SaveContext {
  const caps = new Capabilities(MIGRATION_CAPABILITIES);
  caps.set([{ capability: 'postcopy-ram', state: true }]);
  return {
    file,
    caps,
    params: new Parameters(),
    now: () => performance.now(),
    rateLimitEnd: () => Number.POSITIVE_INFINITY,
    vmRunning: () => false,
    cancelled: () => false,
    onDirtySync() {},
    onSyncPeriod() {},
  };
}

interface Rec {
  offset: number;
  kind: 'PAGE' | 'ZERO' | 'EOS';
  named: boolean;
  data?: Buffer;
}

/** Bare RAM records (no section framing): word, [name], body. */
function records(bytes: Buffer): Rec[] {
  const out: Rec[] = [];
  let at = 0;
  while (at < bytes.length) {
    const word = Number(bytes.readBigUInt64BE(at));
    at += 8;
    const flags = word & 0xfff;
    const offset = word - flags;
    if (flags === 0x10) {
      out.push({ offset, kind: 'EOS', named: false });
      continue;
    }
    const named = (flags & 0x20) === 0;
    if (named) at += 1 + (bytes[at] as number);
    if (flags & 0x08) {
      out.push({ offset, kind: 'PAGE', named, data: bytes.subarray(at, at + TPS) });
      at += TPS;
    } else if (flags & 0x02) {
      out.push({ offset, kind: 'ZERO', named });
      at += 1;
    } else throw new Error(`unexpected flags 0x${flags.toString(16)} at ${at - 8}`);
  }
  return out;
}

/** 8 MiB in 2 MiB host pages (4 of them); every target page non-zero and distinct. */
async function hugeSource(): Promise<{ mem: GuestMemory; ram: RamSaveHandler; pc: PostcopyRamSource }> {
  const mem = createGuestMemory({ size: 8 * MiB, name: 'pc-huge' });
  mems.push(mem);
  const v = mem.views()[0] as Uint8Array;
  for (let p = 0; p < 8 * MiB; p += TPS) new DataView(v.buffer, v.byteOffset).setUint32(p, p / TPS + 1);
  const ram = new RamSaveHandler([{ idstr: 'mem', size: 8 * MiB, memory: mem, pageSize: 2 * MiB }], {
    tracking: 'software',
  });
  const pc = new PostcopyRamSource(ram);
  await ram.setup(context(memoryFile().file));
  return { mem, ram, pc };
}

/** The host pages (2 MiB) in order of their records on one channel, each checked whole and contiguous. */
function hostPageRuns(recs: Rec[]): number[] {
  const runs: number[] = [];
  let next = -1;
  for (const r of recs) {
    if (r.kind === 'EOS') continue;
    if (r.offset % (2 * MiB) === 0) {
      expect(next === -1 || next % (2 * MiB) === 0).toBe(true);
      runs.push(r.offset / (2 * MiB));
    } else expect(r.offset).toBe(next);
    next = r.offset + TPS;
  }
  return runs;
}

describe('PostcopyRamSource', () => {
  it('advertises the page-size summary and discards whole huge pages never sent', async () => {
    const { pc } = await hugeSource();
    expect(pc.pageSizeSummary()).toBe(2 * MiB);
    const m = memoryFile();
    expect(pc.sendDiscards(context(m.file))).toBe(1);
    // one range: (0, 8 MiB) of "mem"
    expect(m.bytes().subarray(-16).toString('hex')).toBe('00000000000000000000000000800000');
    expect(pc.pending()).toBe(8 * MiB);
  });

  it('break-huge: a request during a huge page on main suspends it, is served whole on preempt, then main finishes it', async () => {
    const { mem, pc } = await hugeSource();
    const main = memoryFile();
    const ctx = context(main.file);
    pc.sendDiscards(context(memoryFile().file));
    const pre = memoryFile();
    let yields = 0;
    const io: PostcopyIo = {
      preempt: pre.file,
      async yield() {
        // the destination faults on host page 3 while host page 0 is being sent
        if (++yields === 1) pc.requestPages({ block: 'mem', start: 6 * MiB, length: 2 * MiB, rpOffset: 0 });
      },
    };
    await pc.complete(ctx, io);
    expect(pc.pending()).toBe(0);
    expect(pc.sent).toMatchObject({ requested: 1, requestedOnPreempt: 1, suspensions: 1 });
    const onMain = records(main.bytes());
    const onPre = records(pre.bytes());
    // preempt: exactly host page 3, the first record named, the rest CONTINUE
    expect(hostPageRuns(onPre)).toEqual([3]);
    expect(onPre.length).toBe(512);
    expect(onPre.filter((r) => r.named).map((r) => r.offset)).toEqual([6 * MiB]);
    // main: host page 0 whole (suspended after 64 pages, finished after the request), then 1 and 2, EOS
    expect(hostPageRuns(onMain)).toEqual([0, 1, 2]);
    expect(onMain.at(-1)?.kind).toBe('EOS');
    // the record after the switch back to main names its block again (7.2 resets the last block)
    expect(onMain.filter((r) => r.named).map((r) => r.offset)).toEqual([0, 64 * TPS]);
    // bit-exact content
    const all = [...onMain, ...onPre].filter((r) => r.kind === 'PAGE');
    expect(all.length).toBe(2048);
    const image = Buffer.alloc(8 * MiB);
    for (const r of all) (r.data as Buffer).copy(image, r.offset);
    const want = createHash('sha256')
      .update(mem.views()[0] as Uint8Array)
      .digest('hex');
    expect(createHash('sha256').update(image).digest('hex')).toBe(want);
  });

  it('a request for the suspended huge page itself is completed on the main channel', async () => {
    const { pc } = await hugeSource();
    const main = memoryFile();
    pc.sendDiscards(context(memoryFile().file));
    const pre = memoryFile();
    let yields = 0;
    await pc.complete(context(main.file), {
      preempt: pre.file,
      async yield() {
        if (++yields === 2) pc.requestPages({ block: 'mem', start: 0, length: 2 * MiB, rpOffset: 0 });
      },
    });
    expect(pre.bytes().length).toBe(0);
    expect(pc.sent.suspensions).toBe(1);
    expect(hostPageRuns(records(main.bytes()))).toEqual([0, 1, 2, 3]);
  });

  it('without preempt, requests go first on main and the scan resumes right after the requested page', async () => {
    const mem = createGuestMemory({ size: 1 * MiB, name: 'small' });
    mems.push(mem);
    (mem.views()[0] as Uint8Array).fill(7);
    const ram = new RamSaveHandler([{ idstr: 'pc.ram', size: 1 * MiB, memory: mem }], { tracking: 'software' });
    const pc = new PostcopyRamSource(ram);
    await ram.setup(context(memoryFile().file));
    pc.sendDiscards(context(memoryFile().file));
    pc.requestPages({ block: 'pc.ram', start: 100 * TPS, length: TPS, rpOffset: 0 });
    pc.requestPages({ block: 'pc.ram', start: 200 * TPS, length: 2 * TPS, rpOffset: 0 });
    const main = memoryFile();
    let limit = 6;
    // the rate-limit window is used up after 5 background host pages; requests do not ask it
    const ctx = { ...context(main.file), rateLimitEnd: () => (--limit > 0 ? Number.POSITIVE_INFINITY : 0) };
    expect(await pc.iterate(ctx, { preempt: undefined, async yield() {} })).toBe(false);
    const recs = records(main.bytes());
    expect(recs.map((r) => r.offset / TPS)).toEqual([100, 200, 201, 202, 203, 204, 205, 206, 0]);
    expect(recs.filter((r) => r.named).length).toBe(1);
    expect(ram.stats().ram?.['postcopy-requests']).toBe(2);
    expect(ram.stats().ram?.['postcopy-bytes']).toBe(main.bytes().length);
  });

  it('a request for a page already sent is skipped; one naming an unknown block is a typed error', async () => {
    const { pc } = await hugeSource();
    pc.sendDiscards(context(memoryFile().file));
    const main = memoryFile();
    await pc.complete(context(main.file), { preempt: undefined, async yield() {} });
    pc.requestPages({ block: 'mem', start: 0, length: 2 * MiB, rpOffset: 0 });
    const again = memoryFile();
    expect(await pc.iterate(context(again.file), { preempt: undefined, async yield() {} })).toBe(true);
    expect(records(again.bytes()).map((r) => r.kind)).toEqual(['EOS']);
    expect(() => pc.requestPages({ block: 'pc.ram', start: 0, length: 4096, rpOffset: 9 })).toThrow(
      expect.objectContaining({ code: 'E_BAD_PAGE_REQUEST' }),
    );
  });
});
