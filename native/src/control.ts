/**
 * The shared control block of a region: one SharedArrayBuffer (posted with the handle) holding the
 * mode flags, the futex words, the cooperative fault-request ring and two page bitmaps. Every
 * thread's memory API reads the flags word on each access, so switching a mode takes effect in
 * all threads without restarting them.
 *
 * | int32 index        | meaning                                                              |
 * |--------------------|----------------------------------------------------------------------|
 * | 0 FLAGS            | bit 0 dirty marking, bit 1 demand paging, bit 2 closed               |
 * | 1 INSTALL_SEQ      | bumped + notified when pages are installed (waiters sleep on it)     |
 * | 2 REQ_HEAD         | next request slot to claim (producers, Atomics.compareExchange)      |
 * | 3 REQ_TAIL         | next request slot to read (consumer); notified when a slot frees     |
 * | 4 REQ_SIGNAL       | bumped + notified when a request is published (consumer waits)      |
 * | 5 REGISTRATIONS    | cooperative userfault registrations (close refuses while > 0)        |
 * | 16..16+8*RING_CAP  | request ring: [seq, page, tid, flags, tsLo, tsHi, 0, 0] per slot      |
 * | then               | dirty bitmap (1 bit per page), then received bitmap                  |
 */
export const FLAGS = 0;
export const INSTALL_SEQ = 1;
export const REQ_HEAD = 2;
export const REQ_TAIL = 3;
export const REQ_SIGNAL = 4;
export const REGISTRATIONS = 5;

export const FLAG_DIRTY = 1;
export const FLAG_DEMAND = 2;
export const FLAG_CLOSED = 4;

export const RING_CAP = 256;
export const RING_BASE = 16;
export const SLOT_INTS = 8;

export interface ControlViews {
  /** The header and ring (Int32Array over the whole control buffer). */
  ctl: Int32Array;
  dirty: Int32Array;
  received: Int32Array;
}

/** Int32 words of a page bitmap. */
export function bitmapWords(pages: number): number {
  return Math.ceil(pages / 32);
}

export function controlBytes(pages: number): number {
  return (RING_BASE + RING_CAP * SLOT_INTS + 2 * bitmapWords(pages)) * 4;
}

export function createControl(pages: number): SharedArrayBuffer {
  return new SharedArrayBuffer(controlBytes(pages));
}

export function controlViews(sab: SharedArrayBuffer, pages: number): ControlViews {
  const words = bitmapWords(pages);
  const dirtyOff = (RING_BASE + RING_CAP * SLOT_INTS) * 4;
  return {
    ctl: new Int32Array(sab, 0, RING_BASE + RING_CAP * SLOT_INTS),
    dirty: new Int32Array(sab, dirtyOff, words),
    received: new Int32Array(sab, dirtyOff + words * 4, words),
  };
}

export function setFlag(ctl: Int32Array, flag: number, on: boolean): void {
  if (on) Atomics.or(ctl, FLAGS, flag);
  else Atomics.and(ctl, FLAGS, ~flag);
}

/** Sets (Atomics.or) or clears the bits of pages [first, first+count). */
export function setBits(bm: Int32Array, first: number, count: number, on: boolean): void {
  let p = first;
  const end = first + count;
  while (p < end) {
    const w = p >>> 5;
    const lo = p & 31;
    const n = Math.min(32 - lo, end - p);
    const mask = n === 32 ? -1 : ((1 << n) - 1) << lo;
    if (on) Atomics.or(bm, w, mask);
    else Atomics.and(bm, w, ~mask);
    p += n;
  }
}

export function testBit(bm: Int32Array, page: number): boolean {
  return (Atomics.load(bm, page >>> 5) & (1 << (page & 31))) !== 0;
}

/**
 * Atomically takes (reads and clears) the bits of pages [first, first+count) into `out` (bit i =
 * page first+i), which must be zeroed. Returns the number of set bits taken.
 */
export function takeBits(bm: Int32Array, first: number, count: number, out: Uint32Array): number {
  let taken = 0;
  let p = first;
  const end = first + count;
  while (p < end) {
    const w = p >>> 5;
    const lo = p & 31;
    const n = Math.min(32 - lo, end - p);
    const mask = n === 32 ? -1 : ((1 << n) - 1) << lo;
    const old = (n === 32 ? Atomics.exchange(bm, w, 0) : Atomics.and(bm, w, ~mask)) & mask;
    if (old !== 0) {
      const bits = (old >>> lo) >>> 0;
      taken += popcount(bits);
      const i = p - first;
      out[i >>> 5] = (out[i >>> 5] as number) | (bits << (i & 31));
      if ((i & 31) + n > 32) out[(i >>> 5) + 1] = (out[(i >>> 5) + 1] as number) | (bits >>> (32 - (i & 31)));
    }
    p += n;
  }
  return taken;
}

export function popcount(x: number): number {
  let v = x >>> 0;
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}
