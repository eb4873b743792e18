import {
  backendInfo,
  createGuestMemory,
  createUserfault,
  type FaultEvent,
  type GuestMemory,
  HUGE_PAGE,
  type Userfault,
} from '@e2k-migrate/native';
import { needs } from '@e2k-migrate/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { PagePlacer } from './page-placer.js';
import { PostcopyBlock } from './postcopy-block.js';
import { Toucher } from './store/toucher.js';

function uffdOk(): { ok: boolean; reason: string } {
  if (backendInfo().name !== 'native') return { ok: false, reason: backendInfo().reason };
  try {
    createUserfault({ mode: 'uffd' }).close();
    return { ok: true, reason: '' };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
function hugeOk(): boolean {
  try {
    createGuestMemory({ size: HUGE_PAGE, kind: 'hugetlb' }).close();
    return true;
  } catch {
    return false;
  }
}
const uffd = uffdOk();
const page = (v: number) => new Uint8Array(4096).fill(v);

describe.runIf(needs('uffd', uffd.ok, uffd.reason))('PagePlacer over a real userfaultfd', () => {
  const open: { uf: Userfault; mem: GuestMemory }[] = [];
  afterEach(() => {
    for (const { uf, mem } of open.splice(0)) {
      uf.unregister(mem);
      uf.close();
      mem.close();
    }
  });

  function setup(kind: 'anonymous' | 'hugetlb', size: number, onFaults?: (e: FaultEvent[]) => void) {
    const mem = createGuestMemory({ size, kind });
    const uf = createUserfault({ mode: 'uffd', ...(onFaults ? { onFaults } : {}) });
    const block = new PostcopyBlock(0, { name: 'ram', memory: mem });
    const placed: number[] = [];
    const placer = new PagePlacer({ userfault: uf, onPlaced: (_b, off) => placed.push(off), batchPages: 4 });
    open.push({ uf, mem });
    return { mem, uf, block, placer, placed };
  }

  it('batches 4 KiB pages into one install, places zero pages, refuses a received page twice', () => {
    const { mem, uf, block, placer, placed } = setup('anonymous', 64 * 4096);
    // a page written before registration is present: the kernel refuses to place it (EEXIST)
    mem.store8(9 * 4096, 0x77);
    uf.register(mem);
    placer.place(block, 0, page(1), false);
    placer.place(block, 4096, page(2), false);
    placer.place(block, 2 * 4096, page(3), false);
    expect(placed).toEqual([]); // still in the batch
    placer.place(block, 3 * 4096, page(4), false); // batch full: one copyPages call
    expect(placed).toEqual([0, 4096, 8192, 12288]);
    placer.place(block, 5 * 4096, undefined, false);
    placer.place(block, 6 * 4096, page(6), true); // urgent: no batching
    placer.place(block, 9 * 4096, page(9), true);
    placer.place(block, 4096, page(0xff), true); // already received
    expect(placer.counters).toEqual({
      copied: 5,
      zero: 1,
      bytes: 6 * 4096,
      duplicates: 1,
      alreadyPlaced: 1,
      resolvedLocally: 0,
    });
    expect(mem.load8(0)).toBe(1);
    expect(mem.load8(4096 + 100)).toBe(2);
    expect(mem.load8(3 * 4096)).toBe(4);
    expect(mem.load8(5 * 4096 + 7)).toBe(0);
    expect(mem.load8(6 * 4096)).toBe(6);
    expect(mem.load8(9 * 4096)).toBe(0x77); // EEXIST: the page that was there stays
    expect(block.hostPageReceived(9 * 4096)).toBe(true);
  });

  it('wakes a worker blocked on a missing page once its page is placed', async () => {
    const faults: FaultEvent[] = [];
    let s: ReturnType<typeof setup> | undefined;
    s = setup('anonymous', 8 * 4096, (events) => {
      for (const e of events) {
        faults.push(e);
        s?.placer.place(s.block, e.offset, page(0x40 + e.offset / 4096), true);
      }
    });
    s.uf.register(s.mem);
    const t = await Toucher.start([s.mem.handle], { pattern: 'descending' });
    await t.done();
    const report = await t.stop();
    expect(report).toMatchObject({ touched: 8, complete: true });
    expect(faults.map((f) => f.offset)).toEqual([7, 6, 5, 4, 3, 2, 1, 0].map((p) => p * 4096));
    expect(faults.every((f) => f.tid === report.tid)).toBe(true);
    for (let p = 0; p < 8; p++) expect(s.mem.load8(p * 4096 + 1)).toBe(0x40 + p);
  });

  it.runIf(needs('hugetlb', hugeOk(), 'no 2 MiB huge pages reserved'))(
    'places a 2 MiB page with one copy and an all-zero one as a zero huge page',
    () => {
      const { mem, uf, block, placer } = setup('hugetlb', 2 * HUGE_PAGE);
      uf.register(mem);
      const buf = new Uint8Array(HUGE_PAGE);
      for (let i = 0; i < 512; i++) buf.fill(i & 0xff, i * 4096, (i + 1) * 4096);
      placer.place(block, HUGE_PAGE, buf, false);
      placer.place(block, 0, undefined, false);
      expect(placer.counters).toMatchObject({ copied: 1, zero: 1, bytes: 2 * HUGE_PAGE });
      expect(mem.load8(HUGE_PAGE + 300 * 4096)).toBe(300 & 0xff);
      expect(mem.load8(100)).toBe(0);
      placer.place(block, 0, buf, false);
      expect(placer.counters.duplicates).toBe(1);
    },
  );
});
