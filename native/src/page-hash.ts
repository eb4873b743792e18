/**
 * The e2k page hash (64-bit, non-cryptographic, for verification): two MurmurHash3-style 32-bit
 * lanes over the input as little-endian 32-bit words (even words feed lane 1, odd words lane 2;
 * the input is zero-padded to a multiple of 8 bytes), each lane then xor'ed with the length
 * (lane 1 the low 32 bits, lane 2 the high), cross-added, finalized with MurmurHash3's fmix32 and
 * cross-added again; the result is `lane2 << 32 | lane1`.
 * Lane seeds 0x243f6a88 / 0x85a308d3, round constants 0xcc9e2d51 / 0x1b873593 (MurmurHash3).
 * core/page_ops.cc implements the same function; the differential test checks they agree.
 */
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function round(h: number, k0: number): number {
  let k = Math.imul(k0, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  let x = h ^ k;
  x = (x << 13) | (x >>> 19);
  return (Math.imul(x, 5) + 0xe6546b64) | 0;
}

function fmix(h0: number): number {
  let h = h0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** The 64-bit e2k page hash of `bytes` (see the module comment for the exact algorithm). */
export function hashBytes(bytes: Uint8Array): bigint {
  let h1 = 0x243f6a88 | 0;
  let h2 = 0x85a308d3 | 0;
  const len = bytes.length;
  const whole = len - (len % 8);
  if (bytes.byteOffset % 4 === 0 && whole > 0) {
    const w = new Int32Array(bytes.buffer, bytes.byteOffset, whole >>> 2);
    for (let i = 0; i < w.length; i += 2) {
      h1 = round(h1, w[i] as number);
      h2 = round(h2, w[i + 1] as number);
    }
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, len);
    for (let i = 0; i < whole; i += 8) {
      h1 = round(h1, dv.getInt32(i, true));
      h2 = round(h2, dv.getInt32(i + 4, true));
    }
  }
  if (whole < len) {
    const tail = new Uint8Array(8);
    tail.set(bytes.subarray(whole));
    const dv = new DataView(tail.buffer);
    h1 = round(h1, dv.getInt32(0, true));
    h2 = round(h2, dv.getInt32(4, true));
  }
  h1 ^= len >>> 0;
  h2 ^= Math.floor(len / 2 ** 32) >>> 0;
  h1 = (h1 + h2) | 0;
  h2 = (h2 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 = (h1 + h2) | 0;
  h2 = (h2 + h1) | 0;
  return (BigInt(h2 >>> 0) << 32n) | BigInt(h1 >>> 0);
}
