/**
 * XBZRLE delta coding of one target page (spec §5.3): alternating maximal runs of unchanged
 * ("zero") and changed ("non-zero") bytes, lengths as small ULEB128, changed bytes verbatim;
 * the trailing unchanged run is omitted.
 */

/** Result of {@link xbzrleEncode} when the delta would not fit: the page is sent as a normal PAGE. */
export const XBZRLE_OVERFLOW = -1;

/**
 * Encodes `next` against `prev` (both `length` bytes) into `out`, following the QEMU 7.2 encoder
 * exactly, including its overflow rule with an output budget of `out.length` bytes:
 * - at the start of every (zrun, nzrun) iteration while unscanned input remains, and again before
 *   writing each nzrun length: `written + 2 > budget` → overflow;
 * - after writing the nzrun length: `written + nzrun > budget` → overflow.
 * @returns the encoded length (0 = page unchanged, nothing to send) or {@link XBZRLE_OVERFLOW}.
 */
export function xbzrleEncode(prev: Uint8Array, next: Uint8Array, out: Uint8Array, length = next.length): number {
  const budget = out.length;
  let i = 0;
  let d = 0;
  while (i < length) {
    if (d + 2 > budget) return XBZRLE_OVERFLOW;
    let zrun = 0;
    while (i < length && prev[i] === next[i]) {
      i++;
      zrun++;
    }
    if (zrun === length) return 0;
    if (i === length) return d;
    d += ulebEncode(out, d, zrun);
    if (d + 2 > budget) return XBZRLE_OVERFLOW;
    const start = i;
    while (i < length && prev[i] !== next[i]) i++;
    const nzrun = i - start;
    d += ulebEncode(out, d, nzrun);
    if (d + nzrun > budget) return XBZRLE_OVERFLOW;
    out.set(next.subarray(start, i), d);
    d += nzrun;
  }
  return d;
}

/** Why {@link xbzrleDecode} rejected its input (the decoder reports a reason, the caller the offset). */
export interface XbzrleDecodeError {
  error: string;
  /** Position in the encoded input where it failed. */
  at: number;
}

/**
 * Applies an XBZRLE delta to `page` in place (bytes not covered keep their content), with the
 * QEMU 7.2 decoder's checks: every run needs ≥ 2 input bytes left, a zero run may be 0 only at
 * input position 0, a non-zero run is ≥ 1, a second ULEB byte must not have bit 7 set, and
 * neither the page nor the input may be overrun.
 * @returns the page position after the last run, or an error description.
 */
export function xbzrleDecode(
  src: Uint8Array,
  page: Uint8Array,
  srcStart = 0,
  srcLength = src.length - srcStart,
): number | XbzrleDecodeError {
  const slen = srcLength;
  const dlen = page.length;
  let i = 0;
  let d = 0;
  while (i < slen) {
    if (slen - i < 2) return { error: 'input ends inside a zero-run length', at: i };
    const z = ulebDecode(src, srcStart + i);
    if (z < 0) return { error: 'bad ULEB128 zero-run length', at: i };
    const zrun = z >>> 2;
    if (zrun === 0 && i !== 0) return { error: 'zero-run length 0 after the first run', at: i };
    i += z & 3;
    d += zrun;
    if (d > dlen) return { error: `zero run passes the end of the ${dlen}-byte page`, at: i };
    if (slen - i < 2) return { error: 'input ends inside a non-zero run', at: i };
    const n = ulebDecode(src, srcStart + i);
    if (n < 0) return { error: 'bad ULEB128 non-zero-run length', at: i };
    const nzrun = n >>> 2;
    if (nzrun === 0) return { error: 'non-zero-run length 0', at: i };
    i += n & 3;
    if (d + nzrun > dlen) return { error: `non-zero run passes the end of the ${dlen}-byte page`, at: i };
    if (i + nzrun > slen) return { error: 'non-zero run passes the end of the input', at: i };
    page.set(src.subarray(srcStart + i, srcStart + i + nzrun), d);
    i += nzrun;
    d += nzrun;
  }
  return d;
}

/** Small ULEB128 (values < 2^14): 1 byte below 0x80, else 2 bytes. Returns bytes written. */
export function ulebEncode(out: Uint8Array, at: number, v: number): number {
  if (v < 0x80) {
    out[at] = v;
    return 1;
  }
  out[at] = (v & 0x7f) | 0x80;
  out[at + 1] = v >>> 7;
  return 2;
}

/** Decodes a small ULEB128 at `at`; returns `(value << 2) | bytesUsed`, or -1 when invalid. */
function ulebDecode(src: Uint8Array, at: number): number {
  const b0 = src[at] as number;
  if ((b0 & 0x80) === 0) return (b0 << 2) | 1;
  const b1 = src[at + 1] as number;
  if (b1 & 0x80) return -1;
  return (((b0 & 0x7f) | (b1 << 7)) << 2) | 2;
}
