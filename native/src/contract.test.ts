import { needs } from '@e2k-migrate/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { createDirtyTracker } from './dirty-tracker.js';
import { NativeError } from './errors.js';
import { backendInfo } from './loader.js';
import { createGuestMemoryWith } from './memory.js';
import { hashBytes } from './page-hash.js';
import type { BackendName, GuestMemory, RegionKind, Userfault } from './types.js';
import { createUserfault } from './userfault.js';

/**
 * The contract: one suite, run against the native backend (when the addon is loaded) and the
 * fallback, over every region kind each can create here. Everything runs on one thread, so no
 * access below ever touches a missing page of a registered range (that would block this thread
 * on its own fault); the worker-thread tests in test/ cover blocking faults.
 */
const nativeOk = needs('native', backendInfo().name === 'native', backendInfo().reason);

function hugetlbOk(): boolean {
  if (!nativeOk) return false;
  try {
    createGuestMemoryWith('native', { size: 2 << 20, kind: 'hugetlb' }).close();
    return true;
  } catch (err) {
    return needs('hugetlb', false, (err as Error).message);
  }
}
const hugeOk = hugetlbOk();

interface Case {
  backend: BackendName;
  kind: RegionKind;
  run: boolean;
}
const cases: Case[] = [
  { backend: 'fallback', kind: 'anonymous', run: true },
  { backend: 'fallback', kind: 'hugetlb', run: true },
  { backend: 'native', kind: 'anonymous', run: nativeOk },
  { backend: 'native', kind: 'memfd', run: nativeOk },
  { backend: 'native', kind: 'hugetlb', run: hugeOk },
];

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NativeError);
    return (err as NativeError).code;
  }
  return 'no error';
}

function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function same(a: Uint8Array, b: Uint8Array): void {
  expect(a.length).toBe(b.length);
  expect(Buffer.compare(a, b)).toBe(0);
}

function bits(bm: Uint32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bm.length * 32; i++) if (((bm[i >>> 5] as number) >>> (i & 31)) & 1) out.push(i);
  return out;
}

