import { MigrationStreamError } from '@e2k-migrate/migration';
import { PageBitmap } from '@e2k-migrate/migration-ram';
import type { GuestMemory } from '@e2k-migrate/native';

/** The target page size of every supported stream (x86 and E2K: 4 KiB). */
export const TARGET_PAGE_SIZE = 4096;

/** A RAM block as the integrator hands it to the postcopy destination. */
export interface PostcopyBlockSource {
  /** RAMBlock idstr (`pc.ram`, `e2k.ram`, `mem`, …). */
  name: string;
  /** The block's guest memory; its page size is the block's host page size (4 KiB or 2 MiB). */
  memory: GuestMemory;
  /** used_length in bytes (default: the whole region). */
  size?: number;
  /**
   * The target pages precopy loaded (bit i = page i, byte i/8 bit i%8 or the same bits as 32-bit
   * little-endian words): read once, when postcopy starts (first DISCARD or LISTEN).
   */
  precopyReceived?(): Uint8Array | Uint32Array | undefined;
}

/**
 * One RAM block of a postcopy destination: its guest memory, host page size and the received
 * bitmap (QEMU's receivedmap, one bit per target page) that decides whether a page may still be
 * placed — a page is never placed twice — and what RECV_BITMAP reports after a pause.
 */
export class PostcopyBlock {
  readonly index: number;
  readonly name: string;
  readonly memory: GuestMemory;
  /** used_length (bytes). */
  readonly size: number;
  readonly hostPageSize: number;
  /** Target pages per host page (1, or 512 for 2 MiB pages). */
  readonly targetsPerHost: number;
  readonly received: PageBitmap;

  constructor(index: number, src: PostcopyBlockSource) {
    const size = src.size ?? src.memory.size;
    const hps = src.memory.pageSize;
    if (size <= 0 || size % hps !== 0 || size > src.memory.size) {
      throw new MigrationStreamError(
        'E_BAD_LENGTH',
        `RAM block "${src.name}": used_length ${size} must be a positive multiple of its ${hps}-byte host page within its ${src.memory.size}-byte memory`,
      );
    }
    this.index = index;
    this.name = src.name;
    this.memory = src.memory;
    this.size = size;
    this.hostPageSize = hps;
    this.targetsPerHost = hps / TARGET_PAGE_SIZE;
    this.received = new PageBitmap(size / TARGET_PAGE_SIZE);
    const seed = src.precopyReceived?.();
    if (seed) this.seed(seed);
  }

  /** Host page containing byte `offset`. */
  hostPageOf(offset: number): number {
    return offset - (offset % this.hostPageSize);
  }

  /** Every target page of the host page at `hostOffset` is received (placed, or loaded by precopy). */
  hostPageReceived(hostOffset: number): boolean {
    const first = hostOffset / TARGET_PAGE_SIZE;
    for (let i = 0; i < this.targetsPerHost; i++) if (!this.received.get(first + i)) return false;
    return true;
  }

  /** Marks the host page at `hostOffset` received. */
  markHostPage(hostOffset: number): void {
    const first = hostOffset / TARGET_PAGE_SIZE;
    this.received.setRange(first, first + this.targetsPerHost);
  }

  /** Clears `[start, start+length)` (a discard: those pages must arrive again). */
  clearRange(start: number, length: number): void {
    this.received.clearRange(start / TARGET_PAGE_SIZE, (start + length) / TARGET_PAGE_SIZE);
  }

  /**
   * The RECV_BITMAP blob (spec §8.2): bit i = target page i, as little-endian 64-bit words, its
   * size ceil(pages/8) rounded up to a multiple of 8.
   */
  recvBitmapBlob(): Uint8Array {
    const pages = this.received.pages;
    const size = Math.ceil(Math.ceil(pages / 8) / 8) * 8;
    const out = new Uint8Array(size);
    const words = this.received.words;
    const view = new DataView(out.buffer);
    for (let w = 0; w < words.length; w++) view.setUint32(w * 4, words[w] as number, true);
    // Bits past the last page stay zero (the source complements the bitmap).
    const tail = pages & 7;
    if (tail !== 0) out[pages >>> 3] = (out[pages >>> 3] as number) & ((1 << tail) - 1);
    for (let i = (pages + 7) >>> 3; i < size; i++) out[i] = 0;
    return out;
  }

  private seed(bits: Uint8Array | Uint32Array): void {
    const bytes = bits instanceof Uint8Array ? bits : new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
    const pages = this.received.pages;
    for (let p = 0; p < pages; p++) {
      if (((bytes[p >>> 3] ?? 0) >>> (p & 7)) & 1) this.received.set(p);
    }
  }
}
