import { existsSync } from 'node:fs';
import { needs } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import { hugePagePool, reserveHugePages } from '../src/hugepages.js';

/**
 * Reservations in the real 2 MiB pool (root): each adds exactly what it needs and takes exactly
 * that back, so reservations held at once (this file's, the test run's own, another process's)
 * never count on each other's pages.
 */
const pool = hugePagePool();
const root = process.getuid?.() === 0;
const canReserve = needs('hugetlb', root && existsSync(pool.path), `need root and ${pool.path}`);

describe.runIf(canReserve)('huge page reservations (root)', () => {
  it('two reservations in one process add and give back exactly their pages', () => {
    const logs: string[] = [];
    const start = pool.size();
    const a = reserveHugePages(2, { log: (l) => logs.push(l) });
    expect(a.reserved).toBe(2);
    expect(a.before).toBe(start);
    expect(pool.size()).toBe(start + 2);
    const b = reserveHugePages(3, { log: (l) => logs.push(l) });
    expect(pool.size()).toBe(start + 5);
    expect(b.free).toBeGreaterThanOrEqual(3);
    expect(a.release()).toBe(start + 3);
    expect(a.release()).toBe(start + 3); // idempotent
    expect(b.release()).toBe(start);
    expect(logs[0]).toBe(
      `reserved 2 2 MiB huge pages (${pool.path} ${start} → ${start + 2}, HugePages_Free ${a.free})`,
    );
    expect(logs.at(-1)).toBe(`gave back 3 huge pages (${pool.path} ${start + 3} → ${start})`);
  });

  it('rejects a count that is not one', () => {
    expect(() => reserveHugePages(-1)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
    expect(() => reserveHugePages(1.5)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });
});
