import { decodeCommandBody, type MigCommand, MigrationFile } from '@e2k-migrate/migration';
import { PageBitmap } from '@e2k-migrate/migration-ram';
import { ByteReader } from '@e2k-migrate/vmstate';
import { describe, expect, it } from 'vitest';
import { canonicalizeHostPages, dirtyRuns, nextClear, writeDiscards } from './discard.js';
import { dirtyFromReceived } from './recv-bitmap.js';

function bitmapOf(pages: number, set: number[]): PageBitmap {
  const b = new PageBitmap(pages);
  for (const p of set) b.set(p);
  return b;
}

/** Seeded xorshift32 for property tests. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

function commandsOf(bytes: Uint8Array): MigCommand[] {
  const r = new ByteReader(bytes);
  const out: MigCommand[] = [];
  while (!r.atEnd) {
    expect(r.u8('type')).toBe(0x08);
    out.push(decodeCommandBody(r));
  }
  return out;
}

function memoryFile(): { file: MigrationFile; bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  const file = new MigrationFile({
    writeBuffered: 0,
    async write(b) {
      chunks.push(Uint8Array.from(b));
    },
    async flush() {},
  });
  return {
    file,
    bytes() {
      file.emit();
      return Buffer.concat(chunks);
    },
  };
}

describe('discard computation', () => {
  it('nextClear and dirtyRuns find the runs across word boundaries', () => {
    const b = bitmapOf(100, [0, 1, 2, 31, 32, 33, 63, 64, 99]);
    expect(nextClear(b, 0)).toBe(3);
    expect(nextClear(b, 31)).toBe(34);
    expect(nextClear(b, 99)).toBe(100);
    expect([...dirtyRuns(b)]).toEqual([
      [0, 3],
      [31, 3],
      [63, 2],
      [99, 1],
    ]);
    expect([...dirtyRuns(new PageBitmap(70))]).toEqual([]);
    const full = new PageBitmap(70);
    full.setAll();
    expect([...dirtyRuns(full)]).toEqual([[0, 70]]);
  });

  it('canonicalisation makes every partially dirty host page wholly dirty and leaves clean ones clean', () => {
    const b = bitmapOf(2048, [5, 600, 1023, 1536]);
    const added = canonicalizeHostPages(b, 512);
    expect([...dirtyRuns(b)]).toEqual([
      [0, 1024],
      [1536, 512],
    ]);
    expect(added).toBe(1024 + 512 - 4);
    // already canonical: nothing added
    expect(canonicalizeHostPages(b, 512)).toBe(0);
    // 4 KiB pages: no-op
    const small = bitmapOf(64, [3]);
    expect(canonicalizeHostPages(small, 1)).toBe(0);
    expect(small.count()).toBe(1);
  });

  it('property: after canonicalisation every run is host-page aligned and covers every page that was dirty', () => {
    const next = rng(7);
    for (let round = 0; round < 50; round++) {
      const hp = [1, 2, 8, 512][round % 4] as number;
      const pages = hp * (1 + Math.floor(next() * 40));
      const b = new PageBitmap(pages);
      const before: number[] = [];
      for (let p = 0; p < pages; p++) {
        if (next() < 0.05) {
          b.set(p);
          before.push(p);
        }
      }
      canonicalizeHostPages(b, hp);
      for (const p of before) expect(b.get(p)).toBe(true);
      for (const [first, count] of dirtyRuns(b)) {
        expect(first % hp).toBe(0);
        expect(count % hp).toBe(0);
        // no host page in the run is clean in the original
        for (let h = first; h < first + count; h += hp) expect(before.some((p) => p >= h && p < h + hp)).toBe(true);
      }
    }
  });

  it('writes POSTCOPY_RAM_DISCARD commands in bytes, at most 12 ranges each (golden bytes)', () => {
    // 13 runs of one page each: pages 0, 2, 4, …, 24
    const b = bitmapOf(
      32,
      Array.from({ length: 13 }, (_, i) => i * 2),
    );
    const m = memoryFile();
    expect(writeDiscards(m.file, 'pc.ram', b, 4096)).toBe(13);
    const bytes = m.bytes();
    const cmds = commandsOf(bytes);
    expect(cmds.map((c) => (c.cmd === 'POSTCOPY_RAM_DISCARD' ? c.ranges.length : -1))).toEqual([12, 1]);
    const last = cmds[1] as Extract<MigCommand, { cmd: 'POSTCOPY_RAM_DISCARD' }>;
    expect(last).toEqual({
      cmd: 'POSTCOPY_RAM_DISCARD',
      version: 0,
      block: 'pc.ram',
      ranges: [{ start: 24 * 4096, length: 4096 }],
    });
    // the second command, field by field
    const tail = bytes.subarray(bytes.length - 30);
    expect(Buffer.from(tail).toString('hex')).toBe(
      [
        '08', // QEMU_VM_COMMAND
        '0006', // MIG_CMD_POSTCOPY_RAM_DISCARD
        '0019', // payload length 25 = 1 + 1 + 6 + 1 + 16 (the fixture's two-range command has 0x29)
        '00', // version 0
        '06', // name length
        Buffer.from('pc.ram').toString('hex'),
        '00', // NUL after the name
        '0000000000018000', // start 24 × 4096
        '0000000000001000', // length 4096
      ].join(''),
    );
  });

  it('property: the commands decode to exactly the dirty runs, across buffer boundaries', () => {
    const next = rng(11);
    for (let round = 0; round < 20; round++) {
      const pages = 1 + Math.floor(next() * (round === 0 ? 400_000 : 5000));
      const b = new PageBitmap(pages);
      const density = next();
      for (let p = 0; p < pages; p++) if (next() < density) b.set(p);
      const m = memoryFile();
      const n = writeDiscards(m.file, `blk${round}`, b, 4096);
      const cmds = commandsOf(m.bytes());
      const got = cmds.flatMap((c) => {
        if (c.cmd !== 'POSTCOPY_RAM_DISCARD') throw new Error(c.cmd);
        expect(c.block).toBe(`blk${round}`);
        expect(c.ranges.length).toBeGreaterThan(0);
        expect(c.ranges.length).toBeLessThanOrEqual(12);
        return c.ranges.map((r) => [r.start / 4096, r.length / 4096]);
      });
      expect(got).toEqual([...dirtyRuns(b)]);
      expect(n).toBe(got.length);
    }
  });

  it('a clean block writes no command', () => {
    const m = memoryFile();
    expect(writeDiscards(m.file, 'x', new PageBitmap(100), 4096)).toBe(0);
    expect(m.bytes().length).toBe(0);
  });
});

describe('RECV_BITMAP reload', () => {
  it('the dirty bitmap becomes the complement of the received bitmap (little-endian words), tail bits clear', () => {
    const pages = 70; // blob: ceil(70/8)=9 → 16 bytes
    const blob = new Uint8Array(16);
    for (const p of [0, 1, 9, 33, 64, 69]) blob[p >>> 3] = (blob[p >>> 3] as number) | (1 << (p & 7));
    const b = new PageBitmap(pages);
    expect(dirtyFromReceived(b, blob, 'pc.ram')).toBe(pages - 6);
    for (let p = 0; p < pages; p++) expect(b.get(p)).toBe(![0, 1, 9, 33, 64, 69].includes(p));
    expect(b.words[2]).toBe(0b011110); // pages 65..68 of word 2; 64 and 69 received, 70+ never set
  });

  it('a blob of the wrong size is a typed error naming the block', () => {
    const b = new PageBitmap(70);
    expect(() => dirtyFromReceived(b, new Uint8Array(8), 'pc.ram')).toThrow(
      expect.objectContaining({ code: 'E_BAD_RECV_BITMAP', block: 'pc.ram' }),
    );
  });
});
