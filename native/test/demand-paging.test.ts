import { needs } from '@e2k-migrate/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendInfo } from '../src/loader.js';
import { createGuestMemoryWith } from '../src/memory.js';
import { hashBytes } from '../src/page-hash.js';
import type { BackendName, FaultEvent, RegionKind } from '../src/types.js';
import { createUserfault } from '../src/userfault.js';
import {
  canCreateHugetlb,
  canCreateUffd,
  exited,
  fixture,
  inbox,
  pagePattern,
  requireBuiltDist,
  Worker,
} from './support.js';

/**
 * Real demand paging: a worker thread touches missing pages of a registered region and blocks
 * (in the kernel with userfaultfd; on Atomics.wait in the cooperative fallback); this thread gets
 * the faults, installs the pages with a batched copy (DONTWAKE) plus an explicit wake, and the
 * worker continues with the right bytes. 4 KiB pages and 2 MiB hugetlb pages.
 */
const nativeOk = needs('native', backendInfo().name === 'native', backendInfo().reason);
const uffdOk = nativeOk && needs('uffd', canCreateUffd(), 'userfaultfd could not be created');
const hugeOk =
  uffdOk && needs('hugetlb', canCreateHugetlb(), 'no free 2 MiB huge page (see the hugepages global setup line above)');

const cases: { backend: BackendName; kind: RegionKind; pages: number; run: boolean }[] = [
  { backend: 'native', kind: 'anonymous', pages: 32, run: uffdOk },
  { backend: 'native', kind: 'memfd', pages: 32, run: uffdOk },
  { backend: 'native', kind: 'hugetlb', pages: 6, run: hugeOk },
  { backend: 'fallback', kind: 'anonymous', pages: 32, run: true },
  { backend: 'fallback', kind: 'hugetlb', pages: 6, run: true },
];

beforeAll(() => requireBuiltDist());

for (const c of cases) {
  describe.skipIf(!c.run)(`demand paging: ${c.backend} ${c.kind}`, () => {
    const touched = c.pages === 6 ? [4, 0, 5, 2] : [17, 3, 0, 31, 8, 9];
    let workerTid = -1;
    const events: FaultEvent[] = [];
    let hashes: { page: number; hash: string; word: number }[] = [];
    let pageSize = 0;

    beforeAll(async () => {
      const mem = createGuestMemoryWith(c.backend, {
        size: c.pages * (c.kind === 'hugetlb' ? 2 << 20 : 4096),
        kind: c.kind,
      });
      pageSize = mem.pageSize;
      const uf = createUserfault({ mode: c.backend === 'native' ? 'uffd' : 'cooperative' });
      uf.setFaultHandler((batch) => {
        events.push(...batch);
        const offsets = batch.map((e) => e.offset);
        const src = new Uint8Array(offsets.length * mem.pageSize);
        offsets.forEach((o, i) => {
          src.set(pagePattern(mem.pageSize, o / mem.pageSize), i * mem.pageSize);
        });
        uf.copyPages(mem, offsets, src, { wake: false });
        for (const o of offsets) uf.wake(mem, o, mem.pageSize);
      });
      uf.register(mem);
      const w = new Worker(fixture('touch-worker.mjs'), { workerData: { handle: mem.handle, pages: touched } });
      const done = exited(w);
      const box = inbox(w);
      workerTid = (await box.next<{ tid: number }>()).tid;
      hashes = (await box.next<{ hashes: typeof hashes }>()).hashes;
      await done;
      uf.unregister(mem);
      uf.close();
      mem.close();
    });
    afterAll(() => {
      events.length = 0;
    });

    it('the worker read the installed bytes', () => {
      expect(hashes.map((h) => h.page)).toEqual(touched);
      for (const h of hashes) {
        const want = pagePattern(pageSize, h.page);
        expect(h.hash).toBe(hashBytes(want).toString(16));
        expect(h.word).toBe(new DataView(want.buffer).getUint32(4, true));
      }
    });

    it('one fault per touched page, from the worker thread, in touch order', () => {
      expect(events.map((e) => e.offset / pageSize)).toEqual(touched);
      for (const e of events) {
        expect(e.tid).toBe(workerTid);
        expect(e.offset % pageSize).toBe(0);
        expect(e.timestampNs).toBeGreaterThan(0n);
      }
      expect(workerTid).toBeGreaterThan(0);
    });
  });
}

