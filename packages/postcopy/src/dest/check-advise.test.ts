import { describe, expect, it } from 'vitest';
import { checkAdvise } from './check-advise.js';

const advise = (pageSizeSummary?: number, targetPageSize?: number) =>
  ({ cmd: 'POSTCOPY_ADVISE', ...(pageSizeSummary !== undefined ? { pageSizeSummary, targetPageSize } : {}) }) as const;

describe('checkAdvise (QEMU loadvm_postcopy_handle_advise)', () => {
  it('accepts the summary and target page size of our own blocks', () => {
    expect(checkAdvise(advise(0x201000, 4096), 40, 0x201000)).toBe(0x201000);
    expect(checkAdvise(advise(0x1000, 4096), 40, undefined)).toBe(0x1000);
  });

  it('refuses different page sizes with both values in the message', () => {
    expect(() => checkAdvise(advise(0x201000, 4096), 40, 0x1000)).toThrow(
      /POSTCOPY_ADVISE at byte offset 40: postcopy needs matching RAM page sizes: source 0x201000, destination 0x1000/,
    );
    let err: unknown;
    try {
      checkAdvise(advise(0x1000, 16384), 7, 0x1000);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'E_POSTCOPY_ADVISE', offset: 7, record: 'command POSTCOPY_ADVISE' });
  });

  it('refuses the 0-byte form when postcopy-ram is on', () => {
    expect(() => checkAdvise(advise(), 0, undefined)).toThrow(/advised no RAM page sizes/);
  });
});
