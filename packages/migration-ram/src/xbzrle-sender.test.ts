import { MigrationFile, xbzrleDecode } from '@e2k-migrate/migration';
import { createGuestMemory } from '@e2k-migrate/native';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockBytes } from './ram-block.js';
import { RamCounters } from './ram-counters.js';
import { RamRecordWriter } from './ram-record-writer.js';
import { XbzrleSender } from './xbzrle-sender.js';

const TPS = 4096;
const mem = createGuestMemory({ size: 16 * TPS, name: 'x.ram' });
afterAll(() => mem.close());
const block = new BlockBytes({ idstr: 'x.ram', size: 16 * TPS, memory: mem }, TPS);
const live = block.viewAt(0);

function setup() {
  const sink = { writeBuffered: 0, bytesWritten: 0, write: async () => {}, flush: async () => {} };
  const f = new MigrationFile(sink);
  const counters = new RamCounters(0);
  const x = new XbzrleSender(16 * TPS, TPS, counters);
  const rec = new RamRecordWriter(TPS);
  const save = (page: number, gen: number, last = false) =>
    x.save(f, rec, block, page * TPS, page * TPS, live, page * TPS, gen, last);
  return { f, counters, x, save };
}

describe('XbzrleSender (QEMU 7.2 save_xbzrle_page)', () => {
  it('a miss inserts the page and sends it normally from the cache copy', () => {
    const { x, counters, save, f } = setup();
    live.fill(5, 0, TPS);
    const r = save(0, 1);
    expect(r).toBeInstanceOf(Uint8Array);
    expect((r as Uint8Array)[0]).toBe(5);
    live[0] = 6; // the guest writes after the copy: the cache keeps what was sent
    expect(x.cache.get(0)?.[0]).toBe(5);
    expect(counters.xbzrle).toMatchObject({ cacheMiss: 1, pages: 0, bytes: 0 });
    expect(f.bytesWritten).toBe(0);
  });

  it('in the last stage a miss is not inserted and the live page is sent', () => {
    const { x, save } = setup();
    expect(save(1, 1, true)).toBe('live');
    expect(x.cache.get(TPS)).toBeUndefined();
  });

  it('an unchanged hit sends nothing; a changed hit sends a delta and updates the cache', () => {
    const { x, counters, save, f } = setup();
    live.fill(0, 2 * TPS, 3 * TPS);
    save(2, 1);
    expect(save(2, 2)).toBe('skip');
    expect(f.bytesWritten).toBe(0);
    live[2 * TPS + 100] = 42;
    expect(save(2, 3)).toBe('sent');
    // record: be64 + name (first record names the block) + 01 + be16 len + delta
    const rec = f.buf.subarray(0, f.pos);
    const lenAt = 8 + 6 + 1;
    const len = (rec[lenAt] as number) * 256 + (rec[lenAt + 1] as number);
    const page = new Uint8Array(TPS);
    expect(xbzrleDecode(rec.subarray(lenAt + 2, lenAt + 2 + len), page)).toBeTypeOf('number');
    expect(page[100]).toBe(42);
    expect(x.cache.get(2 * TPS)?.[100]).toBe(42);
    expect(counters.xbzrle.pages).toBe(2); // the skipped page counts as encoded
    expect(counters.xbzrle.bytes).toBe(rec.length - 8);
  });

  it('overflow sends a normal page from the updated cache copy and counts TPS bytes', () => {
    const { x, counters, save } = setup();
    live.fill(0, 3 * TPS, 4 * TPS);
    save(3, 1);
    for (let i = 0; i < TPS; i += 2) live[3 * TPS + i] = 1;
    const r = save(3, 2);
    expect(r).toBeInstanceOf(Uint8Array);
    expect(r).toEqual(x.cache.get(3 * TPS));
    expect((r as Uint8Array)[0]).toBe(1);
    expect(counters.xbzrle.overflow).toBe(1);
    expect(counters.xbzrle.bytes).toBe(TPS);
  });

  it('in the last stage a hit does not update the cache', () => {
    const { x, save } = setup();
    live.fill(0, 4 * TPS, 5 * TPS);
    save(4, 1);
    live[4 * TPS] = 9;
    expect(save(4, 2, true)).toBe('sent');
    expect(x.cache.get(4 * TPS)?.[0]).toBe(0);
  });

  it('a page sent as ZERO replaces its stale cache entry', () => {
    const { x, save } = setup();
    live.fill(8, 5 * TPS, 6 * TPS);
    save(5, 1);
    x.cacheZero(5 * TPS, 2);
    expect(x.cache.get(5 * TPS)?.every((b) => b === 0)).toBe(true);
  });
});
