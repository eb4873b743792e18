import { RamError } from './errors.js';

/**
 * A bitmap of pages (bit i = page i), stored as 32-bit words so it can be shared with other
 * threads (backed by a SharedArrayBuffer when asked) and filled directly from the native dirty
 * tracker's output, which uses the same layout: word `i >>> 5`, bit `i & 31`.
 */
export class PageBitmap {
  readonly pages: number;
  readonly words: Uint32Array;

  constructor(pages: number, opts: { shared?: boolean; words?: Uint32Array } = {}) {
    if (!Number.isSafeInteger(pages) || pages < 0) {
      throw new RamError('E_RAM_BAD_ARGUMENT', `page count ${pages} is not a non-negative integer`);
    }
    const n = (pages + 31) >>> 5;
    if (opts.words) {
      if (opts.words.length < n)
        throw new RamError('E_RAM_BAD_ARGUMENT', `bitmap needs ${n} words, got ${opts.words.length}`);
      this.words = opts.words;
    } else {
      this.words = opts.shared ? new Uint32Array(new SharedArrayBuffer(n * 4)) : new Uint32Array(n);
    }
    this.pages = pages;
  }

  get(i: number): boolean {
    return ((this.words[i >>> 5] as number) & (1 << (i & 31))) !== 0;
  }

  set(i: number): void {
    this.words[i >>> 5] = (this.words[i >>> 5] as number) | (1 << (i & 31));
  }

  clear(i: number): void {
    this.words[i >>> 5] = (this.words[i >>> 5] as number) & ~(1 << (i & 31));
  }

  /** Sets bits [start, end). */
  setRange(start: number, end: number): void {
    for (let i = start; i < end && (i & 31) !== 0; i++) this.set(i);
    let i = Math.max(start, (start + 31) & ~31);
    for (; i + 32 <= end; i += 32) this.words[i >>> 5] = 0xffff_ffff;
    for (; i < end; i++) this.set(i);
  }

  /** Clears bits [start, end). */
  clearRange(start: number, end: number): void {
    for (let i = start; i < end && (i & 31) !== 0; i++) this.clear(i);
    let i = Math.max(start, (start + 31) & ~31);
    for (; i + 32 <= end; i += 32) this.words[i >>> 5] = 0;
    for (; i < end; i++) this.clear(i);
  }

  setAll(): void {
    this.setRange(0, this.pages);
  }

  clearAll(): void {
    this.words.fill(0);
  }

  /** ORs another bitmap's words in (e.g. a dirty collection); returns how many bits were newly set. */
  or(other: Uint32Array): number {
    const n = Math.min(this.words.length, other.length);
    const last = this.words.length - 1;
    const tailMask = (this.pages & 31) === 0 ? 0xffff_ffff : (1 << (this.pages & 31)) - 1;
    let added = 0;
    for (let w = 0; w < n; w++) {
      const o = w === last ? ((other[w] as number) & tailMask) >>> 0 : (other[w] as number);
      if (o === 0) continue;
      const before = this.words[w] as number;
      const after = (before | o) >>> 0;
      if (after !== before) {
        added += popcount((after & ~before) >>> 0);
        this.words[w] = after;
      }
    }
    return added;
  }

  /** Index of the first set bit ≥ from, or -1. */
  nextSet(from: number): number {
    if (from >= this.pages) return -1;
    let w = from >>> 5;
    let word = ((this.words[w] as number) & (0xffff_ffff << (from & 31))) >>> 0;
    for (;;) {
      if (word !== 0) {
        const i = (w << 5) + ctz(word);
        return i < this.pages ? i : -1;
      }
      w++;
      if (w >= this.words.length) return -1;
      word = this.words[w] as number;
    }
  }

  count(): number {
    let c = 0;
    for (let w = 0; w < this.words.length; w++) c += popcount(this.words[w] as number);
    return c;
  }
}

export function popcount(x: number): number {
  let v = x >>> 0;
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}
