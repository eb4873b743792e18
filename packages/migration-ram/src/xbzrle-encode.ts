import { ulebEncode, XBZRLE_OVERFLOW } from '@e2k-migrate/migration';

/**
 * XBZRLE encoding of `next` against `prev` into `out` (budget `out.length`), byte-identical to
 * the reference `xbzrleEncode` (QEMU 7.2's output and overflow rule, spec §5.3), but scanning
 * four bytes at a time where it can: equal words inside a zero run, and words whose four bytes
 * all differ inside a non-zero run. Pages are usually mostly unchanged, so this is what makes
 * encoding run near memory speed.
 * @returns the encoded length, 0 when the page is unchanged, or XBZRLE_OVERFLOW.
 */
export function xbzrleEncodeFast(prev: Uint8Array, next: Uint8Array, out: Uint8Array): number {
  const length = next.length;
  const budget = out.length;
  const aligned = (prev.byteOffset & 3) === 0 && (next.byteOffset & 3) === 0 && (length & 3) === 0;
  if (!aligned) return encodeBytes(prev, next, out, length, budget);
  const pw = new Int32Array(prev.buffer, prev.byteOffset, length >>> 2);
  const nw = new Int32Array(next.buffer, next.byteOffset, length >>> 2);
  let i = 0;
  let d = 0;
  while (i < length) {
    if (d + 2 > budget) return XBZRLE_OVERFLOW;
    let j = i;
    while (j < length && (j & 3) !== 0 && prev[j] === next[j]) j++;
    if ((j & 3) === 0) while (j < length && pw[j >>> 2] === nw[j >>> 2]) j += 4;
    while (j < length && prev[j] === next[j]) j++;
    const zrun = j - i;
    if (zrun === length) return 0;
    if (j === length) return d;
    d += ulebEncode(out, d, zrun);
    if (d + 2 > budget) return XBZRLE_OVERFLOW;
    const start = j;
    while (j < length && (j & 3) !== 0 && prev[j] !== next[j]) j++;
    if ((j & 3) === 0) {
      while (j < length) {
        const w = (pw[j >>> 2] as number) ^ (nw[j >>> 2] as number);
        // some byte of w is zero (an unchanged byte) → leave the word to the byte loop
        if (((w - 0x01010101) & ~w & 0x80808080) !== 0) break;
        j += 4;
      }
    }
    while (j < length && prev[j] !== next[j]) j++;
    const nzrun = j - start;
    d += ulebEncode(out, d, nzrun);
    if (d + nzrun > budget) return XBZRLE_OVERFLOW;
    out.set(next.subarray(start, j), d);
    d += nzrun;
    i = j;
  }
  return d;
}

function encodeBytes(prev: Uint8Array, next: Uint8Array, out: Uint8Array, length: number, budget: number): number {
  let i = 0;
  let d = 0;
  while (i < length) {
    if (d + 2 > budget) return XBZRLE_OVERFLOW;
    let j = i;
    while (j < length && prev[j] === next[j]) j++;
    if (j - i === length) return 0;
    if (j === length) return d;
    d += ulebEncode(out, d, j - i);
    if (d + 2 > budget) return XBZRLE_OVERFLOW;
    const start = j;
    while (j < length && prev[j] !== next[j]) j++;
    d += ulebEncode(out, d, j - start);
    if (d + (j - start) > budget) return XBZRLE_OVERFLOW;
    out.set(next.subarray(start, j), d);
    d += j - start;
    i = j;
  }
  return d;
}
