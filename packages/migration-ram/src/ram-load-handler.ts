import {
  DEFAULT_TARGET_PAGE_SIZE,
  loadRamBody,
  type MemSizeList,
  MigrationStreamError,
  RAM_SECTION_VERSION,
  type RamBlockInfo,
  type RamRecordInfo,
  type RamSink,
  RamState,
  type SectionContext,
  type SectionLoader,
  xbzrleDecode,
} from '@e2k-migrate/migration';
import { PageBitmap } from './page-bitmap.js';
import { BlockBytes, type RamBlockSource } from './ram-block.js';

/**
 * The destination's `ram` section loader (QEMU's ram_load_precopy): the block list must name
 * local blocks of the same size; PAGE records are copied straight into guest memory, ZERO
 * records clear the page (only when it is not zero already), XBZRLE records patch the page in
 * place. Every error names the record's byte offset and the section.
 *
 * With `zeroed` (the memory is fresh, all zero, as on a VM started for an incoming migration)
 * the loader remembers which pages it wrote, so a ZERO record for a page never written costs
 * nothing — not even reading the page, which would fault it in.
 */
export class RamLoadHandler implements SectionLoader {
  private readonly blocks = new Map<string, BlockBytes>();
  /** Pages written by this loader, per block (only with `zeroed`). */
  private readonly written = new Map<BlockBytes, PageBitmap>();
  /** Pages any record loaded, per block (QEMU's receivedmap; postcopy and its recovery read it). */
  private readonly received = new Map<BlockBytes, PageBitmap>();
  private lastReceived: PageBitmap | undefined;
  /** POSTCOPY_ADVISE was seen: block lists carry the page size of huge-page blocks. */
  private postcopyAdvised = false;
  private readonly tps: number;
  private readonly ram = new RamState();
  private readonly sink: RamSink;
  private lastInfo: RamBlockInfo | undefined;
  private lastBlock: BlockBytes | undefined;
  private lastWritten: PageBitmap | undefined;
  /** Pages written so far (PAGE, ZERO and XBZRLE records). */
  pagesLoaded = 0;

  constructor(blocks: readonly RamBlockSource[], opts: { targetPageSize?: number; zeroed?: boolean } = {}) {
    this.tps = opts.targetPageSize ?? DEFAULT_TARGET_PAGE_SIZE;
    for (const b of blocks) {
      const bytes = new BlockBytes(b, this.tps);
      this.blocks.set(b.idstr, bytes);
      if (opts.zeroed) this.written.set(bytes, new PageBitmap(b.size / this.tps));
      this.received.set(bytes, new PageBitmap(b.size / this.tps));
    }
    const tps = this.tps;
    this.sink = {
      memSize: (list, info) => this.checkBlockList(list, info),
      zero: (b, offset, fill, info) => {
        const local = this.local(b, info);
        this.pagesLoaded++;
        this.lastReceived?.set(offset / tps);
        const w = this.lastWritten;
        if (w !== undefined && fill === 0 && !w.get(offset / tps)) return;
        const page = local.bytes(offset, tps);
        if (fill !== 0 || !isZero(page)) page.fill(fill);
      },
      page: (b, offset, data, info) => {
        this.local(b, info).write(offset, data);
        this.lastWritten?.set(offset / tps);
        this.lastReceived?.set(offset / tps);
        this.pagesLoaded++;
      },
      xbzrle: (b, offset, delta, info) => {
        const page = this.local(b, info).bytes(offset, tps);
        this.lastWritten?.set(offset / tps);
        this.lastReceived?.set(offset / tps);
        const r = xbzrleDecode(delta, page);
        if (typeof r !== 'number') {
          throw new MigrationStreamError(
            'E_XBZRLE',
            `XBZRLE record at byte offset ${info.offset} (block "${b.name}", page offset 0x${offset.toString(16)}): ${r.error} at delta byte ${r.at}`,
            { offset: info.offset, section: info.section?.label, record: 'ram XBZRLE record' },
          );
        }
        this.pagesLoaded++;
      },
      compressed: (_b, _offset, _zlib, info) => {
        throw new MigrationStreamError(
          'E_UNSUPPORTED_FEATURE',
          `COMPRESS_PAGE record at byte offset ${info.offset}: the legacy "compress" capability is not supported`,
          { offset: info.offset, section: info.section?.label, record: 'ram COMPRESS_PAGE record' },
        );
      },
    };
  }

