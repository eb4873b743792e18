/**
 * Zero-page detection in TypeScript (the fallback's, and the reference the native one is checked
 * against): 32-bit words OR-reduced eight at a time, stopping at the first non-zero block.
 */

/** True when `words[from, from+count)` are all zero (count a multiple of 8). */
export function isZeroWords(words: Int32Array, from: number, count: number): boolean {
  const end = from + count;
  for (let i = from; i < end; i += 64) {
    let acc = 0;
    const stop = Math.min(end, i + 64);
    for (let j = i; j < stop; j += 8) {
      acc |=
        (words[j] as number) |
        (words[j + 1] as number) |
        (words[j + 2] as number) |
        (words[j + 3] as number) |
        (words[j + 4] as number) |
        (words[j + 5] as number) |
        (words[j + 6] as number) |
        (words[j + 7] as number);
    }
    if (acc !== 0) return false;
  }
  return true;
}

/**
 * Sets bit i of `out` (zeroed by the caller) for each all-zero page i of `bytes` (page-aligned
 * start, whole pages). Returns the number of zero pages.
 */
export function zeroPageBitmap(bytes: Uint8Array, pageSize: number, out: Uint32Array, firstBit = 0): number {
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  const perPage = pageSize >>> 2;
  const pages = bytes.length / pageSize;
  let zero = 0;
  for (let p = 0; p < pages; p++) {
    if (isZeroWords(words, p * perPage, perPage)) {
      const b = firstBit + p;
      out[b >>> 5] = ((out[b >>> 5] as number) | (1 << (b & 31))) >>> 0;
      zero++;
    }
  }
  return zero;
}