/**
 * Synchronous delivery: this thread owns the fault loop (QEMU's fault-thread model) and blocks in
 * `waitFaults` while the worker touches pages; no event-loop turn is involved.
 */
const syncCases: { backend: BackendName; run: boolean }[] = [
  { backend: 'native', run: uffdOk },
  { backend: 'fallback', run: true },
];
for (const c of syncCases) {
  describe.skipIf(!c.run)(`synchronous fault delivery: ${c.backend}`, () => {
    it('serves every touched page from waitFaults, in order, and times out empty', async () => {
      const touched = [5, 1, 30, 12, 2];
      const mem = createGuestMemoryWith(c.backend, { size: 32 * 4096, kind: 'anonymous' });
      const uf = createUserfault({ mode: c.backend === 'native' ? 'uffd' : 'cooperative' });
      uf.register(mem);
      expect(uf.waitFaults(0)).toEqual([]); // nothing pending: returns at once
      expect(() => uf.waitFaults(-1)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
      expect(() => uf.waitFaults(10, 0)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
      const w = new Worker(fixture('touch-worker.mjs'), { workerData: { handle: mem.handle, pages: touched } });
      const done = exited(w);
      const box = inbox(w);
      const served: number[] = [];
      const deadline = performance.now() + 20_000;
      while (served.length < touched.length && performance.now() < deadline) {
        for (const e of uf.waitFaults(100, 1)) {
          expect(e.regionId).toBe(mem.handle.id);
          expect(e.timestampNs).toBeGreaterThan(0n);
          served.push(e.offset / mem.pageSize);
          uf.copy(mem, e.offset, pagePattern(mem.pageSize, e.offset / mem.pageSize));
        }
      }
      expect(served).toEqual(touched);
      const tid = (await box.next<{ tid: number }>()).tid;
      const { hashes } = await box.next<{ hashes: { page: number; hash: string }[] }>();
      await done;
      for (const h of hashes) expect(h.hash).toBe(hashBytes(pagePattern(mem.pageSize, h.page)).toString(16));
      expect(tid).toBeGreaterThan(0);
      const t0 = performance.now();
      expect(uf.waitFaults(30)).toEqual([]);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(20);
      uf.setFaultHandler(() => {});
      expect(() => uf.waitFaults(0)).toThrow(expect.objectContaining({ code: 'E_BUSY' }));
      uf.unregister(mem);
      uf.close();
      mem.close();
    });
  });
}

for (const c of syncCases) {
  describe.skipIf(!c.run)(`fault handler gaps: ${c.backend}`, () => {
    it('a fault that arrives while no handler is set goes to the next handler', async () => {
      const mem = createGuestMemoryWith(c.backend, { size: 8 * 4096, kind: 'anonymous' });
      const uf = createUserfault({ mode: c.backend === 'native' ? 'uffd' : 'cooperative' });
      uf.register(mem);
      const first: number[] = [];
      uf.setFaultHandler((evs) => first.push(...evs.map((e) => e.offset)));
      uf.setFaultHandler(undefined); // (native: the fault thread keeps reading)
      const w = new Worker(fixture('touch-worker.mjs'), { workerData: { handle: mem.handle, pages: [3] } });
      const done = exited(w);
      const box = inbox(w);
      await box.next<{ tid: number }>();
      await new Promise((r) => setTimeout(r, 200)); // the worker is asleep on page 3, unserved
      const served = new Promise<number>((resolve) => {
        uf.setFaultHandler((evs) => {
          for (const e of evs) {
            uf.copy(mem, e.offset, pagePattern(mem.pageSize, e.offset / mem.pageSize));
            resolve(e.offset / mem.pageSize);
          }
        });
      });
      expect(await served).toBe(3);
      const { hashes } = await box.next<{ hashes: { page: number; hash: string }[] }>();
      await done;
      expect(first).toEqual([]);
      expect(hashes[0]?.hash).toBe(hashBytes(pagePattern(mem.pageSize, 3)).toString(16));
      uf.unregister(mem);
      uf.close();
      mem.close();
    });
  });
}
