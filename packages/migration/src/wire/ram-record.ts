import type { ByteWriter } from '@e2k-migrate/vmstate';
import { MigrationStreamError, UnsupportedFeatureError } from '../errors.js';
import {
  compressBound,
  ENCODING_FLAG_XBZRLE,
  RAM_SAVE_FLAG_COMPRESS_PAGE,
  RAM_SAVE_FLAG_CONTINUE,
  RAM_SAVE_FLAG_EOS,
  RAM_SAVE_FLAG_FULL,
  RAM_SAVE_FLAG_HOOK,
  RAM_SAVE_FLAG_MEM_SIZE,
  RAM_SAVE_FLAG_MULTIFD_FLUSH,
  RAM_SAVE_FLAG_PAGE,
  RAM_SAVE_FLAG_XBZRLE,
  RAM_SAVE_FLAG_ZERO,
} from './constants.js';

/** What a RAM record carries, from its flags with CONTINUE masked off (spec §4.1). */
export type RamRecordKind = 'ZERO' | 'MEM_SIZE' | 'PAGE' | 'EOS' | 'XBZRLE' | 'COMPRESS_PAGE';

/**
 * The head of one RAM record as found by {@link scanRamRecord}. Positions are indexes into the
 * scanned buffer. Reused between records: copy what must outlive the call.
 */
export interface RamRecordScan {
  kind: RamRecordKind;
  /** Raw low bits of the record word (`word & (TPS-1)`), CONTINUE included. */
  flags: number;
  /** Page offset within the block; for MEM_SIZE the total byte count. */
  value: number;
  /** Index of the block name bytes, or -1 when the record has no name (CONTINUE, MEM_SIZE, EOS). */
  nameStart: number;
  nameLength: number;
  /** Index and length of the data after the header + name (page bytes, XBZRLE delta, zlib data). */
  dataStart: number;
  dataLength: number;
  /** ZERO: the fill byte. */
  fill: number;
  /** Total record length in bytes (for MEM_SIZE only the 8-byte word; the list follows). */
  length: number;
}

export function newRamRecordScan(): RamRecordScan {
  return {
    kind: 'EOS',
    flags: 0,
    value: 0,
    nameStart: -1,
    nameLength: 0,
    dataStart: 0,
    dataLength: 0,
    fill: 0,
    length: 8,
  };
}

/**
 * Maps record flags to their kind, exactly as QEMU 7.2's loader switches on
 * `flags & ~CONTINUE`. HOOK (RDMA) and MULTIFD_FLUSH (8.1+) are typed "unsupported feature"
 * errors; FULL (obsolete) and every other combination are E_BAD_RAM_FLAGS.
 * @param at absolute offset of the record (for errors).
 */
export function classifyRamFlags(flags: number, at: number): RamRecordKind {
  switch (flags & ~RAM_SAVE_FLAG_CONTINUE) {
    case RAM_SAVE_FLAG_ZERO:
      return 'ZERO';
    case RAM_SAVE_FLAG_PAGE:
      return 'PAGE';
    case RAM_SAVE_FLAG_XBZRLE:
      return 'XBZRLE';
    case RAM_SAVE_FLAG_EOS:
      return 'EOS';
    case RAM_SAVE_FLAG_MEM_SIZE:
      return 'MEM_SIZE';
    case RAM_SAVE_FLAG_COMPRESS_PAGE:
      return 'COMPRESS_PAGE';
  }
  if (flags & RAM_SAVE_FLAG_MULTIFD_FLUSH) {
    throw new UnsupportedFeatureError('MULTIFD_FLUSH', at, 'RAM_SAVE_FLAG_MULTIFD_FLUSH (0x200) is QEMU 8.1+', {
      record: 'ram record',
    });
  }
  if (flags & RAM_SAVE_FLAG_HOOK) {
    throw new UnsupportedFeatureError('RAM_SAVE_FLAG_HOOK', at, 'RAM hooks (0x80) exist only on RDMA transports', {
      record: 'ram record',
    });
  }
  const why = flags & RAM_SAVE_FLAG_FULL ? ' (RAM_SAVE_FLAG_FULL is obsolete)' : '';
  throw new MigrationStreamError(
    'E_BAD_RAM_FLAGS',
    `unknown RAM record flags 0x${flags.toString(16)} at byte offset ${at}${why}`,
    { offset: at, record: 'ram record' },
  );
}

/** True when a record of this kind and flags carries a block name after its word. */
export function ramRecordHasName(kind: RamRecordKind, flags: number): boolean {
  return kind !== 'EOS' && kind !== 'MEM_SIZE' && (flags & RAM_SAVE_FLAG_CONTINUE) === 0;
}

/**
 * Scans the RAM record starting at `buf[pos]` with `avail` bytes present, without copying.
 * Returns its total length, or the negated number of bytes needed from `pos` when the record is
 * not complete yet (call again once that many are buffered). Throws on invalid flags or lengths.
 * @param at absolute stream offset of `buf[pos]` (for errors).
 */
