import {
  ENCODING_FLAG_XBZRLE,
  type MigrationFile,
  RAM_SAVE_FLAG_CONTINUE,
  RAM_SAVE_FLAG_EOS,
  RAM_SAVE_FLAG_MEM_SIZE,
  RAM_SAVE_FLAG_PAGE,
  RAM_SAVE_FLAG_XBZRLE,
  RAM_SAVE_FLAG_ZERO,
} from '@e2k-migrate/migration';
import type { BlockBytes } from './ram-block.js';

/** QEMU's qemu_host_page_size on the hosts e2k-migrate runs on (x86-64 / aarch64 Linux, 4 KiB pages). */
export const HOST_PAGE_SIZE = 4096;

/** Longest record header: be64 word + u8 length + 255-byte block name. */
const MAX_HEADER = 8 + 1 + 255;

/**
 * Writes RAM records (spec §4.1) straight into a MigrationFile's buffer, remembering the last
 * block named on this stream so later records of the same block carry CONTINUE and no name
 * (kept across sections, as QEMU 7.2's sender does).
 */
export class RamRecordWriter {
  private last: BlockBytes | undefined;
  private readonly tps: number;

  constructor(targetPageSize: number) {
    this.tps = targetPageSize;
  }

  /** The next record names its block again (migration start, block list change). */
  resetLastBlock(): void {
    this.last = undefined;
  }

  private header(f: MigrationFile, block: BlockBytes, offset: number, flags: number): void {
    const named = block !== this.last;
    const v = f.view;
    const p = f.pos;
    v.setUint32(p, Math.floor(offset / 0x1_0000_0000));
    v.setUint32(p + 4, ((offset >>> 0) | flags | (named ? 0 : RAM_SAVE_FLAG_CONTINUE)) >>> 0);
    f.pos = p + 8;
    if (named) {
      block.nameRecord.copy(f.buf, f.pos);
      f.pos += block.nameRecord.length;
      this.last = block;
    }
  }

  /** ZERO record: header, fill byte 0. */
  zero(f: MigrationFile, block: BlockBytes, offset: number): void {
    f.reserve(MAX_HEADER + 1);
    this.header(f, block, offset, RAM_SAVE_FLAG_ZERO);
    f.buf[f.pos++] = 0;
  }

  /** PAGE record copying the page from `src[start, start + TPS)`. */
  page(f: MigrationFile, block: BlockBytes, offset: number, src: Buffer, start: number): void {
    f.reserve(MAX_HEADER + this.tps);
    this.header(f, block, offset, RAM_SAVE_FLAG_PAGE);
    src.copy(f.buf, f.pos, start, start + this.tps);
    f.pos += this.tps;
  }

  /** PAGE record from a page copy (an XBZRLE cache entry). */
  pageFrom(f: MigrationFile, block: BlockBytes, offset: number, data: Uint8Array): void {
    f.reserve(MAX_HEADER + this.tps);
    this.header(f, block, offset, RAM_SAVE_FLAG_PAGE);
    f.buf.set(data.subarray(0, this.tps), f.pos);
    f.pos += this.tps;
  }

  /** XBZRLE record: header, `01`, be16 length, the delta. Returns the record's length. */
  xbzrle(f: MigrationFile, block: BlockBytes, offset: number, delta: Uint8Array, length: number): number {
    f.reserve(MAX_HEADER + 3 + length);
    const start = f.pos;
    this.header(f, block, offset, RAM_SAVE_FLAG_XBZRLE);
    f.buf[f.pos] = ENCODING_FLAG_XBZRLE;
    f.view.setUint16(f.pos + 1, length);
    f.pos += 3;
    f.buf.set(delta.subarray(0, length), f.pos);
    f.pos += length;
    return f.pos - start;
  }

  /**
   * The START section's block list: `be64 total | MEM_SIZE`, then `idstr, be64 used_length` per
   * block and, with `postcopy` (the postcopy-ram capability), `be64 page_size` after a block whose
   * host page size differs from the host's (spec §4.3).
   */
  memSize(f: MigrationFile, blocks: readonly BlockBytes[], postcopy = false): void {
    const total = blocks.reduce((n, b) => n + b.size, 0);
    f.be64(total + RAM_SAVE_FLAG_MEM_SIZE);
    for (const b of blocks) {
      f.bytes(b.nameRecord).be64(b.size);
      if (postcopy && b.hostPageSize !== HOST_PAGE_SIZE) f.be64(b.hostPageSize);
    }
  }

  /** `00…10`: ends every RAM section body. */
  eos(f: MigrationFile): void {
    f.be64(RAM_SAVE_FLAG_EOS);
  }
}
