import { inflateSync } from 'node:zlib';
import { MigrationStreamError } from '../errors.js';
import type { RamRecordInfo, RamSink } from '../stream/ram-loader.js';
import type { RamBlockInfo } from '../stream/ram-state.js';
import type { MemSizeList } from '../wire/mem-size.js';
import { xbzrleDecode } from '../wire/xbzrle.js';
import type { BlockMemory, BlockMemoryFactory } from './block-memory.js';

/** One RAM block as received: its list entry, the memory holding it and which pages arrived. */
export interface ReceivedBlock {
  name: string;
  /** used_length in bytes. */
  size: number;
  /** Host page size of the block (MEM_SIZE page_size when sent, else the target page size). */
  pageSize: number;
  /** x-ignore-shared only: the MemoryRegion addr from the block list. */
  mrAddr: number | undefined;
  memory: BlockMemory;
  /** Bit i set = target page i was written by a record (postcopy's "received" bitmap). */
  received: Uint8Array;
}

/** Record counts of a received migration (QEMU's query-migrate names where they exist). */
export interface RamRecordCounts {
  /** PAGE records. */
  normal: number;
  /** ZERO records. */
  duplicate: number;
  xbzrle: number;
  compressed: number;
  /** EOS records (one per ram section). */
  eos: number;
}

/**
 * The RAM sink of the receiver: allocates every block of the START block list through a
 * {@link BlockMemoryFactory}, then applies PAGE, ZERO, XBZRLE (decoded onto the page as it stands)
 * and COMPRESS_PAGE records in stream order, tracking which pages were received.
 */
export class ReceivedRam implements RamSink {
  readonly blocks: ReceivedBlock[] = [];
  readonly counts: RamRecordCounts = { normal: 0, duplicate: 0, xbzrle: 0, compressed: 0, eos: 0 };
  private readonly byName = new Map<string, ReceivedBlock>();
  private readonly factory: BlockMemoryFactory;
  private readonly tps: number;
  private readonly maxRam: number;

  constructor(opts: { memory: BlockMemoryFactory; pageSize: number; maxRam: number }) {
    this.factory = opts.memory;
    this.tps = opts.pageSize;
    this.maxRam = opts.maxRam;
  }

  /** Total used_length of every block. */
  get totalBytes(): number {
    return this.blocks.reduce((n, b) => n + b.size, 0);
  }

  memSize(list: MemSizeList, info: RamRecordInfo): void {
    if (this.blocks.length > 0) {
      throw new MigrationStreamError(
        'E_STORE_LAYOUT',
        `a second RAM block list at byte offset ${info.offset}: the block list may only be sent once`,
        { offset: info.offset, section: info.section?.label, record: 'ram MEM_SIZE' },
      );
    }
    if (list.total > this.maxRam) {
      throw new MigrationStreamError(
        'E_RAM_LIMIT',
        `the RAM block list at byte offset ${info.offset} totals ${list.total} bytes, more than the limit of ${this.maxRam}`,
        { offset: info.offset, section: info.section?.label, record: 'ram MEM_SIZE' },
      );
    }
    for (const b of list.blocks) {
      if (b.usedLength === 0 || b.usedLength % this.tps !== 0) {
        throw new MigrationStreamError(
          'E_BAD_LENGTH',
          `RAM block "${b.name}" has used_length ${b.usedLength}, not a positive multiple of the ${this.tps}-byte page (block list at byte offset ${info.offset})`,
          { offset: info.offset, section: info.section?.label, record: 'ram MEM_SIZE' },
        );
      }
    }
    for (const b of list.blocks) {
      const memory = this.factory({
        name: b.name,
        size: b.usedLength,
        pageSize: this.tps,
        hostPageSize: b.pageSize ?? this.tps,
      });
      const block: ReceivedBlock = {
        name: b.name,
        size: b.usedLength,
        pageSize: b.pageSize ?? this.tps,
        mrAddr: b.mrAddr,
        memory,
        received: new Uint8Array(Math.ceil(b.usedLength / this.tps / 8)),
      };
      this.blocks.push(block);
      this.byName.set(b.name, block);
    }
  }

  zero(block: RamBlockInfo, offset: number, fill: number): void {
    this.counts.duplicate++;
    const b = this.get(block);
    const page = offset / this.tps;
    // A fresh block reads as zeros: a zero page never written before needs no store.
    if (fill === 0 && !isSet(b.received, page)) {
      mark(b.received, page);
      return;
    }
    b.memory.pageView(page).fill(fill);
    mark(b.received, page);
  }

  page(block: RamBlockInfo, offset: number, data: Uint8Array): void {
    this.counts.normal++;
    const b = this.get(block);
    const page = offset / this.tps;
    b.memory.pageView(page).set(data);
    mark(b.received, page);
  }

  xbzrle(block: RamBlockInfo, offset: number, delta: Uint8Array, info: RamRecordInfo): void {
    this.counts.xbzrle++;
    const b = this.get(block);
    const page = offset / this.tps;
    const r = xbzrleDecode(delta, b.memory.pageView(page));
    if (typeof r !== 'number') {
      throw new MigrationStreamError(
        'E_XBZRLE',
        `XBZRLE record at byte offset ${info.offset} (block "${b.name}" page 0x${offset.toString(16)}): ${r.error} at delta byte ${r.at}`,
        { offset: info.offset, section: info.section?.label, record: 'ram XBZRLE record' },
      );
    }
    mark(b.received, page);
  }

  compressed(block: RamBlockInfo, offset: number, zlib: Uint8Array, info: RamRecordInfo): void {
    this.counts.compressed++;
    let out: Uint8Array;
    try {
      out = inflateSync(zlib, { maxOutputLength: this.tps + 1 });
    } catch (err) {
      throw new MigrationStreamError(
        'E_COMPRESS',
        `COMPRESS_PAGE record at byte offset ${info.offset}: ${(err as Error).message}`,
        { offset: info.offset, section: info.section?.label, record: 'ram COMPRESS_PAGE record', cause: err },
      );
    }
    if (out.length !== this.tps) {
      throw new MigrationStreamError(
        'E_COMPRESS',
        `COMPRESS_PAGE record at byte offset ${info.offset} inflates to ${out.length} bytes, expected ${this.tps}`,
        { offset: info.offset, section: info.section?.label, record: 'ram COMPRESS_PAGE record' },
      );
    }
    const b = this.get(block);
    b.memory.pageView(offset / this.tps).set(out);
    mark(b.received, offset / this.tps);
  }

  eos(): void {
    this.counts.eos++;
  }

  /** Releases every block's memory. */
  close(): void {
    for (const b of this.blocks) b.memory.close();
  }

  private get(block: RamBlockInfo): ReceivedBlock {
    // RamState resolved the name against the same block list, so the block exists.
    return this.byName.get(block.name) as ReceivedBlock;
  }
}

function isSet(bitmap: Uint8Array, page: number): boolean {
  return (((bitmap[page >>> 3] as number) >>> (page & 7)) & 1) === 1;
}

function mark(bitmap: Uint8Array, page: number): void {
  bitmap[page >>> 3] = (bitmap[page >>> 3] as number) | (1 << (page & 7));
}
