import { createGuestMemoryWith, HUGE_PAGE } from '@e2k-migrate/native';
import { describe, expect, it } from 'vitest';
import { PostcopyBlock } from './postcopy-block.js';
import { PostcopyProtocolError } from './postcopy-protocol-error.js';
import { PostcopyTmpPage } from './postcopy-tmp-page.js';

// The fallback backend sizes hugetlb regions in 2 MiB pages without reserving huge pages.
const hugeBlock = () =>
  new PostcopyBlock(0, {
    name: 'mem',
    memory: createGuestMemoryWith('fallback', { size: 2 * HUGE_PAGE, kind: 'hugetlb' }),
  });
const smallBlock = () =>
  new PostcopyBlock(1, { name: 'ram', memory: createGuestMemoryWith('fallback', { size: 1 << 20 }) });
const where = { offset: 1234, section: 'ram (2)' };
const data = (v: number) => new Uint8Array(4096).fill(v);

describe('PostcopyTmpPage', () => {
  it('assembles a huge page from its 512 target pages in any order, then is reset', () => {
    const b = hugeBlock();
    const t = new PostcopyTmpPage(0, HUGE_PAGE);
    const order = Array.from({ length: 512 }, (_, i) => (i * 7) % 512);
    order.forEach((i, n) => {
      const complete = t.add(b, HUGE_PAGE + i * 4096, i % 2 ? data(i & 0xff) : undefined, 0, where);
      expect(complete).toBe(n === 511);
    });
    expect(t.hostAddr).toBe(HUGE_PAGE);
    expect(t.allZero).toBe(false);
    const page = t.hostPage;
    expect(page.length).toBe(HUGE_PAGE);
    expect(page[3 * 4096]).toBe(3);
    expect(page[2 * 4096]).toBe(0);
    t.reset();
    expect(t.busy).toBe(false);
    expect(t.allZero).toBe(true);
  });

  it('stays all-zero for ZERO records with fill 0 and fills the buffer for huge pages', () => {
    const b = hugeBlock();
    const t = new PostcopyTmpPage(1, HUGE_PAGE);
    t.tmpHugePage.fill(0xee);
    for (let i = 0; i < 511; i++) expect(t.add(b, i * 4096, undefined, 0, where)).toBe(false);
    expect(t.add(b, 511 * 4096, undefined, 0, where)).toBe(true);
    expect(t.allZero).toBe(true);
    expect(t.hostPage.every((x) => x === 0)).toBe(true);
  });

  it('a non-zero fill byte clears allZero (QEMU 7.2 memsets it)', () => {
    const b = smallBlock();
    const t = new PostcopyTmpPage(0, 4096);
    expect(t.add(b, 8192, undefined, 0x5a, where)).toBe(true);
    expect(t.allZero).toBe(false);
    expect(t.hostPage.every((x) => x === 0x5a)).toBe(true);
  });

  it('a 4 KiB PAGE completes at once and is not copied into the buffer (placed from the record)', () => {
    const b = smallBlock();
    const t = new PostcopyTmpPage(0, 4096);
    expect(t.add(b, 4096, data(9), 0, where)).toBe(true);
    expect(t.allZero).toBe(false);
    expect(t.tmpHugePage[0]).toBe(0);
  });

  it('rejects a record for another host page (or block) before the current one is complete', () => {
    const b = hugeBlock();
    const other = new PostcopyBlock(2, {
      name: 'other',
      memory: createGuestMemoryWith('fallback', { size: HUGE_PAGE, kind: 'hugetlb' }),
    });
    const t = new PostcopyTmpPage(1, HUGE_PAGE);
    t.add(b, 0, data(1), 0, where);
    const e = catchErr(() => t.add(b, HUGE_PAGE, data(1), 0, { offset: 99, section: 'ram (2)' }));
    expect(e).toBeInstanceOf(PostcopyProtocolError);
    expect(e).toMatchObject({
      code: 'E_POSTCOPY_HOST_PAGE',
      channelIndex: 1,
      channel: 'preempt',
      block: 'mem',
      hostOffset: 0,
      pageOffset: HUGE_PAGE,
      offset: 99,
      section: 'ram (2)',
    });
    expect(catchErr(() => t.add(other, 4096, data(1), 0, where))).toMatchObject({
      code: 'E_POSTCOPY_HOST_PAGE',
      block: 'other',
    });
  });

  it('rejects a target page sent twice inside one host page', () => {
    const b = hugeBlock();
    const t = new PostcopyTmpPage(0, HUGE_PAGE);
    t.add(b, 4096, data(1), 0, where);
    expect(catchErr(() => t.add(b, 4096, data(2), 0, where)).message).toMatch(
      /page 0x1000 of block "mem" arrives twice/,
    );
  });
});

function catchErr(fn: () => unknown): Error & Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  throw new Error('no error');
}
