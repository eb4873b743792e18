import { mutate, Rng } from './mutate.js';

/** One fuzz target run by `pnpm fuzz NAME`. */
export interface FuzzTarget {
  name: string;
  summary: string;
  /**
   * Feeds `iterations` mutated inputs to the code under test. Returns counts; throws (with the
   * offending input saved under tools/fuzz-crashes/) when an input produces anything other than a
   * typed error or a valid result, or takes longer than the per-input time bound.
   */
  run(opts: { iterations: number; seed: number; log: (line: string) => void }): Promise<FuzzResult>;
}

export interface FuzzResult {
  inputs: number;
  valid: number;
  typedErrors: Record<string, number>;
}

/** One named seed input of a fuzz corpus. */
export interface CorpusEntry {
  name: string;
  bytes: Uint8Array;
}

/**
 * The mutation loop shared by byte-stream targets: every corpus entry must first give
 * `'valid'`; then `iterations` inputs, each 1–3 mutations (byte flips, truncations, splices with
 * another entry) of a random entry, go to `runCase`, which returns `'valid'` or the typed error's
 * code and throws on anything else (the thrown error names the input and its mutations).
 */
export async function mutationLoop(
  corpus: readonly CorpusEntry[],
  runCase: (bytes: Uint8Array) => Promise<string>,
  opts: { iterations: number; seed: number; log: (line: string) => void; logEvery?: number },
): Promise<FuzzResult> {
  for (const c of corpus) {
    const r = await runCase(c.bytes);
    if (r !== 'valid') throw new Error(`corpus entry ${c.name} is not handled cleanly: ${r}`);
  }
  opts.log(`corpus: ${corpus.map((c) => `${c.name} ${c.bytes.length} B`).join(', ')}`);
  const rng = new Rng(opts.seed);
  const result: FuzzResult = { inputs: 0, valid: 0, typedErrors: {} };
  for (let i = 0; i < opts.iterations; i++) {
    const base = rng.pick(corpus);
    let bytes = base.bytes;
    const steps: string[] = [];
    for (let k = 1 + rng.int(3); k > 0; k--) {
      const m = mutate(rng, bytes, rng.pick(corpus).bytes);
      bytes = m.bytes;
      steps.push(m.what);
    }
    let r: string;
    try {
      r = await runCase(bytes);
    } catch (err) {
      throw new Error(`input ${i} (${base.name}: ${steps.join(', ')}) failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    result.inputs++;
    if (r === 'valid') result.valid++;
    else result.typedErrors[r] = (result.typedErrors[r] ?? 0) + 1;
    if ((i + 1) % (opts.logEvery ?? 2000) === 0) opts.log(`${i + 1} inputs`);
  }
  return result;
}
