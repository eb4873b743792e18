import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { analyzeStream, MigrationStreamError } from '@e2k-migrate/migration';
import type { FuzzResult, FuzzTarget } from './fuzz.js';
import { mutate, Rng } from './mutate.js';
import { buildStreamCorpus, type CorpusEntry } from './stream-corpus.js';

/** Per-input time bound: anything slower is reported as a hang. */
export const CASE_TIMEOUT_MS = 10_000;

/** What one analyzer run on a (mutated) input produced. */
export type CaseOutcome = { valid: true } | { valid: false; error: MigrationStreamError };

/** Thrown when an input makes the analyzer do something other than succeed or fail typed. */
export class FuzzFailure extends Error {
  readonly input: CorpusEntry;

  constructor(message: string, input: CorpusEntry, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'FuzzFailure';
    this.input = input;
  }
}

/**
 * Analyzes one input set fully (summary, RAM reconstruction, device decoding, side channels) and
 * classifies the result: success, or a MigrationStreamError with a numeric byte offset. Any other
 * exception, an error without an offset, or a run longer than the bound is a FuzzFailure.
 */
export async function analyzeCase(c: CorpusEntry, timeoutMs = CASE_TIMEOUT_MS): Promise<CaseOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FuzzFailure(`analyzer did not finish within ${timeoutMs} ms`, c)), timeoutMs);
  });
  const t0 = performance.now();
  let outcome: CaseOutcome;
  try {
    await Promise.race([
      analyzeStream({
        input: c.main,
        multifd: c.multifd,
        preempt: c.preempt,
        returnPath: c.returnPath,
        maxRam: 256 << 20,
        hashRam: false,
      }),
      timeout,
    ]);
    outcome = { valid: true };
  } catch (err) {
    if (err instanceof FuzzFailure) throw err;
    if (!(err instanceof MigrationStreamError)) {
      throw new FuzzFailure(
        `untyped ${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`,
        c,
        err,
      );
    }
    if (typeof err.offset !== 'number' || !Number.isFinite(err.offset)) {
      throw new FuzzFailure(`typed error ${err.code} without a byte offset: ${err.message}`, c, err);
    }
    outcome = { valid: false, error: err };
  } finally {
    clearTimeout(timer);
  }
  const ms = performance.now() - t0;
  if (ms > timeoutMs) throw new FuzzFailure(`analyzer took ${ms.toFixed(0)} ms`, c);
  return outcome;
}

/** Mutates one input of an entry (the main stream 3 times in 4) with 1–3 mutations. */
export function mutateEntry(rng: Rng, entry: CorpusEntry, corpus: CorpusEntry[]): { entry: CorpusEntry; what: string } {
  const out: CorpusEntry = { ...entry, multifd: entry.multifd?.slice() };
  const sides: ('preempt' | 'returnPath' | number)[] = [];
  if (entry.preempt) sides.push('preempt');
  if (entry.returnPath) sides.push('returnPath');
  entry.multifd?.forEach((_, i) => {
    sides.push(i);
  });
  const target = sides.length && rng.int(4) === 0 ? rng.pick(sides) : 'main';
  const get = (): Uint8Array =>
    target === 'main'
      ? out.main
      : typeof target === 'number'
        ? (out.multifd?.[target] as Uint8Array)
        : (out[target] as Uint8Array);
  const set = (b: Uint8Array) => {
    if (target === 'main') out.main = b;
    else if (typeof target === 'number') (out.multifd as Uint8Array[])[target] = b;
    else out[target] = b;
  };
  const steps: string[] = [];
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const r = mutate(rng, get(), rng.pick(corpus).main);
    set(r.bytes);
    steps.push(r.what);
  }
  return { entry: out, what: `${entry.name}/${String(target)}: ${steps.join(', ')}` };
}

function saveCrash(entry: CorpusEntry, tag: string): string {
  const dir = resolve(import.meta.dirname, '..', '..', 'fuzz-crashes');
  mkdirSync(dir, { recursive: true });
  const base = join(dir, tag);
  writeFileSync(`${base}.main.bin`, entry.main);
  entry.multifd?.forEach((m, i) => {
    writeFileSync(`${base}.multifd${i}.bin`, m);
  });
  if (entry.preempt) writeFileSync(`${base}.preempt.bin`, entry.preempt);
  if (entry.returnPath) writeFileSync(`${base}.rp.bin`, entry.returnPath);
  return base;
}

export const streamTarget: FuzzTarget = {
  name: 'stream',
  summary: 'mutated QEMU 7.2 streams (truncate, flip, splice...) through the full analyzer: typed error or valid parse',
  async run({ iterations, seed, log }): Promise<FuzzResult> {
    const corpus = await buildStreamCorpus();
    log(`corpus: ${corpus.map((c) => `${c.name} ${c.main.length} B`).join(', ')}`);
    for (const c of corpus) {
      const r = await analyzeCase(c);
      if (!r.valid) throw new Error(`corpus entry ${c.name} does not parse: ${r.error.message}`);
    }
    const rng = new Rng(seed);
    const result: FuzzResult = { inputs: 0, valid: 0, typedErrors: {} };
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) {
      const { entry, what } = mutateEntry(rng, rng.pick(corpus), corpus);
      let outcome: CaseOutcome;
      try {
        outcome = await analyzeCase(entry);
      } catch (err) {
        const base = saveCrash(entry, `stream-${seed}-${i}`);
        throw new Error(`input ${i} (${what}) failed: ${(err as Error).message}; saved as ${base}.*`, { cause: err });
      }
      result.inputs++;
      if (outcome.valid) result.valid++;
      else result.typedErrors[outcome.error.code] = (result.typedErrors[outcome.error.code] ?? 0) + 1;
      if ((i + 1) % 10_000 === 0) log(`${i + 1} inputs, ${((i + 1) / ((performance.now() - t0) / 1000)).toFixed(0)}/s`);
    }
    return result;
  },
};
