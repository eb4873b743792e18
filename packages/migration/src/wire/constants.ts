/**
 * QEMU 7.2 migration wire constants, under QEMU's own names (spec §2, §4, §7, §8), with small
 * info tables (name, payload length) for the command and return-path families.
 */

// ---- File header and top-level record types (spec §2.1, §2.2) ----
export const QEMU_VM_FILE_MAGIC = 0x5145564d;
export const QEMU_VM_FILE_VERSION_COMPAT = 0x00000002;
export const QEMU_VM_FILE_VERSION = 0x00000003;

export const QEMU_VM_EOF = 0x00;
export const QEMU_VM_SECTION_START = 0x01;
export const QEMU_VM_SECTION_PART = 0x02;
export const QEMU_VM_SECTION_END = 0x03;
export const QEMU_VM_SECTION_FULL = 0x04;
export const QEMU_VM_SUBSECTION = 0x05;
export const QEMU_VM_VMDESCRIPTION = 0x06;
export const QEMU_VM_CONFIGURATION = 0x07;
export const QEMU_VM_COMMAND = 0x08;
export const QEMU_VM_SECTION_FOOTER = 0x7e;

/** Section record kinds by type byte. */
export const SECTION_TYPE_NAMES = {
  [QEMU_VM_SECTION_START]: 'START',
  [QEMU_VM_SECTION_PART]: 'PART',
  [QEMU_VM_SECTION_END]: 'END',
  [QEMU_VM_SECTION_FULL]: 'FULL',
} as const;
export type SectionKind = (typeof SECTION_TYPE_NAMES)[keyof typeof SECTION_TYPE_NAMES];

// ---- RAM (spec §4.1) ----
export const RAM_SAVE_FLAG_FULL = 0x001;
export const RAM_SAVE_FLAG_ZERO = 0x002;
export const RAM_SAVE_FLAG_MEM_SIZE = 0x004;
export const RAM_SAVE_FLAG_PAGE = 0x008;
export const RAM_SAVE_FLAG_EOS = 0x010;
export const RAM_SAVE_FLAG_CONTINUE = 0x020;
export const RAM_SAVE_FLAG_XBZRLE = 0x040;
export const RAM_SAVE_FLAG_HOOK = 0x080;
export const RAM_SAVE_FLAG_COMPRESS_PAGE = 0x100;
export const RAM_SAVE_FLAG_MULTIFD_FLUSH = 0x200;

/** First byte of an XBZRLE record body. */
export const ENCODING_FLAG_XBZRLE = 0x01;
/** The `ram` section version QEMU 7.2 writes. */
export const RAM_SECTION_VERSION = 4;
/** Target page size when nothing says otherwise (x86, `TARGET_PAGE_BITS` 12). */
export const DEFAULT_TARGET_PAGE_SIZE = 4096;

/** zlib's compressBound(n): the largest COMPRESS_PAGE payload for one page. */
export function compressBound(n: number): number {
  return n + (n >>> 12) + (n >>> 14) + (n >>> 25) + 13;
}

// ---- Commands (spec §8.1) ----
export const MIG_CMD_INVALID = 0;
export const MIG_CMD_OPEN_RETURN_PATH = 1;
export const MIG_CMD_PING = 2;
export const MIG_CMD_POSTCOPY_ADVISE = 3;
export const MIG_CMD_POSTCOPY_LISTEN = 4;
export const MIG_CMD_POSTCOPY_RUN = 5;
export const MIG_CMD_POSTCOPY_RAM_DISCARD = 6;
export const MIG_CMD_PACKAGED = 7;
export const MIG_CMD_ENABLE_COLO = 8;
export const MIG_CMD_POSTCOPY_RESUME = 9;
export const MIG_CMD_RECV_BITMAP = 10;
/** 10.0+ only; QEMU 7.2 rejects command numbers ≥ 11. */
export const MIG_CMD_SWITCHOVER_START = 11;
/** First command number QEMU 7.2 does not know. */
export const MIG_CMD_MAX_7_2 = 11;

/** Payload length of a command: a fixed byte count, `var` (checked by its codec) or a set of allowed values. */
export type PayloadLength = number | 'var' | readonly number[];

/** Command info table: QEMU name and payload length, by command number. */
export const MIG_CMD_INFO: Readonly<Record<number, { name: string; len: PayloadLength }>> = {
  [MIG_CMD_OPEN_RETURN_PATH]: { name: 'OPEN_RETURN_PATH', len: 0 },
  [MIG_CMD_PING]: { name: 'PING', len: 4 },
  [MIG_CMD_POSTCOPY_ADVISE]: { name: 'POSTCOPY_ADVISE', len: [0, 16] },
  [MIG_CMD_POSTCOPY_LISTEN]: { name: 'POSTCOPY_LISTEN', len: 0 },
  [MIG_CMD_POSTCOPY_RUN]: { name: 'POSTCOPY_RUN', len: 0 },
  [MIG_CMD_POSTCOPY_RAM_DISCARD]: { name: 'POSTCOPY_RAM_DISCARD', len: 'var' },
  [MIG_CMD_PACKAGED]: { name: 'PACKAGED', len: 4 },
  [MIG_CMD_ENABLE_COLO]: { name: 'ENABLE_COLO', len: 0 },
  [MIG_CMD_POSTCOPY_RESUME]: { name: 'POSTCOPY_RESUME', len: 0 },
  [MIG_CMD_RECV_BITMAP]: { name: 'RECV_BITMAP', len: 'var' },
  [MIG_CMD_SWITCHOVER_START]: { name: 'SWITCHOVER_START', len: 0 },
};

