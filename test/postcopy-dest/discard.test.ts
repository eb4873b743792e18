import { type PostcopyReceived, PostcopyStoreReceiver } from '@e2k-migrate/postcopy';
import { needs } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import { hugetlbAvailable, uffdAvailable } from './support.js';
import { page, type SynthRecord, SynthStream, serveOverTcp } from './synthetic-stream.js';

const uffd = uffdAvailable();
const huge = hugetlbAvailable();
const KiB4 = 4096;
const MiB2 = 2 << 20;

/** Receives `main` (and `preempt`) over TCP with no toucher; returns the block bytes by name. */
async function receive(
  main: Uint8Array,
  mode: 'uffd' | 'cooperative',
  preempt?: Uint8Array,
): Promise<{ got: PostcopyReceived; ram(name: string): Uint8Array }> {
  const r = new PostcopyStoreReceiver({ userfault: mode, toucher: false, preempt: preempt !== undefined });
  const link = await serveOverTcp(main, preempt ? { preempt } : {});
  const got = await r.receive(link.dst.main, link.dst.preempt);
  await link.sent;
  return {
    got,
    ram: (name) => {
      const b = got.blocks.find((x) => x.name === name);
      if (!b) throw new Error(`no block ${name}`);
      return b.memory.pageView(0, b.size / KiB4).slice();
    },
  };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
const at = (ram: Uint8Array, pageIndex: number) => ram.subarray(pageIndex * KiB4, (pageIndex + 1) * KiB4);

const modes = [
  { mode: 'uffd' as const, ok: () => needs('uffd', uffd.ok, uffd.reason) },
  { mode: 'cooperative' as const, ok: () => true },
];

describe.each(modes)('discard correctness ($mode)', ({ mode, ok }) => {
  it.runIf(ok())(
    '4 KiB pages: a discarded page re-sent ends with the new content, one not re-sent reads zero',
    async () => {
      const precopy: SynthRecord[] = Array.from({ length: 8 }, (_, i) => ({
        block: 'ram',
        offset: i * KiB4,
        data: page(0x11, i),
      }));
      const s = new SynthStream()
        .start({ blocks: [{ name: 'ram', size: 64 * KiB4 }] })
        .part(precopy)
        .discard('ram', [
          { start: 1 * KiB4, length: 2 * KiB4 },
          { start: 5 * KiB4, length: KiB4 },
        ])
        .switchover()
        .part([
          { block: 'ram', offset: 1 * KiB4, data: page(0x22, 1) },
          { block: 'ram', offset: 5 * KiB4, zero: 0 },
          // received in precopy, never discarded: the received bitmap refuses a second placement
          { block: 'ram', offset: 6 * KiB4, data: page(0x33, 6) },
        ])
        .end();
      const { got, ram } = await receive(s.bytes(), mode);
      try {
        const r = ram('ram');
        expect(at(r, 0)).toEqual(page(0x11, 0));
        expect(at(r, 1)).toEqual(page(0x22, 1));
        expect(at(r, 2)).toEqual(new Uint8Array(KiB4)); // discarded, never re-sent
        expect(at(r, 3)).toEqual(page(0x11, 3));
        expect(at(r, 5)).toEqual(new Uint8Array(KiB4)); // discarded, re-sent as a zero page
        expect(at(r, 6)).toEqual(page(0x11, 6));
        expect(at(r, 7)).toEqual(page(0x11, 7));
        expect(at(r, 9)).toEqual(new Uint8Array(KiB4)); // never sent at all
        const q = got.query as Record<string, unknown>;
        expect(q['x-postcopy-discarded-bytes']).toBe(3 * KiB4);
        expect(q['x-postcopy-pages']).toMatchObject({ copied: 1, zero: 1, duplicates: 1, alreadyPlaced: 0 });
        expect(q['x-postcopy-backend']).toBe(mode);
      } finally {
        got.close();
      }
    },
  );

  it.runIf(ok() && needs('hugetlb', huge.ok, huge.reason))(
    '2 MiB pages: a discarded huge page is re-assembled whole (main and preempt channel), one not re-sent reads zero',
    async () => {
      const blocks = [{ name: 'mem', size: 3 * MiB2, pageSize: MiB2 }];
      const huge = (hp: number, v: number): SynthRecord[] =>
        Array.from({ length: 512 }, (_, i) =>
          i % 3 === 0
            ? { block: 'mem', offset: hp * MiB2 + i * KiB4, zero: 0 }
            : { block: 'mem', offset: hp * MiB2 + i * KiB4, data: page(v, i) },
        );
      const s = new SynthStream()
        .start({ blocks })
        .part([...huge(0, 0x11), ...huge(1, 0x11), ...huge(2, 0x11)])
        .discard('mem', [{ start: 0, length: 3 * MiB2 }])
        .switchover()
        .part(huge(0, 0x44))
        .end();
      const pre = new SynthStream().preempt(huge(2, 0x55));
      const { got, ram } = await receive(s.bytes(), mode, pre);
      try {
        const r = ram('mem');
        const zero = new Uint8Array(KiB4);
        const wrong: string[] = [];
        for (let i = 0; i < 512; i++) {
          if (!same(at(r, i), i % 3 === 0 ? zero : page(0x44, i))) wrong.push(`hp0 page ${i}`);
          if (!same(at(r, 512 + i), zero)) wrong.push(`hp1 page ${i}`); // discarded, not re-sent
          if (!same(at(r, 1024 + i), i % 3 === 0 ? zero : page(0x55, i))) wrong.push(`hp2 page ${i}`);
        }
        expect(wrong).toEqual([]);
        expect(got.blocks[0]?.pageSize).toBe(MiB2);
        const q = got.query as Record<string, unknown>;
        expect(q['x-postcopy-discarded-bytes']).toBe(3 * MiB2);
        expect(q['x-postcopy-pages']).toMatchObject({
          copied: 2,
          zero: 0,
          duplicates: 0,
          alreadyPlaced: 0,
          bytes: 2 * MiB2,
        });
      } finally {
        got.close();
      }
    },
  );
});
