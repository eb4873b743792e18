import { type ByteReader, ByteWriter, latin1Bytes, latin1String } from '@e2k-migrate/vmstate';
import { MigrationStreamError, toStreamError, UnsupportedFeatureError } from '../errors.js';
import {
  MULTIFD_FLAG_COMPRESSION_MASK,
  MULTIFD_FLAG_DEVICE_STATE,
  MULTIFD_FLAG_QATZIP,
  MULTIFD_FLAG_QPL,
  MULTIFD_FLAG_SYNC,
  MULTIFD_FLAG_UADK,
  MULTIFD_FLAG_ZLIB,
  MULTIFD_FLAG_ZSTD,
  MULTIFD_INIT_PACKET_SIZE,
  MULTIFD_MAGIC,
  MULTIFD_PACKET_SIZE,
  MULTIFD_RAMBLOCK_NAME_SIZE,
  MULTIFD_VERSION,
  multifdPacketHeaderSize,
} from './constants.js';
import { hex32 } from './header.js';

/** The 64-byte packet that opens each multifd connection (spec §7.1). */
export interface MultifdInit {
  /** 16 raw bytes of the VM UUID (all zero without `-uuid`). */
  uuid: Uint8Array;
  /** Channel number 0…N-1: numbers the channel, whatever the connection order. */
  id: number;
  /** The 39 reserved bytes after the id (zero from QEMU), kept for exact re-encoding. */
  reserved?: Uint8Array;
}

/** A 7.2 multifd packet header (spec §7.2). */
export interface MultifdPacketHeader {
  flags: number;
  /** `pages_alloc` (128 for 4 KiB pages). */
  pagesAlloc: number;
  normalPages: number;
  /** Payload bytes announced; stale in 7.2's empty packets, so only used when pages are carried. */
  nextPacketSize: number;
  packetNum: number;
  /** RAMBlock name up to its first NUL (byte 255 forced to NUL as in 7.2). */
  block: string;
  /** The first `normalPages` offsets (bytes within the block). */
  offsets: number[];
  /** Exact bytes for re-encoding: reserved 32..63, the 256-byte name field, unused offset entries. */
  raw?: { reserved: Uint8Array; blockField: Uint8Array; unusedOffsets: Uint8Array };
}

export function encodeMultifdInit(init: MultifdInit, w: ByteWriter = new ByteWriter(64)): ByteWriter {
  if (init.uuid.length !== 16) throw new MigrationStreamError('E_BAD_VALUE', 'multifd uuid must be 16 bytes');
  w.u32be(MULTIFD_MAGIC).u32be(MULTIFD_VERSION).bytes(init.uuid).u8(init.id);
  return init.reserved ? w.bytes(init.reserved) : w.zeros(39);
}

/** Decodes and checks the init packet (magic, version). */
export function decodeMultifdInit(r: ByteReader): MultifdInit {
  try {
    checkMagicVersion(r, 'multifd init packet');
    const uuid = r.bytesCopy(16, 'multifd uuid');
    const id = r.u8('multifd channel id');
    return { uuid, id, reserved: r.bytesCopy(MULTIFD_INIT_PACKET_SIZE - 25, 'multifd init reserved') };
  } catch (err) {
    throw toStreamError(err, { record: 'multifd init packet' });
  }
}

/** Header length for a target page size; the offsets array has 512 KiB / TPS entries. */
export function multifdHeaderSize(tps: number): number {
  return multifdPacketHeaderSize(tps);
}

/** Compression method name of a packet's flags (7.2: none, zlib, zstd). */
export function multifdCompression(flags: number): 'none' | 'zlib' | 'zstd' {
  const c = flags & MULTIFD_FLAG_COMPRESSION_MASK;
  return c === MULTIFD_FLAG_ZLIB ? 'zlib' : c === MULTIFD_FLAG_ZSTD ? 'zstd' : 'none';
}

export function encodeMultifdPacketHeader(
  h: MultifdPacketHeader,
  tps: number,
  w: ByteWriter = new ByteWriter(multifdHeaderSize(tps)),
): ByteWriter {
  const entries = MULTIFD_PACKET_SIZE / tps;
  if (h.offsets.length !== h.normalPages || h.normalPages > entries) {
    throw new MigrationStreamError(
      'E_BAD_VALUE',
      `multifd packet: ${h.offsets.length} offsets for ${h.normalPages} pages`,
    );
  }
  w.u32be(MULTIFD_MAGIC).u32be(MULTIFD_VERSION).u32be(h.flags).u32be(h.pagesAlloc).u32be(h.normalPages);
  w.u32be(h.nextPacketSize).u64be(h.packetNum);
  if (h.raw) w.bytes(h.raw.reserved).bytes(h.raw.blockField);
  else {
    const name = latin1Bytes(h.block);
    if (name.length >= MULTIFD_RAMBLOCK_NAME_SIZE)
      throw new MigrationStreamError('E_BAD_VALUE', 'multifd block name too long');
    w.zeros(32)
      .bytes(name)
      .zeros(MULTIFD_RAMBLOCK_NAME_SIZE - name.length);
  }
  for (const o of h.offsets) w.u64be(o);
  if (h.raw) w.bytes(h.raw.unusedOffsets);
  else w.zeros(8 * (entries - h.normalPages));
  return w;
}