/** Version byte of POSTCOPY_RAM_DISCARD. */
export const POSTCOPY_RAM_DISCARD_VERSION = 0;
/** QEMU sends at most this many ranges per discard command. */
export const MAX_DISCARDS_PER_COMMAND = 12;
/** Largest package QEMU accepts (be32). */
export const MAX_VM_CMD_PACKAGED_SIZE = 0xffff_ffff;

// ---- Return path (spec §8.2) ----
export const MIG_RP_MSG_INVALID = 0;
export const MIG_RP_MSG_SHUT = 1;
export const MIG_RP_MSG_PONG = 2;
export const MIG_RP_MSG_REQ_PAGES_ID = 3;
export const MIG_RP_MSG_REQ_PAGES = 4;
export const MIG_RP_MSG_RECV_BITMAP = 5;
export const MIG_RP_MSG_RESUME_ACK = 6;
/** 8.1+ only (capability switchover-ack). */
export const MIG_RP_MSG_SWITCHOVER_ACK = 7;
/** The 7.2 source rejects return-path payloads longer than this. */
export const MIG_RP_MAX_PAYLOAD = 512;
/** End mark after a RECV_BITMAP blob. */
export const RAMBLOCK_RECV_BITMAP_ENDING = 0x0123456789abcdefn;

export const MIG_RP_MSG_INFO: Readonly<Record<number, { name: string; len: PayloadLength }>> = {
  [MIG_RP_MSG_SHUT]: { name: 'SHUT', len: 4 },
  [MIG_RP_MSG_PONG]: { name: 'PONG', len: 4 },
  [MIG_RP_MSG_REQ_PAGES_ID]: { name: 'REQ_PAGES_ID', len: 'var' },
  [MIG_RP_MSG_REQ_PAGES]: { name: 'REQ_PAGES', len: 12 },
  [MIG_RP_MSG_RECV_BITMAP]: { name: 'RECV_BITMAP', len: 'var' },
  [MIG_RP_MSG_RESUME_ACK]: { name: 'RESUME_ACK', len: 4 },
  [MIG_RP_MSG_SWITCHOVER_ACK]: { name: 'SWITCHOVER_ACK', len: 0 },
};

// ---- Multifd (spec §7) ----
export const MULTIFD_MAGIC = 0x11223344;
export const MULTIFD_VERSION = 1;
/** Size of the init packet that opens every multifd connection. */
export const MULTIFD_INIT_PACKET_SIZE = 64;
/** Bytes of guest pages one packet can carry (the offsets array holds this / TPS entries). */
export const MULTIFD_PACKET_SIZE = 512 * 1024;
export const MULTIFD_FLAG_SYNC = 0x01;
/** 7.2 compression method bits (bits 1–3). */
export const MULTIFD_FLAG_COMPRESSION_MASK = 0x0e;
export const MULTIFD_FLAG_NOCOMP = 0x00;
export const MULTIFD_FLAG_ZLIB = 0x02;
export const MULTIFD_FLAG_ZSTD = 0x04;
/** 9.1+ methods (not in 7.2). */
export const MULTIFD_FLAG_QPL = 0x08;
export const MULTIFD_FLAG_UADK = 0x10;
/** 9.2+. */
export const MULTIFD_FLAG_QATZIP = 0x20;
/** 10.0+ device-state packets. */
export const MULTIFD_FLAG_DEVICE_STATE = 0x40;
/** Fixed part of a 7.2 packet header before the offsets array. */
export const MULTIFD_PACKET_FIXED_SIZE = 320;
/** Length of the NUL-padded RAMBlock name in a packet header. */
export const MULTIFD_RAMBLOCK_NAME_SIZE = 256;

/** Multifd packet header length for a target page size: 320 + 8 × (512 KiB / TPS). */
export function multifdPacketHeaderSize(targetPageSize: number): number {
  return MULTIFD_PACKET_FIXED_SIZE + 8 * (MULTIFD_PACKET_SIZE / targetPageSize);
}

// ---- Configuration (spec §2.5) ----
export const CONFIGURATION_VMSD_NAME = 'configuration';
export const CONFIGURATION_SUBSECTION_PAGE_BITS = 'configuration/target-page-bits';
export const CONFIGURATION_SUBSECTION_CAPABILITIES = 'configuration/capabilities';
export const CONFIGURATION_SUBSECTION_UUID = 'configuration/uuid';