  async load(ctx: SectionContext): Promise<undefined> {
    const s = ctx.section;
    if (s.versionId !== RAM_SECTION_VERSION) {
      throw new MigrationStreamError(
        'E_BAD_VERSION',
        `section ${s.label} at byte offset ${s.offset}: ram version ${s.versionId}, expected ${RAM_SECTION_VERSION}`,
        { offset: s.offset, section: s.label },
      );
    }
    if (ctx.state.pageSize !== this.tps) {
      throw new MigrationStreamError(
        'E_BAD_CONFIGURATION',
        `target page size ${ctx.state.pageSize} differs from local ${this.tps}`,
        { offset: s.offset, section: s.label },
      );
    }
    this.postcopyAdvised = ctx.state.postcopyPageSizeSummary !== undefined;
    await loadRamBody(ctx.source, this.ram, ctx.state, this.sink, { channel: 0, section: s });
    return undefined;
  }

  /**
   * Which target pages of block `idstr` a record has loaded (bit i = page i; QEMU's receivedmap),
   * or undefined for an unknown block. Postcopy seeds its received bitmap from it at the switch.
   */
  receivedMap(idstr: string): PageBitmap | undefined {
    const b = this.blocks.get(idstr);
    return b ? this.received.get(b) : undefined;
  }

  private local(b: RamBlockInfo, info: RamRecordInfo): BlockBytes {
    if (b === this.lastInfo) return this.lastBlock as BlockBytes;
    const local = this.blocks.get(b.name);
    if (!local) {
      throw new MigrationStreamError(
        'E_BAD_RAM_BLOCK',
        `RAM record at byte offset ${info.offset}: unknown block "${b.name}"`,
        {
          offset: info.offset,
          section: info.section?.label,
        },
      );
    }
    this.lastInfo = b;
    this.lastBlock = local;
    this.lastWritten = this.written.get(local);
    this.lastReceived = this.received.get(local);
    return local;
  }

  private checkBlockList(list: MemSizeList, info: RamRecordInfo): void {
    for (const b of list.blocks) {
      const local = this.blocks.get(b.name);
      if (!local) {
        throw new MigrationStreamError(
          'E_BAD_RAM_BLOCK',
          `block list at byte offset ${info.offset} names unknown RAM block "${b.name}" (local: ${[...this.blocks.keys()].join(', ')})`,
          { offset: info.offset, section: info.section?.label, record: 'ram MEM_SIZE' },
        );
      }
      if (local.size !== b.usedLength) {
        throw new MigrationStreamError(
          'E_BAD_LENGTH',
          `block list at byte offset ${info.offset}: RAM block "${b.name}" has length 0x${b.usedLength.toString(16)} in the stream and 0x${local.size.toString(16)} here`,
          { offset: info.offset, section: info.section?.label, record: 'ram MEM_SIZE' },
        );
      }
      // Postcopy: a block whose page size is not the host's (4 KiB) announces it (spec §4.3).
      const hostPage = local.memory.pageSize;
      if (this.postcopyAdvised && (b.pageSize ?? this.tps) !== hostPage) {
        throw new MigrationStreamError(
          'E_BAD_LENGTH',
          `block list at byte offset ${info.offset}: RAM block "${b.name}" has ${b.pageSize ?? this.tps}-byte pages in the stream and ${hostPage}-byte pages here (postcopy places whole host pages)`,
          { offset: info.offset, section: info.section?.label, record: 'ram MEM_SIZE' },
        );
      }
    }
    this.lastInfo = undefined;
  }
}

function isZero(page: Uint8Array): boolean {
  const w = new Int32Array(page.buffer, page.byteOffset, page.byteLength >>> 2);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  return true;
}
