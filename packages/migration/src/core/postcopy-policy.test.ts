import { describe, expect, it } from 'vitest';
import { PostcopyPolicy } from './postcopy-policy.js';

describe('PostcopyPolicy (x-postcopy-after-iterations, x-postcopy-stall-syncs)', () => {
  it('off by default: never fires', () => {
    const p = new PostcopyPolicy();
    for (let sync = 1; sync < 50; sync++) expect(p.observe(sync, 1000, 0, 0)).toBe(false);
    expect(p.reason).toBeUndefined();
  });

  it('after N passes: fires at sync N+1 (sync 1 is the setup) and stays fired', () => {
    const p = new PostcopyPolicy();
    expect(p.observe(1, 100, 2, 0)).toBe(false);
    expect(p.observe(2, 90, 2, 0)).toBe(false);
    expect(p.observe(3, 80, 2, 0)).toBe(true);
    expect(p.reason).toBe('x-postcopy-after-iterations=2: 2 passes sent');
    expect(p.observe(3, 80, 0, 0)).toBe(true);
  });

  it('stall: fires when the remaining bytes did not go below their minimum for K syncs in a row', () => {
    const p = new PostcopyPolicy();
    const remaining = [500, 400, 450, 420, 390, 395, 400, 391];
    const fired = remaining.map((r, i) => p.observe(i + 1, r, 0, 3));
    // minimum 390 at sync 5; 395, 400, 391 are three syncs without progress
    expect(fired).toEqual([false, false, false, false, false, false, false, true]);
    expect(p.reason).toMatch(/did not shrink for 3 syncs/);
  });

  it('the same sync observed twice counts once', () => {
    const p = new PostcopyPolicy();
    p.observe(1, 100, 0, 2);
    p.observe(2, 100, 0, 2);
    expect(p.observe(2, 100, 0, 2)).toBe(false);
    expect(p.observe(3, 100, 0, 2)).toBe(true);
  });
});
