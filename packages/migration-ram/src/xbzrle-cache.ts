import { RamError } from './errors.js';

/**
 * QEMU 7.2's XBZRLE page cache: direct-mapped on `(ramAddress / pageSize) mod slots`, each slot
 * holding one page copy tagged with its address and the dirty-sync generation ("age") at which it
 * was last used. A fresh slot (used within the last {@link CACHED_PAGE_LIFETIME} generations)
 * is not evicted by a different page.
 *
 * `cache-size` must be a power of two no smaller than the page size, as QEMU requires.
 */
export const CACHED_PAGE_LIFETIME = 2;

export class XbzrleCache {
  readonly pageSize: number;
  readonly slots: number;
  readonly size: number;
  private readonly data: Uint8Array;
  /** Address (bytes) cached in each slot; -1 when empty. */
  private readonly addr: Float64Array;
  private readonly age: Float64Array;

  constructor(size: number, pageSize = 4096) {
    if (!Number.isSafeInteger(size) || size < pageSize || (size & (size - 1)) !== 0) {
      throw new RamError(
        'E_RAM_BAD_ARGUMENT',
        `xbzrle-cache-size ${size} must be a power of two no smaller than the page size (${pageSize})`,
      );
    }
    this.pageSize = pageSize;
    this.size = size;
    this.slots = size / pageSize;
    this.data = new Uint8Array(size);
    this.addr = new Float64Array(this.slots).fill(-1);
    this.age = new Float64Array(this.slots);
  }

  private slot(address: number): number {
    return Math.floor(address / this.pageSize) & (this.slots - 1);
  }

  /** QEMU cache_is_cached: true when `address` is in its slot; a hit refreshes the slot's age. */
  isCached(address: number, generation: number): boolean {
    const s = this.slot(address);
    if (this.addr[s] !== address) return false;
    this.age[s] = generation;
    return true;
  }

  /**
   * QEMU cache_insert: copies `page` into the slot unless the slot holds a different page that is
   * still fresh (then returns false, nothing changes).
   */
  insert(address: number, page: Uint8Array, generation: number): boolean {
    const s = this.slot(address);
    const cur = this.addr[s] as number;
    if (cur !== -1 && cur !== address && (this.age[s] as number) + CACHED_PAGE_LIFETIME > generation) return false;
    this.data.set(page.subarray(0, this.pageSize), s * this.pageSize);
    this.addr[s] = address;
    this.age[s] = generation;
    return true;
  }

  /** The cached copy of `address` (a live view into the cache), or undefined. */
  get(address: number): Uint8Array | undefined {
    const s = this.slot(address);
    if (this.addr[s] !== address) return undefined;
    return this.data.subarray(s * this.pageSize, (s + 1) * this.pageSize);
  }
}
