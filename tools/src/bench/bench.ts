/** One benchmark suite run by `pnpm bench NAME`. */
export interface Bench {
  name: string;
  /** One line for `pnpm bench --help`. */
  summary: string;
  /**
   * Runs the measurements (progress to stderr) and returns the markdown section for
   * BENCHMARKS.md: a table of figures with their ratios against the physical limit and against
   * QEMU, all measured in this same run.
   */
  run(opts: BenchOptions): Promise<string>;
}

export interface BenchOptions {
  /** Shorter runs for smoke checks (`pnpm bench NAME --quick`). */
  quick: boolean;
  log: (line: string) => void;
}

/** Median of a sample (sorted copy). */
export function median(xs: number[]): number {
  return percentile(xs, 50);
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] as number;
}

/** Runs fn `reps` times and returns the per-run seconds. */
export async function timeRuns(reps: number, fn: () => Promise<void> | void): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

/** memcpy throughput in GB/s of `bytes`-sized copies (Uint8Array.set), the physical reference. */
export function memcpyGBps(bytes = 64 << 20, reps = 8): number {
  const a = new Uint8Array(bytes);
  const b = new Uint8Array(bytes);
  for (let i = 0; i < a.length; i += 4096) a[i] = i & 0xff;
  b.set(a);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) b.set(a);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return (bytes * reps) / s / 1e9;
}
