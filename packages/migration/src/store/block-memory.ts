import { MigrationStreamError } from '../errors.js';

/**
 * Memory that holds one RAM block while a migration is received (and, for postcopy, where pages
 * are installed). `@e2k-migrate/native`'s `GuestMemory` satisfies this interface structurally, so
 * the CLI can hand in mmap'ed (userfaultfd-capable) regions; {@link heapBlockMemory} is the plain
 * in-process default.
 */
export interface BlockMemory {
  /** Bytes (the block's used_length). */
  readonly size: number;
  /** Page size of `pageView` units (the target page size, 4096 on x86). */
  readonly pageSize: number;
  /** A zero-copy writable view of `count` pages from page `page`. */
  pageView(page: number, count?: number): Uint8Array;
  /** Releases the memory; views must not be used afterwards. */
  close(): void;
}

/** What a {@link BlockMemoryFactory} is asked for. */
export interface BlockMemoryRequest {
  /** RAMBlock idstr, e.g. `pc.ram`. */
  name: string;
  /** used_length in bytes: a positive multiple of `pageSize`. */
  size: number;
  /** Target page size. */
  pageSize: number;
  /** The block's host page size (the MEM_SIZE page_size of a postcopy huge-page block, else `pageSize`). */
  hostPageSize?: number;
}

/** Allocates the memory of one RAM block; called once per block of the START block list. */
export type BlockMemoryFactory = (block: BlockMemoryRequest) => BlockMemory;

/** A block held in an ordinary (zero-initialised) ArrayBuffer. */
export function heapBlockMemory(block: BlockMemoryRequest): BlockMemory {
  let bytes: Uint8Array | undefined = new Uint8Array(block.size);
  const pageSize = block.pageSize;
  return {
    size: block.size,
    pageSize,
    pageView(page: number, count = 1): Uint8Array {
      if (bytes === undefined) {
        throw new MigrationStreamError('E_BAD_VALUE', `RAM block "${block.name}" memory was released`);
      }
      return bytes.subarray(page * pageSize, (page + count) * pageSize);
    },
    close(): void {
      bytes = undefined;
    },
  };
}
