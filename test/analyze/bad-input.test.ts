import { MigrationStreamError } from '@e2k-migrate/migration';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../tools/src/fuzz/mutate.js';
import { analyzeCase, mutateEntry } from '../../tools/src/fuzz/stream.js';
import { buildStreamCorpus, type CorpusEntry } from '../../tools/src/fuzz/stream-corpus.js';

/**
 * Truncated, byte-flipped and spliced real streams must give a valid parse or a typed error with
 * a byte offset — never another exception or a hang (analyzeCase enforces all three).
 */
describe('bad input', () => {
  let corpus: CorpusEntry[];
  beforeAll(async () => {
    corpus = await buildStreamCorpus();
  }, 60_000);

  it('the corpus itself parses', async () => {
    for (const c of corpus) expect(await analyzeCase(c)).toEqual({ valid: true });
  });

  it('truncation at many offsets of every input: typed E_TRUNCATED-like errors at or before the cut', async () => {
    const codes = new Map<string, number>();
    for (const c of corpus) {
      const n = c.main.length;
      const cuts = new Set<number>([0, 1, 7, 8, 9, n - 1, n - 2]);
      for (let i = 0; i < 60; i++) cuts.add(Math.floor((n * i) / 60));
      for (const cut of cuts) {
        const r = await analyzeCase({ ...c, main: c.main.subarray(0, cut) });
        expect(r.valid).toBe(false);
        if (!r.valid) {
          expect(r.error.offset).toBeLessThanOrEqual(cut);
          codes.set(r.error.code, (codes.get(r.error.code) ?? 0) + 1);
        }
      }
    }
    expect(codes.get('E_TRUNCATED')).toBeGreaterThan(100);
  });

  it('every single-byte flip in the structural prefix of each stream', async () => {
    for (const c of corpus) {
      const limit = Math.min(c.main.length, 200);
      for (let at = 0; at < limit; at++) {
        const b = new Uint8Array(c.main);
        b[at] = (b[at] as number) ^ 0xff;
        const r = await analyzeCase({ ...c, main: b });
        if (!r.valid) expect(r.error).toBeInstanceOf(MigrationStreamError);
      }
    }
  });

  it('splices of two streams at random points', async () => {
    const rng = new Rng(2024);
    for (let i = 0; i < 150; i++) {
      const a = rng.pick(corpus);
      const b = rng.pick(corpus);
      const main = new Uint8Array([
        ...a.main.subarray(0, rng.int(a.main.length)),
        ...b.main.subarray(rng.int(b.main.length)),
      ]);
      const r = await analyzeCase({ ...a, main });
      if (!r.valid) expect(typeof r.error.offset).toBe('number');
    }
  });

  it('3,000 seeded random mutations (the fuzz target, deterministic)', async () => {
    const rng = new Rng(7);
    const seen = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const { entry } = mutateEntry(rng, rng.pick(corpus), corpus);
      const r = await analyzeCase(entry);
      const k = r.valid ? 'valid' : r.error.code;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    // The mutations reach valid parses as well as many distinct typed errors.
    expect(seen.get('valid')).toBeGreaterThan(100);
    expect(seen.size).toBeGreaterThan(10);
  });
});
