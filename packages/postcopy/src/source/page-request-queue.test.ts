import { describe, expect, it } from 'vitest';
import { PostcopySourceError } from './errors.js';
import { PageRequestQueue } from './page-request-queue.js';

const MiB = 1 << 20;
const blocks = [
  { idstr: 'mem', size: 8 * MiB, hostPageSize: 2 * MiB },
  { idstr: 'pc.rom', size: 128 << 10, hostPageSize: 4096 },
];

const req = (block: string, start: number, length: number) => ({ block, start, length, rpOffset: 100 });

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PostcopySourceError);
    return (err as PostcopySourceError).code;
  }
  return undefined;
}

describe('PageRequestQueue', () => {
  it('hands out one host page at a time, in arrival order, as target page numbers', () => {
    const q = new PageRequestQueue(blocks, 4096);
    q.push(req('mem', 2 * MiB, 4 * MiB)); // host pages 1 and 2
    q.push(req('pc.rom', 0x3000, 0x2000)); // two 4 KiB pages
    expect(q.accepted).toBe(2);
    expect(q.shift()).toEqual({ block: 0, page: 512 });
    expect(q.shift()).toEqual({ block: 0, page: 1024 });
    expect(q.shift()).toEqual({ block: 1, page: 3 });
    expect(q.shift()).toEqual({ block: 1, page: 4 });
    expect(q.shift()).toBeUndefined();
    expect(q.length).toBe(0);
  });

  it('rejects unknown blocks, ranges not aligned to the block host page, empty or past-the-end ranges', () => {
    const q = new PageRequestQueue(blocks, 4096);
    expect(codeOf(() => q.push(req('pc.ram', 0, 4096)))).toBe('E_BAD_PAGE_REQUEST');
    // 4 KiB inside a 2 MiB block: QEMU's destination always asks for whole host pages
    expect(codeOf(() => q.push(req('mem', 0x1000, 2 * MiB)))).toBe('E_BAD_PAGE_REQUEST');
    expect(codeOf(() => q.push(req('mem', 0, 4096)))).toBe('E_BAD_PAGE_REQUEST');
    expect(codeOf(() => q.push(req('pc.rom', 0, 0)))).toBe('E_BAD_PAGE_REQUEST');
    expect(codeOf(() => q.push(req('pc.rom', 0x1f000, 0x2000)))).toBe('E_BAD_PAGE_REQUEST');
    expect(codeOf(() => q.push(req('mem', 6 * MiB, 4 * MiB)))).toBe('E_BAD_PAGE_REQUEST');
    expect(q.accepted).toBe(0);
    expect(q.length).toBe(0);
  });

  it('the error names the block and the offset', () => {
    const q = new PageRequestQueue(blocks, 4096);
    try {
      q.push(req('mem', 0x1000, 2 * MiB));
      expect.unreachable();
    } catch (err) {
      const e = err as PostcopySourceError;
      expect(e.block).toBe('mem');
      expect(e.offset).toBe(0x1000);
      expect(e.message).toMatch(/0x200000/);
    }
  });

  it('clear drops every queued page', () => {
    const q = new PageRequestQueue(blocks, 4096);
    q.push(req('mem', 0, 8 * MiB));
    q.shift();
    q.clear();
    expect(q.shift()).toBeUndefined();
  });
});
