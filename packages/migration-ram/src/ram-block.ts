import type { GuestMemory } from '@e2k-migrate/native';
import { RamError } from './errors.js';

/** One migratable RAM block (QEMU's RAMBlock): the E2K machine's `e2k.ram`. */
export interface RamBlockSource {
  /** RAMBlock idstr as the `ram` section names it. */
  readonly idstr: string;
  /** used_length in bytes (a multiple of the target page size). */
  readonly size: number;
  /** The guest memory behind the block (native region or fallback). */
  readonly memory: GuestMemory;
  /**
   * The block's host page size (QEMU's qemu_ram_pagesize): the unit postcopy places atomically.
   * Default: the memory's page size (4096, or 2 MiB for hugetlb).
   */
  readonly pageSize?: number;
}

/**
 * Byte-addressed access to a block's memory for the migration code: `Buffer` views over the
 * region's 1 GiB views, so pages are copied with one `Buffer#copy` (memmove) and no per-page
 * allocation. Raw: no dirty marking, no demand paging (the guest is the only writer that must
 * be tracked, and the loader writes while the vCPUs are stopped).
 */
export class BlockBytes {
  readonly idstr: string;
  readonly size: number;
  readonly memory: GuestMemory;
  /** Host page size (a power of two, a multiple of the target page size). */
  readonly hostPageSize: number;
  /** idstr as bytes (u8 length + Latin-1 name), ready to copy into a record. */
  readonly nameRecord: Buffer;
  private readonly views: Buffer[];
  private readonly u8views: Uint8Array[];
  private readonly viewBytes: number;

  constructor(block: RamBlockSource, targetPageSize: number) {
    if (block.size % targetPageSize !== 0 || block.size > block.memory.size) {
      throw new RamError(
        'E_RAM_BAD_ARGUMENT',
        `RAM block "${block.idstr}": size ${block.size} must be a multiple of ${targetPageSize} within its ${block.memory.size}-byte memory`,
        { block: block.idstr },
      );
    }
    if (block.idstr.length === 0 || block.idstr.length > 255) {
      throw new RamError('E_RAM_BAD_ARGUMENT', `RAM block idstr "${block.idstr}" must be 1..255 characters`);
    }
    const hps = block.pageSize ?? block.memory.pageSize;
    if (!Number.isInteger(Math.log2(hps)) || hps < targetPageSize || block.size % hps !== 0) {
      throw new RamError(
        'E_RAM_BAD_ARGUMENT',
        `RAM block "${block.idstr}": host page size ${hps} must be a power of two ≥ ${targetPageSize} dividing its size ${block.size}`,
        { block: block.idstr },
      );
    }
    this.idstr = block.idstr;
    this.size = block.size;
    this.memory = block.memory;
    this.hostPageSize = hps;
    this.viewBytes = block.memory.handle.viewBytes;
    this.u8views = block.memory.views().map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    this.views = this.u8views.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    this.nameRecord = Buffer.concat([Buffer.from([block.idstr.length]), Buffer.from(block.idstr, 'latin1')]);
  }

  /** The view holding byte `offset` (pages never straddle views); see {@link viewOffset}. */
  viewAt(offset: number): Buffer {
    return this.views[Math.floor(offset / this.viewBytes)] as Buffer;
  }

  /** `offset` inside the view {@link viewAt} returns. */
  viewOffset(offset: number): number {
    return offset % this.viewBytes;
  }

  /** Copies `data` to `offset` (no allocation: the loader's hot path). */
  write(offset: number, data: Uint8Array): void {
    const v = Math.floor(offset / this.viewBytes);
    (this.u8views[v] as Uint8Array).set(data, offset - v * this.viewBytes);
  }

  /** A view of `length` bytes at `offset` (inside one view). */
  bytes(offset: number, length: number): Uint8Array {
    const v = Math.floor(offset / this.viewBytes);
    const at = offset - v * this.viewBytes;
    return (this.u8views[v] as Uint8Array).subarray(at, at + length);
  }
}