/**
 * Decodes one packet header (`multifdHeaderSize(tps)` bytes) with the 7.2 receiver's checks:
 * magic, version, pages_alloc ≤ 512 KiB / TPS, normal_pages ≤ pages_alloc. Later-QEMU layouts
 * (9.0 zero_pages, 10.0 device state, qpl/uadk/qatzip) are typed "unsupported feature" errors.
 * Block names and offsets are checked by the caller, which knows the RAM blocks.
 */
export function decodeMultifdPacketHeader(r: ByteReader, tps: number): MultifdPacketHeader {
  const at = r.offset;
  try {
    checkMagicVersion(r, 'multifd packet');
    const flags = r.u32be('multifd flags');
    if (flags & MULTIFD_FLAG_DEVICE_STATE) {
      throw new UnsupportedFeatureError(
        'multifd device state',
        at + 8,
        'multifd device-state packets (flag 0x40) are QEMU 10.0+',
        {
          record: 'multifd packet',
        },
      );
    }
    const comp = flags & 0x3e;
    if (comp === MULTIFD_FLAG_QPL || comp === MULTIFD_FLAG_UADK || comp === MULTIFD_FLAG_QATZIP) {
      const n = comp === MULTIFD_FLAG_QPL ? 'qpl' : comp === MULTIFD_FLAG_UADK ? 'uadk' : 'qatzip';
      throw new UnsupportedFeatureError(`multifd-compression ${n}`, at + 8, `multifd compression ${n} is QEMU 9.1+`, {
        record: 'multifd packet',
      });
    }
    if (
      flags & ~(MULTIFD_FLAG_SYNC | MULTIFD_FLAG_COMPRESSION_MASK) ||
      comp === 0x06 ||
      comp === 0x0a ||
      comp === 0x0c ||
      comp === 0x0e
    ) {
      throw new MigrationStreamError(
        'E_MULTIFD',
        `multifd packet at byte offset ${at}: unknown flags 0x${hex32(flags)}`,
        {
          offset: at + 8,
          record: 'multifd packet',
        },
      );
    }
    const entries = MULTIFD_PACKET_SIZE / tps;
    const pagesAlloc = r.u32be('multifd pages_alloc');
    if (pagesAlloc > entries) {
      throw new MigrationStreamError(
        'E_MULTIFD',
        `multifd packet at byte offset ${at}: pages_alloc ${pagesAlloc} exceeds the maximum ${entries}`,
        { offset: at + 12, record: 'multifd packet' },
      );
    }
    const normalPages = r.u32be('multifd normal_pages');
    if (normalPages > pagesAlloc) {
      throw new MigrationStreamError(
        'E_MULTIFD',
        `multifd packet at byte offset ${at}: normal_pages ${normalPages} exceeds pages_alloc ${pagesAlloc}`,
        { offset: at + 16, record: 'multifd packet' },
      );
    }
    const nextPacketSize = r.u32be('multifd next_packet_size');
    const packetNum = r.u64beNumber('multifd packet_num');
    const reserved = r.bytesCopy(32, 'multifd reserved');
    if (reserved[0] || reserved[1] || reserved[2] || reserved[3]) {
      throw new UnsupportedFeatureError(
        'multifd zero_pages',
        at + 32,
        'a non-zero zero_pages field is the QEMU 9.0+ packet layout',
        {
          record: 'multifd packet',
        },
      );
    }
    const blockField = r.bytesCopy(MULTIFD_RAMBLOCK_NAME_SIZE, 'multifd ramblock');
    let nul = blockField.indexOf(0);
    if (nul < 0 || nul > MULTIFD_RAMBLOCK_NAME_SIZE - 1) nul = MULTIFD_RAMBLOCK_NAME_SIZE - 1;
    const block = latin1String(blockField.subarray(0, nul));
    const offsets: number[] = [];
    for (let i = 0; i < normalPages; i++) offsets.push(r.u64beNumber('multifd page offset'));
    const unusedOffsets = r.bytesCopy(8 * (entries - normalPages), 'multifd unused offsets');
    return {
      flags,
      pagesAlloc,
      normalPages,
      nextPacketSize,
      packetNum,
      block,
      offsets,
      raw: { reserved, blockField, unusedOffsets },
    };
  } catch (err) {
    throw toStreamError(err, { record: 'multifd packet' });
  }
}

/** Payload bytes that follow a header: none without pages; nocomp pages × TPS; else next_packet_size. */
export function multifdPayloadLength(h: MultifdPacketHeader, tps: number): number {
  if (h.normalPages === 0) return 0;
  return multifdCompression(h.flags) === 'none' ? h.normalPages * tps : h.nextPacketSize;
}

function checkMagicVersion(r: ByteReader, what: string): void {
  const at = r.offset;
  const magic = r.u32be(`${what} magic`);
  if (magic !== MULTIFD_MAGIC) {
    throw new MigrationStreamError(
      'E_BAD_MAGIC',
      `${what} at byte offset ${at}: magic 0x${hex32(magic)}, expected 0x11223344`,
      {
        offset: at,
        record: what,
      },
    );
  }
  const version = r.u32be(`${what} version`);
  if (version !== MULTIFD_VERSION) {
    throw new MigrationStreamError(
      'E_BAD_VERSION',
      `${what} at byte offset ${at + 4}: version ${version}, expected 1`,
      {
        offset: at + 4,
        record: what,
      },
    );
  }
}
