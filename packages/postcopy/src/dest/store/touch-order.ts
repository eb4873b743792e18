/** Orders in which the toucher reads pages. */
export const TOUCH_PATTERNS = ['random', 'ascending', 'descending'] as const;
export type TouchPattern = (typeof TOUCH_PATTERNS)[number];

/**
 * The page indices `0 … pages-1` in the toucher's order: ascending, descending, or a seeded
 * pseudo-random permutation (a multiplicative walk modulo the page count with a step coprime to
 * it), so every page is read exactly once.
 */
export function* touchOrder(pages: number, pattern: string, seed: number): Generator<number> {
  if (pattern === 'ascending') {
    for (let p = 0; p < pages; p++) yield p;
    return;
  }
  if (pattern === 'descending') {
    for (let p = pages - 1; p >= 0; p--) yield p;
    return;
  }
  let step = (Math.floor(pages * 0.618) | 1) + (seed % 7) * 2;
  while (gcd(step, pages) !== 1) step += 2;
  let p = (seed * 7919) % Math.max(pages, 1);
  for (let i = 0; i < pages; i++) {
    yield p;
    p = (p + step) % pages;
  }
}

function gcd(a: number, b: number): number {
  let x = a;
  let y = b;
  while (y !== 0) [x, y] = [y, x % y];
  return x;
}
