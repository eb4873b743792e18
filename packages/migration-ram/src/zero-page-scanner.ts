import type { PageBitmap } from './page-bitmap.js';
import { popcount } from './page-bitmap.js';
import type { BlockBytes } from './ram-block.js';

/** Target pages whose zero state is computed in one native call (1 MiB of 4 KiB pages). */
export const ZERO_CHUNK_PAGES = 256;
/** Pages still to send in a chunk from which one native call over the chunk pays off. */
export const ZERO_CHUNK_DENSE = 16;

/**
 * Zero-page detection for the page loop. Where many pages of a 256-page chunk are to be sent
 * (the first pass), one native `zeroPages` call answers for the whole chunk; for scattered
 * dirty pages (later passes, the last stage) each page is checked alone in TypeScript, stopping
 * at its first non-zero word. Memory whose page is not the target page (hugetlb: `zeroPages`
 * answers per 2 MiB) is always checked per target page.
 *
 * A cached answer may be stale by the time the page is sent; that is safe because a write after
 * the page's dirty bit was collected dirties it again and the next pass resends it.
 */
export class ZeroPageScanner {
  private readonly block: BlockBytes;
  private readonly tps: number;
  private readonly pages: number;
  private readonly native: boolean;
  private readonly words: Int32Array[];
  private readonly viewWords: number;
  private chunk = -1;
  private bits: Uint32Array = new Uint32Array(ZERO_CHUNK_PAGES / 32);

  constructor(block: BlockBytes, targetPageSize: number) {
    this.block = block;
    this.tps = targetPageSize;
    this.pages = block.size / targetPageSize;
    this.native = block.memory.pageSize === targetPageSize;
    const views = block.memory.views();
    this.words = views.map((v) => new Int32Array(v.buffer, v.byteOffset, v.byteLength >>> 2));
    this.viewWords = block.memory.handle.viewBytes >>> 2;
  }

  /** Forgets the cached chunk (after a dirty sync). */
  invalidate(): void {
    this.chunk = -1;
  }

  /** Is target page `page` all zero? `dirty` is the migration bitmap (density decides the method). */
  isZero(page: number, dirty: PageBitmap): boolean {
    const c = Math.floor(page / ZERO_CHUNK_PAGES);
    if (c !== this.chunk && this.native && this.dense(dirty, page, c)) this.scan(c);
    if (c === this.chunk) {
      const i = page - c * ZERO_CHUNK_PAGES;
      return ((this.bits[i >>> 5] as number) & (1 << (i & 31))) !== 0;
    }
    return this.pageIsZero(page);
  }

  /** At least ZERO_CHUNK_DENSE pages after `page` in chunk `c` are still to send. */
  private dense(dirty: PageBitmap, page: number, c: number): boolean {
    const end = Math.min((c + 1) * ZERO_CHUNK_PAGES, dirty.pages);
    let n = 0;
    for (let w = page >>> 5; w < (end + 31) >>> 5; w++) {
      n += popcount(dirty.words[w] as number);
      if (n >= ZERO_CHUNK_DENSE) return true;
    }
    return false;
  }

  private scan(c: number): void {
    const first = c * ZERO_CHUNK_PAGES;
    const count = Math.min(ZERO_CHUNK_PAGES, this.pages - first);
    this.bits = this.block.memory.zeroPages(first * this.tps, count * this.tps);
    this.chunk = c;
  }

  private pageIsZero(page: number): boolean {
    const word = (page * this.tps) / 4;
    const v = Math.floor(word / this.viewWords);
    const w = this.words[v] as Int32Array;
    const start = word - v * this.viewWords;
    const end = start + (this.tps >>> 2);
    for (let i = start; i < end; i += 8) {
      if (
        ((w[i] as number) |
          (w[i + 1] as number) |
          (w[i + 2] as number) |
          (w[i + 3] as number) |
          (w[i + 4] as number) |
          (w[i + 5] as number) |
          (w[i + 6] as number) |
          (w[i + 7] as number)) !==
        0
      ) {
        return false;
      }
    }
    return true;
  }
}