for (const c of cases) {
  describe.skipIf(!c.run)(`GuestMemory contract: ${c.backend} ${c.kind}`, () => {
    const open: GuestMemory[] = [];
    const ufs: Userfault[] = [];
    const make = (pages = 8): GuestMemory => {
      const page = c.kind === 'hugetlb' ? 2 << 20 : 4096;
      const m = createGuestMemoryWith(c.backend, { size: pages * page, kind: c.kind, name: `contract-${c.kind}` });
      open.push(m);
      return m;
    };
    const userfault = (): Userfault => {
      const uf = createUserfault({ mode: c.backend === 'native' ? 'uffd' : 'cooperative' });
      ufs.push(uf);
      return uf;
    };
    afterEach(() => {
      const live = open.splice(0).filter((m) => !m.closed);
      for (const m of live) for (const uf of ufs) uf.unregister(m);
      for (const uf of ufs.splice(0)) uf.close();
      for (const m of live) m.close();
    });

    it('reports its shape and starts zeroed', () => {
      const m = make(4);
      expect(m.backend).toBe(c.backend);
      expect(m.kind).toBe(c.kind);
      expect(m.pageSize).toBe(c.kind === 'hugetlb' ? 2 << 20 : 4096);
      expect(m.pageCount).toBe(4);
      expect(m.size).toBe(4 * m.pageSize);
      expect(bits(m.zeroPages(0, m.size))).toEqual([0, 1, 2, 3]);
      expect(structuredClone(m.handle)).toMatchObject({ id: m.handle.id, size: m.size, backend: c.backend });
    });

    it('stores and loads every width little-endian, aligned or not', () => {
      const m = make(2);
      m.store32(0, 0x11223344);
      expect([m.load8(0), m.load8(1), m.load8(2), m.load8(3)]).toEqual([0x44, 0x33, 0x22, 0x11]);
      expect(m.load16(0)).toBe(0x3344);
      expect(m.load16(1)).toBe(0x2233);
      m.store64(16, 0x0102030405060708n);
      expect(m.load64(16)).toBe(0x0102030405060708n);
      expect(m.load32(20)).toBe(0x01020304);
      m.store64(33, 0xfedcba9876543210n);
      expect(m.load64(33)).toBe(0xfedcba9876543210n);
      expect(m.load8(33)).toBe(0x10);
      m.store16(101, 0xabcd);
      expect(m.load16(101)).toBe(0xabcd);
      m.store32(203, 0xdeadbeef);
      expect(m.load32(203)).toBe(0xdeadbeef);
      m.store8(7, 0x1ff);
      expect(m.load8(7)).toBe(0xff);
      m.store64(40, -1n);
      expect(m.load64(40)).toBe(0xffffffffffffffffn);
      const last = m.size - 8;
      m.store64(last, 0x55n);
      expect(m.load64(last)).toBe(0x55n);
    });

    it('copies bytes in and out and shares page views zero-copy', () => {
      const m = make(3);
      const data = pattern(m.pageSize + 100, 7);
      m.writeBytes(m.pageSize - 50, data);
      const back = new Uint8Array(data.length);
      m.readBytes(m.pageSize - 50, back);
      same(back, data);
      const view = m.pageView(2);
      view[5] = 0x99;
      expect(m.load8(2 * m.pageSize + 5)).toBe(0x99);
      expect(m.views().reduce((n, v) => n + v.length, 0)).toBe(m.size);
    });

    it('rejects bad addresses and arguments with typed errors', () => {
      const m = make(2);
      expect(code(() => m.load8(m.size))).toBe('E_OUT_OF_RANGE');
      expect(code(() => m.load32(m.size - 2))).toBe('E_OUT_OF_RANGE');
      expect(code(() => m.store64(m.size - 4, 1n))).toBe('E_OUT_OF_RANGE');
      expect(code(() => m.load8(-1))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => m.load16(1.5))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => m.writeBytes(m.size - 1, new Uint8Array(2)))).toBe('E_OUT_OF_RANGE');
      expect(code(() => m.pageView(2))).toBe('E_OUT_OF_RANGE');
      expect(code(() => m.zeroPages(1, m.pageSize))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => m.zeroPages(0, m.size + m.pageSize))).toBe('E_OUT_OF_RANGE');
      expect(code(() => m.hash(0, m.size + 1))).toBe('E_OUT_OF_RANGE');
      const ps = m.pageSize;
      expect(code(() => createGuestMemoryWith(c.backend, { size: 0, kind: c.kind }))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => createGuestMemoryWith(c.backend, { size: ps + 1, kind: c.kind }))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => createGuestMemoryWith(c.backend, { size: -ps, kind: c.kind }))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => createGuestMemoryWith(c.backend, { size: ps, kind: 'tmpfs' as RegionKind }))).toBe(
        'E_INVALID_ARGUMENT',
      );
    });

    it('detects zero pages in one call and hashes pages like hashBytes', () => {
      const m = make(8);
      m.store8(1 * m.pageSize + 17, 1);
      m.store8(6 * m.pageSize + m.pageSize - 1, 2);
      m.store64(3 * m.pageSize, 0n); // a written zero keeps the page zero
      expect(bits(m.zeroPages(0, m.size))).toEqual([0, 2, 3, 4, 5, 7]);
      expect(bits(m.zeroPages(m.pageSize, 4 * m.pageSize))).toEqual([1, 2, 3]);
      const page = new Uint8Array(m.pageSize);
      m.readBytes(m.pageSize, page);
      expect(m.hash(m.pageSize, m.pageSize)).toBe(hashBytes(page));
      expect(m.hash(0, m.pageSize)).toBe(hashBytes(new Uint8Array(m.pageSize)));
      expect(m.hash(0, m.pageSize)).not.toBe(m.hash(m.pageSize, m.pageSize));
    });

    it('collects exactly the written pages, then nothing', () => {
      const m = make(16);
      const t = createDirtyTracker(m, { mode: c.backend === 'native' ? 'kernel' : 'software' });
      expect(t.mode).toBe(c.backend === 'native' ? 'kernel' : 'software');
      t.start();
      for (const p of [0, 3, 4, 9, 15]) m.store32(p * m.pageSize + 8, 0xabc);
      m.writeBytes(11 * m.pageSize - 2, new Uint8Array([1, 2, 3, 4])); // pages 10 and 11
      expect(bits(t.collect())).toEqual([0, 3, 4, 9, 10, 11, 15]);
      expect(bits(t.collect())).toEqual([]);
      m.store8(5 * m.pageSize, 1);
      m.store8(12 * m.pageSize, 1);
      expect(bits(t.collect(4 * m.pageSize, 4 * m.pageSize))).toEqual([1]); // page 5 of [4, 8)
      expect(bits(t.collect())).toEqual([12]);
      expect(code(() => t.collect(1, m.pageSize))).toBe('E_INVALID_ARGUMENT');
      t.stop();
      expect(t.tracking).toBe(false);
      expect(code(() => t.collect())).toBe('E_NOT_TRACKING');
    });

    it('installs pages into a registered range: copy, batch, zero page, discard', () => {
      const m = make(8);
      const ps = m.pageSize;
      m.store8(7 * ps, 9); // present before registration: never faults, never replaced
      const uf = userfault();
      expect(uf.backend).toBe(c.backend === 'native' ? 'uffd' : 'cooperative');
      uf.register(m);
      const a = pattern(ps, 1);
      expect(uf.copy(m, 0, a)).toBe(ps);
      expect(code(() => uf.copy(m, 0, a))).toBe('E_ALREADY_PLACED');
      expect(code(() => uf.copy(m, 7 * ps, a))).toBe('E_ALREADY_PLACED');
      const batch = pattern(3 * ps, 2);
      // pages 2, 3 contiguous (one UFFDIO_COPY), 5 alone, 0 already present (skipped)
      expect(uf.copyPages(m, [2 * ps, 3 * ps, 5 * ps, 0], new Uint8Array([...batch, ...a]), { wake: false })).toBe(
        3 * ps,
      );
      uf.wake(m, 2 * ps, 4 * ps);
      expect(uf.zeroPage(m, ps, ps)).toBe(ps);
      const got = new Uint8Array(ps);
      m.readBytes(0, got);
      same(got, a);
      m.readBytes(5 * ps, got);
      same(got, batch.subarray(2 * ps));
      expect(m.hash(2 * ps, 2 * ps)).toBe(hashBytes(batch.subarray(0, 2 * ps)));
      expect(bits(m.zeroPages(0, 2 * ps))).toEqual([1]);
      expect(m.load8(7 * ps)).toBe(9);
      uf.discard(m, 0, ps); // missing again: a new copy is accepted
      const b = pattern(ps, 3);
      expect(uf.copy(m, 0, b)).toBe(ps);
      m.readBytes(0, got);
      same(got, b);
    });

    it('validates userfault arguments before any system call', () => {
      const m = make(4);
      const ps = m.pageSize;
      const uf = userfault();
      uf.register(m, { offset: 0, length: 2 * ps });
      expect(code(() => uf.register(m, { offset: 1, length: ps }))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => uf.register(m, { offset: 0, length: 5 * ps }))).toBe('E_OUT_OF_RANGE');
      expect(code(() => uf.copy(m, 1, new Uint8Array(ps)))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => uf.copy(m, 0, new Uint8Array(ps - 1)))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => uf.copy(m, 4 * ps, new Uint8Array(ps)))).toBe('E_OUT_OF_RANGE');
      expect(code(() => uf.copy(m, 0, [1, 2] as unknown as Uint8Array))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => uf.copyPages(m, [0, ps], new Uint8Array(ps)))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => uf.copyPages(m, [ps + 8], new Uint8Array(ps)))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => uf.zeroPage(m, 0, 0))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => uf.wake(m, 0, 3 * ps + 1))).toBe('E_INVALID_ARGUMENT');
      expect(code(() => m.close())).toBe('E_BUSY');
      expect(m.closed).toBe(false);
      expect(code(() => uf.close())).toBe('E_BUSY');
      uf.unregister(m);
      uf.close();
      ufs.length = 0;
      m.close();
      expect(code(() => uf.copy(m, 0, new Uint8Array(ps)))).toBe('E_INVALID_ARGUMENT');
    });

    it('throws E_CLOSED after close or detach, never touching the memory', () => {
      const m = make(2);
      m.store8(0, 1);
      m.close();
      m.close(); // idempotent
      expect(m.closed).toBe(true);
      expect(code(() => m.load8(0))).toBe('E_CLOSED');
      expect(code(() => m.store32(0, 1))).toBe('E_CLOSED');
      expect(code(() => m.load64(8))).toBe('E_CLOSED');
      expect(code(() => m.zeroPages(0, m.pageSize))).toBe('E_CLOSED');
      expect(code(() => m.hash(0, 1))).toBe('E_CLOSED');
      expect(code(() => m.views())).toBe('E_CLOSED');
      expect(code(() => createDirtyTracker(m).start())).toBe('E_CLOSED');
      expect(code(() => userfault().register(m))).toBe('E_CLOSED');
      open.length = 0;
      const d = createGuestMemoryWith(c.backend, { size: m.pageSize, kind: c.kind });
      d.detach();
      expect(d.closed).toBe(false);
      expect(code(() => d.load8(0))).toBe('E_CLOSED');
    });
  });
}