export function scanRamRecord(
  buf: Uint8Array,
  view: DataView,
  pos: number,
  avail: number,
  tps: number,
  at: number,
  out: RamRecordScan,
): number {
  if (avail < 8) return -8;
  const hi = view.getUint32(pos);
  const lo = view.getUint32(pos + 4);
  const flags = lo & (tps - 1);
  const kind = classifyRamFlags(flags, at);
  if (hi > 0x1fffff) {
    throw new MigrationStreamError(
      'E_BAD_RAM_OFFSET',
      `RAM record at byte offset ${at}: offset 0x${hi.toString(16)}${(lo - flags).toString(16).padStart(8, '0')} beyond 2^53`,
      { offset: at, record: 'ram record' },
    );
  }
  out.kind = kind;
  out.flags = flags;
  out.value = hi * 0x1_0000_0000 + (lo - flags);
  let p = 8;
  out.nameStart = -1;
  out.nameLength = 0;
  if (ramRecordHasName(kind, flags)) {
    if (avail < 9) return -9;
    const n = buf[pos + 8] as number;
    if (n === 0) {
      throw new MigrationStreamError('E_BAD_RAM_BLOCK', `RAM record at byte offset ${at} has an empty block name`, {
        offset: at + 8,
        record: 'ram record',
      });
    }
    out.nameStart = pos + 9;
    out.nameLength = n;
    p = 9 + n;
  }
  switch (kind) {
    case 'ZERO':
      if (avail < p + 1) return -(p + 1);
      out.fill = buf[pos + p] as number;
      out.dataStart = pos + p + 1;
      out.dataLength = 0;
      p += 1;
      break;
    case 'PAGE':
      out.dataStart = pos + p;
      out.dataLength = tps;
      p += tps;
      break;
    case 'XBZRLE': {
      if (avail < p + 3) return -(p + 3);
      const enc = buf[pos + p] as number;
      if (enc !== ENCODING_FLAG_XBZRLE) {
        throw new MigrationStreamError(
          'E_XBZRLE',
          `XBZRLE record at byte offset ${at}: encoding byte 0x${enc.toString(16)}, expected 0x01`,
          { offset: at + p, record: 'ram XBZRLE record' },
        );
      }
      const len = view.getUint16(pos + p + 1);
      if (len > tps) {
        throw new MigrationStreamError(
          'E_XBZRLE',
          `XBZRLE record at byte offset ${at}: length ${len} exceeds page size ${tps}`,
          {
            offset: at + p + 1,
            record: 'ram XBZRLE record',
          },
        );
      }
      out.dataStart = pos + p + 3;
      out.dataLength = len;
      p += 3 + len;
      break;
    }
    case 'COMPRESS_PAGE': {
      if (avail < p + 4) return -(p + 4);
      const len = view.getUint32(pos + p);
      if (len > compressBound(tps)) {
        throw new MigrationStreamError(
          'E_COMPRESS',
          `COMPRESS_PAGE record at byte offset ${at}: length ${len} exceeds compressBound(${tps}) = ${compressBound(tps)}`,
          { offset: at + p, record: 'ram COMPRESS_PAGE record' },
        );
      }
      out.dataStart = pos + p + 4;
      out.dataLength = len;
      p += 4 + len;
      break;
    }
    default:
      out.dataStart = pos + p;
      out.dataLength = 0;
  }
  out.length = p;
  return avail < p ? -p : p;
}

/** Writes `be64 offset|flags` and, unless CONTINUE is set (or the kind has none), the block name. */
export function encodeRamRecordHeader(w: ByteWriter, value: number, flags: number, block?: string): ByteWriter {
  const kind = classifyRamFlags(flags, 0);
  if (value % 1 !== 0 || value < 0)
    throw new MigrationStreamError('E_BAD_VALUE', `RAM record value ${value} is not a byte count`);
  w.u64be(BigInt(value) | BigInt(flags));
  if (ramRecordHasName(kind, flags)) {
    if (block === undefined || block.length === 0) {
      throw new MigrationStreamError('E_BAD_VALUE', `RAM ${kind} record without CONTINUE needs a block name`);
    }
    w.idstr(block);
  }
  return w;
}

/** `block` undefined = CONTINUE (same block as the previous record on this channel). */
export function encodeRamZero(w: ByteWriter, offset: number, block: string | undefined, fill = 0): ByteWriter {
  return encodeRamRecordHeader(w, offset, RAM_SAVE_FLAG_ZERO | cont(block), block).u8(fill);
}

export function encodeRamPage(w: ByteWriter, offset: number, block: string | undefined, page: Uint8Array): ByteWriter {
  return encodeRamRecordHeader(w, offset, RAM_SAVE_FLAG_PAGE | cont(block), block).bytes(page);
}

/** XBZRLE record: header, `u8 0x01`, `be16 len`, encoded delta. */
export function encodeRamXbzrle(
  w: ByteWriter,
  offset: number,
  block: string | undefined,
  delta: Uint8Array,
): ByteWriter {
  return encodeRamRecordHeader(w, offset, RAM_SAVE_FLAG_XBZRLE | cont(block), block)
    .u8(ENCODING_FLAG_XBZRLE)
    .u16be(delta.length)
    .bytes(delta);
}

/** Legacy COMPRESS_PAGE record: header, `be32 len`, one complete zlib stream. */
export function encodeRamCompressed(
  w: ByteWriter,
  offset: number,
  block: string | undefined,
  zlib: Uint8Array,
): ByteWriter {
  return encodeRamRecordHeader(w, offset, RAM_SAVE_FLAG_COMPRESS_PAGE | cont(block), block)
    .u32be(zlib.length)
    .bytes(zlib);
}

/** `00 00 00 00 00 00 00 10`: ends every RAM section body. */
export function encodeRamEos(w: ByteWriter): ByteWriter {
  return w.u64be(RAM_SAVE_FLAG_EOS);
}

function cont(block: string | undefined): number {
  return block === undefined ? RAM_SAVE_FLAG_CONTINUE : 0;
}
