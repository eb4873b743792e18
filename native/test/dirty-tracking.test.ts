import { needs } from '@e2k-migrate/test-support';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDirtyTracker } from '../src/dirty-tracker.js';
import { backendInfo, nativeAddon } from '../src/loader.js';
import { createGuestMemoryWith } from '../src/memory.js';
import type { BackendName, RegionKind } from '../src/types.js';
import { canCreateHugetlb, exited, fixture, inbox, requireBuiltDist, Worker } from './support.js';

/**
 * A worker writes a known set of pages; the collection on this thread returns exactly that set,
 * then an empty set. Kernel tracking (WP_ASYNC + PAGEMAP_SCAN) on native regions, the software
 * bitmap on fallback regions.
 */
const nativeOk = needs('native', backendInfo().name === 'native', backendInfo().reason);
const probe = nativeOk ? nativeAddon()?.probe() : undefined;
const kernelOk =
  nativeOk &&
  needs(
    'uffd',
    !!probe?.wpAsync && !!probe?.pagemapScan,
    `WP_ASYNC/PAGEMAP_SCAN unavailable (errno ${probe?.dirtyErrno})`,
  );
const hugeOk =
  kernelOk &&
  needs('hugetlb', canCreateHugetlb(), 'no free 2 MiB huge page (see the hugepages global setup line above)');

const cases: { backend: BackendName; kind: RegionKind; pages: number; run: boolean }[] = [
  { backend: 'native', kind: 'anonymous', pages: 4096, run: kernelOk },
  { backend: 'native', kind: 'memfd', pages: 1024, run: kernelOk },
  { backend: 'native', kind: 'hugetlb', pages: 8, run: hugeOk },
  { backend: 'fallback', kind: 'anonymous', pages: 4096, run: true },
];

function bits(bm: Uint32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bm.length * 32; i++) if (((bm[i >>> 5] as number) >>> (i & 31)) & 1) out.push(i);
  return out;
}

async function writeInWorker(handle: unknown, pages: number[], value: number): Promise<void> {
  const w = new Worker(fixture('dirty-worker.mjs'), { workerData: { handle, pages, value } });
  const done = exited(w);
  expect(await inbox(w).next<{ done: number }>()).toEqual({ done: pages.length });
  await done;
}

beforeAll(() => requireBuiltDist());

for (const c of cases) {
  describe.skipIf(!c.run)(`dirty tracking with a worker: ${c.backend} ${c.kind}`, () => {
    it('returns exactly the pages the worker wrote, then nothing', async () => {
      const mem = createGuestMemoryWith(c.backend, {
        size: c.pages * (c.kind === 'hugetlb' ? 2 << 20 : 4096),
        kind: c.kind,
      });
      // populate some pages before tracking starts: they must not show up
      for (let p = 0; p < c.pages; p += 3) mem.store8(p * mem.pageSize, 1);
      const t = createDirtyTracker(mem, { mode: 'auto' });
      expect(t.mode).toBe(c.backend === 'native' ? 'kernel' : 'software');
      t.start();
      expect(bits(t.collect())).toEqual([]);
      const set = c.pages === 8 ? [0, 3, 7] : [1, 2, 3, 64, 65, 500, c.pages - 1];
      await writeInWorker(mem.handle, set, 0x1234);
      expect(bits(t.collect())).toEqual(set);
      expect(bits(t.collect())).toEqual([]);
      const second = c.pages === 8 ? [5] : [0, 31, 32, c.pages - 2];
      await writeInWorker(mem.handle, second, 7);
      const out = new Uint32Array(Math.ceil(c.pages / 32));
      expect(bits(t.collect(0, mem.size, out))).toEqual(second);
      expect(mem.load32(second[0]! * mem.pageSize + 64)).toBe(7);
      t.stop();
      mem.close();
    });
  });
}
