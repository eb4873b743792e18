import { inflateSync } from 'node:zlib';
import { MigrationStreamError } from '../errors.js';
import type { RamBlockInfo } from '../stream/ram-state.js';
import type { MemSizeList } from '../wire/mem-size.js';
import { xbzrleDecode } from '../wire/xbzrle.js';
import { RamBudget, SparseRam } from './sparse-ram.js';

/**
 * Guest RAM as the destination would end up with it, rebuilt record by record: PAGE copies,
 * ZERO fills, XBZRLE deltas applied to the page as it stands, COMPRESS_PAGE inflated, discards
 * zeroed. With `reconstruct` false nothing is kept, but XBZRLE and zlib data are still decoded
 * (onto a scratch page) so that corrupt records are found either way.
 */
export class RamImage {
  readonly reconstruct: boolean;
  readonly pageSize: number;
  readonly budget: RamBudget;
  private readonly blocks = new Map<string, SparseRam>();
  private readonly scratch: Uint8Array;

  constructor(opts: { reconstruct: boolean; maxRam: number; pageSize: number }) {
    this.reconstruct = opts.reconstruct;
    this.pageSize = opts.pageSize;
    this.budget = new RamBudget(opts.maxRam);
    this.scratch = new Uint8Array(opts.pageSize);
  }

  /** Creates the blocks of a MEM_SIZE list (a block already known keeps its content if its size matches). */
  setBlocks(list: MemSizeList): void {
    if (!this.reconstruct) return;
    for (const b of list.blocks) {
      if (b.usedLength > this.budget.max) {
        throw new MigrationStreamError(
          'E_RAM_LIMIT',
          `RAM block "${b.name}" is ${b.usedLength} bytes, more than --max-ram ${this.budget.max}`,
          { record: 'ram MEM_SIZE' },
        );
      }
      const old = this.blocks.get(b.name);
      if (old === undefined || old.size !== b.usedLength)
        this.blocks.set(b.name, new SparseRam(b.name, b.usedLength, this.budget));
    }
  }

  block(name: string): SparseRam | undefined {
    return this.blocks.get(name);
  }

  get blockList(): SparseRam[] {
    return [...this.blocks.values()];
  }

  page(block: RamBlockInfo, offset: number, data: Uint8Array): void {
    if (this.reconstruct) this.blocks.get(block.name)?.write(offset, data);
  }

  zero(block: RamBlockInfo, offset: number, fill: number): void {
    if (this.reconstruct) this.blocks.get(block.name)?.fill(offset, this.pageSize, fill);
  }

  /** Decodes an XBZRLE delta onto the page as it currently stands. */
  xbzrle(block: RamBlockInfo, offset: number, delta: Uint8Array, at: number, section?: string): void {
    const ram = this.reconstruct ? this.blocks.get(block.name) : undefined;
    const page = ram ? ram.view(offset, this.pageSize) : this.scratch;
    const r = xbzrleDecode(delta, page);
    if (typeof r !== 'number') {
      throw new MigrationStreamError(
        'E_XBZRLE',
        `XBZRLE record at byte offset ${at} (block "${block.name}" page 0x${offset.toString(16)}): ${r.error} at delta byte ${r.at}`,
        { offset: at, section, record: 'ram XBZRLE record' },
      );
    }
  }

  /** Inflates a COMPRESS_PAGE record; it must yield exactly one page. */
  compressed(block: RamBlockInfo, offset: number, zlib: Uint8Array, at: number, section?: string): void {
    let out: Uint8Array;
    try {
      out = inflateSync(zlib, { maxOutputLength: this.pageSize + 1 });
    } catch (err) {
      throw new MigrationStreamError(
        'E_COMPRESS',
        `COMPRESS_PAGE record at byte offset ${at}: ${(err as Error).message}`,
        {
          offset: at,
          section,
          record: 'ram COMPRESS_PAGE record',
          cause: err,
        },
      );
    }
    if (out.length !== this.pageSize) {
      throw new MigrationStreamError(
        'E_COMPRESS',
        `COMPRESS_PAGE record at byte offset ${at} inflates to ${out.length} bytes, expected ${this.pageSize}`,
        { offset: at, section, record: 'ram COMPRESS_PAGE record' },
      );
    }
    this.page(block, offset, out);
  }

  /** POSTCOPY_RAM_DISCARD: zero the ranges (checked against the block). */
  discard(block: RamBlockInfo, start: number, length: number, at: number): void {
    if (start + length > block.usedLength) {
      throw new MigrationStreamError(
        'E_BAD_RAM_OFFSET',
        `discard of [0x${start.toString(16)}, +0x${length.toString(16)}) at byte offset ${at} is outside block "${block.name}" (used_length 0x${block.usedLength.toString(16)})`,
        { offset: at, record: 'command POSTCOPY_RAM_DISCARD' },
      );
    }
    if (this.reconstruct) this.blocks.get(block.name)?.discard(start, length);
  }
}
