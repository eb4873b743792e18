import { latin1String } from '@e2k-migrate/vmstate';
import { MigrationStreamError, TruncatedStreamError, toStreamError } from '../errors.js';
import { RAM_SECTION_VERSION } from '../wire/constants.js';
import { decodeMemSizeList, type MemSizeList } from '../wire/mem-size.js';
import { newRamRecordScan, scanRamRecord } from '../wire/ram-record.js';
import type { ByteSource } from './byte-source.js';
import type { RamBlockInfo, RamState } from './ram-state.js';
import type { SectionContext, SectionInfo, SectionLoader, SectionLoadResult } from './section-loader.js';
import type { StreamState } from './stream-state.js';

/** Where a RAM record sits. The object is reused between records: copy what must outlive a call. */
export interface RamRecordInfo {
  /** Absolute offset of the record's be64 word. */
  offset: number;
  /** Raw flag bits of the word (CONTINUE included). */
  flags: number;
  /** Record length in bytes (MEM_SIZE: word + block list). */
  length: number;
  /** 0 = main stream, 1 = postcopy-preempt channel. */
  channel: number;
  /** The enclosing section (undefined on the preempt channel). */
  section: SectionInfo | undefined;
}

/**
 * Receives the RAM records of a section body, synchronously and in stream order. Byte arrays are
 * views into the reader's window, valid only during the call.
 */
export interface RamSink {
  memSize?(list: MemSizeList, info: RamRecordInfo): void;
  zero?(block: RamBlockInfo, offset: number, fill: number, info: RamRecordInfo): void;
  page?(block: RamBlockInfo, offset: number, data: Uint8Array, info: RamRecordInfo): void;
  xbzrle?(block: RamBlockInfo, offset: number, delta: Uint8Array, info: RamRecordInfo): void;
  compressed?(block: RamBlockInfo, offset: number, zlib: Uint8Array, info: RamRecordInfo): void;
  /** EOS ended the body; may be async (multifd epochs are applied here). */
  eos?(info: RamRecordInfo): void | Promise<void>;
  /** The loader is about to wait for more input: a chance to flush outputs. */
  idle?(): void | Promise<void>;
}

export interface RamBodyOptions {
  /** RAM channel: 0 = main, 1 = preempt (separate CONTINUE bookkeeping). */
  channel: number;
  section?: SectionInfo;
  /** Let the input end cleanly at a record boundary instead of requiring EOS (8.0+ preempt channel). */
  allowEndWithoutEos?: boolean;
  /** Largest MEM_SIZE block list accepted, in bytes. */
  maxBlockListBytes?: number;
}

/**
 * Parses RAM records until EOS (spec §4): synchronously from the buffered window, awaiting only
 * when the window runs dry. Page data is handed to the sink as views, never copied here.
 * @returns whether an EOS ended the body (false only with `allowEndWithoutEos`).
 */
export async function loadRamBody(
  src: ByteSource,
  ram: RamState,
  state: StreamState,
  sink: RamSink,
  opts: RamBodyOptions,
): Promise<boolean> {
  const tps = state.pageSize;
  const scan = newRamRecordScan();
  const channel = opts.channel;
  const label = opts.section?.label;
  const info: RamRecordInfo = { offset: 0, flags: 0, length: 0, channel, section: opts.section };
  const postcopy = state.postcopyListening;
  try {
    for (;;) {
      let need = 0;
      for (;;) {
        const pos = src.pos;
        const at = src.offset;
        const n = scanRamRecord(src.buf, src.view, pos, src.available, tps, at, scan);
        if (n < 0) {
          need = -n;
          break;
        }
        const kind = scan.kind;
        info.offset = at;
        info.flags = scan.flags;
        info.length = n;
        if (kind === 'EOS') {
          src.pos = pos + n;
          await sink.eos?.(info);
          return true;
        }
        if (kind === 'MEM_SIZE') {
          if (postcopy) throw notInPostcopy('MEM_SIZE', at, label);
          src.pos = pos + n;
          const total = scan.value;
          const list: MemSizeList = {
            total,
            blocks: await src.parse(
              (r) =>
                decodeMemSizeList(r, total, {
                  targetPageSize: tps,
                  ignoreShared: state.ignoreShared,
                  postcopyPageSizeSummary: state.postcopyPageSizeSummary,
                }),
              'ram MEM_SIZE block list',
              opts.maxBlockListBytes ?? 1 << 20,
              { section: label, record: 'ram MEM_SIZE' },
            ),
          };
          info.length = src.offset - at;
          ram.setBlocks(list);
          sink.memSize?.(list, info);
          continue;
        }
        const block =
          scan.nameStart >= 0
            ? ram.named(
                latin1String(src.buf.subarray(scan.nameStart, scan.nameStart + scan.nameLength)),
                channel,
                at,
                label,
              )
            : ram.continued(channel, at, label);
        const offset = scan.value;
        if (offset + tps > block.usedLength) {
          throw new MigrationStreamError(
            'E_BAD_RAM_OFFSET',
            `RAM record at byte offset ${at}: page offset 0x${offset.toString(16)} is outside block "${block.name}" (used_length 0x${block.usedLength.toString(16)})`,
            { offset: at, section: label, record: `ram ${kind} record` },
          );
        }
        const d = scan.dataStart;
        switch (kind) {
          case 'ZERO':
            sink.zero?.(block, offset, scan.fill, info);
            break;
          case 'PAGE':
            sink.page?.(block, offset, src.buf.subarray(d, d + tps), info);
            break;
          case 'XBZRLE':
            if (postcopy) throw notInPostcopy('XBZRLE', at, label);
            sink.xbzrle?.(block, offset, src.buf.subarray(d, d + scan.dataLength), info);
            break;
          default:
            sink.compressed?.(block, offset, src.buf.subarray(d, d + scan.dataLength), info);
        }
        src.pos = pos + n;
      }
      await sink.idle?.();
      if (!(await src.ensure(need))) {
        if (opts.allowEndWithoutEos && src.available === 0) return false;
        throw new TruncatedStreamError('ram record', src.offset, need, src.available, {
          section: label,
          channel: src.channel,
        });
      }
    }
  } catch (err) {
    throw toStreamError(err, { section: label, channel: src.channel, offset: info.offset || src.offset });
  }
}

function notInPostcopy(kind: string, at: number, section: string | undefined): MigrationStreamError {
  return new MigrationStreamError(
    'E_BAD_RAM_FLAGS',
    `RAM ${kind} record at byte offset ${at} is not valid in postcopy`,
    {
      offset: at,
      section,
      record: 'ram record',
    },
  );
}

/** The `ram` section loader: every START/PART/END body is a RAM body ending with EOS. */
export class RamSectionLoader implements SectionLoader {
  readonly ram: RamState;
  sink: RamSink;

  constructor(ram: RamState, sink: RamSink) {
    this.ram = ram;
    this.sink = sink;
  }

  async load(ctx: SectionContext): Promise<SectionLoadResult | undefined> {
    if (ctx.section.versionId !== RAM_SECTION_VERSION) {
      throw new MigrationStreamError(
        'E_BAD_VERSION',
        `section ${ctx.section.label} at byte offset ${ctx.section.offset}: ram version ${ctx.section.versionId}, expected 4`,
        { offset: ctx.section.offset, section: ctx.section.label },
      );
    }
    await loadRamBody(ctx.source, this.ram, ctx.state, this.sink, { channel: 0, section: ctx.section });
    return undefined;
  }
}
