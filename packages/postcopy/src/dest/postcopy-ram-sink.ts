import { inflateSync } from 'node:zlib';
import { MigrationStreamError, type RamBlockInfo, type RamRecordInfo, type RamSink } from '@e2k-migrate/migration';
import type { PagePlacer } from './page-placer.js';
import type { PageRequester } from './page-requester.js';
import { type PostcopyBlock, TARGET_PAGE_SIZE } from './postcopy-block.js';
import type { PostcopyTmpPage } from './postcopy-tmp-page.js';

/** Postcopy RAM records by kind, over every channel. */
export interface PostcopyRecordCounts {
  /** PAGE (and COMPRESS_PAGE) records. */
  normal: number;
  /** ZERO records. */
  duplicate: number;
}

/**
 * The RAM sink of one postcopy channel (QEMU's ram_load_postcopy): every ZERO/PAGE record goes
 * through the channel's {@link PostcopyTmpPage}; a complete host page is placed at once — all zero
 * as a zero page, else its bytes (for 4 KiB host pages straight from the record) — and the
 * temporary page is reset. Nothing here reads guest memory.
 */
export class PostcopyRamSink implements RamSink {
  private readonly tmp: PostcopyTmpPage;
  private readonly placer: PagePlacer;
  private readonly requester: PageRequester;
  private readonly lookup: (b: RamBlockInfo) => PostcopyBlock;
  private readonly counts: PostcopyRecordCounts;

  constructor(opts: {
    tmp: PostcopyTmpPage;
    placer: PagePlacer;
    requester: PageRequester;
    /** The local block of a record's block (the postcopy RamState is built from the local blocks). */
    lookup(b: RamBlockInfo): PostcopyBlock;
    counts: PostcopyRecordCounts;
  }) {
    this.tmp = opts.tmp;
    this.placer = opts.placer;
    this.requester = opts.requester;
    this.lookup = opts.lookup;
    this.counts = opts.counts;
  }

  zero(b: RamBlockInfo, offset: number, fill: number, info: RamRecordInfo): void {
    this.counts.duplicate++;
    const block = this.lookup(b);
    if (this.tmp.add(block, offset, undefined, fill, place(info))) this.complete(undefined);
  }

  page(b: RamBlockInfo, offset: number, data: Uint8Array, info: RamRecordInfo): void {
    this.counts.normal++;
    const block = this.lookup(b);
    if (this.tmp.add(block, offset, data, 0, place(info))) this.complete(data);
  }

  compressed(b: RamBlockInfo, offset: number, zlib: Uint8Array, info: RamRecordInfo): void {
    let out: Uint8Array;
    try {
      out = inflateSync(zlib, { maxOutputLength: TARGET_PAGE_SIZE + 1 });
    } catch (err) {
      throw new MigrationStreamError(
        'E_COMPRESS',
        `COMPRESS_PAGE record at byte offset ${info.offset}: ${(err as Error).message}`,
        {
          offset: info.offset,
          section: info.section?.label,
          record: 'ram COMPRESS_PAGE record',
          cause: err,
        },
      );
    }
    if (out.length !== TARGET_PAGE_SIZE) {
      throw new MigrationStreamError(
        'E_COMPRESS',
        `COMPRESS_PAGE record at byte offset ${info.offset} inflates to ${out.length} bytes, expected ${TARGET_PAGE_SIZE}`,
        { offset: info.offset, section: info.section?.label, record: 'ram COMPRESS_PAGE record' },
      );
    }
    this.page(b, offset, out, info);
  }

  /** Before the loader waits for more input: nothing may wait in the 4 KiB batch meanwhile. */
  idle(): void {
    this.placer.flush();
  }

  eos(): void {
    this.placer.flush();
  }

  private complete(record: Uint8Array | undefined): void {
    const tmp = this.tmp;
    const block = tmp.block as PostcopyBlock;
    const host = tmp.hostAddr;
    const urgent = this.requester.isOutstanding(block, host);
    if (tmp.allZero) this.placer.place(block, host, undefined, urgent);
    else if (block.hostPageSize === TARGET_PAGE_SIZE && record !== undefined)
      this.placer.place(block, host, record, urgent);
    else this.placer.place(block, host, tmp.hostPage, urgent);
    tmp.reset();
  }
}

function place(info: RamRecordInfo): { offset: number; section: string | undefined } {
  return { offset: info.offset, section: info.section?.label };
}
