import { needs } from '@e2k-migrate/test-support';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDirtyTracker } from './dirty-tracker.js';
import { backendInfo, nativeAddon } from './loader.js';
import { createGuestMemoryWith } from './memory.js';
import { hashBytes } from './page-hash.js';
import { createUserfault } from './userfault.js';
import { zeroPageBitmap } from './zero-pages.js';

/**
 * Differential: the native backend and the fallback get the same inputs and must agree — the
 * page hash and zero detection on random bytes, and random store/copy sequences on two regions
 * (bytes, zero bitmaps, hashes, dirty sets from kernel tracking vs the software bitmap).
 */
const nativeOk = needs('native', backendInfo().name === 'native', backendInfo().reason);

describe.skipIf(!nativeOk)('native and fallback agree', () => {
  it('hashBytes: C++ and TypeScript give the same 64-bit hash for any input', () => {
    const addon = nativeAddon()!;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(7), (bytes, shift) => {
        const view = new Uint8Array(bytes.length + shift);
        view.set(bytes, shift);
        const sub = view.subarray(shift);
        expect(hashBytes(sub)).toBe(addon.hashBytes(sub));
      }),
      { numRuns: 300 },
    );
    const page = new Uint8Array(4096).map((_, i) => (i * 31) & 0xff);
    expect(hashBytes(page)).toBe(addon.hashBytes(page));
  });

  it('random memory sequences produce the same bytes, zero pages, hashes and dirty sets', () => {
    const pages = 64;
    const op = fc.oneof(
      fc.record({ t: fc.constant('s8' as const), a: fc.nat(pages * 4096 - 1), v: fc.nat(255) }),
      fc.record({ t: fc.constant('s32' as const), a: fc.nat(pages * 4096 - 4), v: fc.nat(0xffffffff) }),
      fc.record({
        t: fc.constant('s64' as const),
        a: fc.nat(pages * 4096 - 8),
        v: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      }),
      fc.record({
        t: fc.constant('bytes' as const),
        a: fc.nat(pages * 4096 - 600),
        v: fc.uint8Array({ minLength: 1, maxLength: 600 }),
      }),
      fc.record({ t: fc.constant('collect' as const), a: fc.constant(0), v: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const nat = createGuestMemoryWith('native', { size: pages * 4096, kind: 'memfd' });
        const sw = createGuestMemoryWith('fallback', { size: pages * 4096 });
        const tn = createDirtyTracker(nat, { mode: 'kernel' });
        const ts = createDirtyTracker(sw, { mode: 'software' });
        tn.start();
        ts.start();
        try {
          for (const o of ops) {
            for (const m of [nat, sw]) {
              if (o.t === 's8') m.store8(o.a, o.v as number);
              else if (o.t === 's32') m.store32(o.a, o.v as number);
              else if (o.t === 's64') m.store64(o.a, o.v as bigint);
              else if (o.t === 'bytes') m.writeBytes(o.a, o.v as Uint8Array);
            }
            if (o.t === 'collect') expect([...tn.collect()]).toEqual([...ts.collect()]);
          }
          expect([...tn.collect()]).toEqual([...ts.collect()]);
          expect([...nat.zeroPages(0, nat.size)]).toEqual([...sw.zeroPages(0, sw.size)]);
          expect(nat.hash(0, nat.size)).toBe(sw.hash(0, sw.size));
          expect(Buffer.compare(nat.views()[0]!, sw.views()[0]!)).toBe(0);
          const ref = new Uint32Array(2);
          zeroPageBitmap(sw.views()[0]!, 4096, ref);
          expect([...ref]).toEqual([...nat.zeroPages(0, nat.size)]);
        } finally {
          tn.stop();
          ts.stop();
          nat.close();
          sw.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it('batched installs agree: same bytes copied, same pages skipped as already present', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat(31), { minLength: 1, maxLength: 20 }),
        fc.uniqueArray(fc.nat(31), { maxLength: 6 }),
        (install, pre) => {
          const nat = createGuestMemoryWith('native', { size: 32 * 4096, kind: 'anonymous' });
          const sw = createGuestMemoryWith('fallback', { size: 32 * 4096 });
          const un = createUserfault({ mode: 'uffd' });
          const us = createUserfault({ mode: 'cooperative' });
          for (const m of [nat, sw]) for (const p of pre) m.store8(p * 4096 + 1, 0xee); // present before registering
          un.register(nat);
          us.register(sw);
          const src = new Uint8Array(install.length * 4096).map((_, i) => (i * 7 + 1) & 0xff);
          const offsets = install.map((p) => p * 4096);
          try {
            expect(un.copyPages(nat, offsets, src, { wake: false })).toBe(
              us.copyPages(sw, offsets, src, { wake: false }),
            );
            const placed = [...new Set([...install, ...pre])];
            for (const p of placed) expect(nat.hash(p * 4096, 4096)).toBe(sw.hash(p * 4096, 4096));
          } finally {
            un.unregister(nat);
            us.unregister(sw);
            un.close();
            us.close();
            nat.close();
            sw.close();
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});
