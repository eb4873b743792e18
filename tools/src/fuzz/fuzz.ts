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
