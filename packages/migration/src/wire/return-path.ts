import { type ByteReader, ByteWriter, VmstateError } from '@e2k-migrate/vmstate';
import { MigrationStreamError, toStreamError, UnsupportedFeatureError } from '../errors.js';
import {
  MIG_RP_MAX_PAYLOAD,
  MIG_RP_MSG_INFO,
  MIG_RP_MSG_PONG,
  MIG_RP_MSG_RECV_BITMAP,
  MIG_RP_MSG_REQ_PAGES,
  MIG_RP_MSG_REQ_PAGES_ID,
  MIG_RP_MSG_RESUME_ACK,
  MIG_RP_MSG_SHUT,
  MIG_RP_MSG_SWITCHOVER_ACK,
  RAMBLOCK_RECV_BITMAP_ENDING,
} from './constants.js';

/** A return-path message, destination → source (spec §8.2). */
export type RpMessage =
  | { type: 'SHUT'; value: number }
  | { type: 'PONG'; value: number }
  | { type: 'REQ_PAGES_ID'; start: number; length: number; block: string }
  | { type: 'REQ_PAGES'; start: number; length: number }
  /** `bitmap` is the blob that follows the message: bit i (byte i/8, bit i%8) = target page i received. */
  | { type: 'RECV_BITMAP'; block: string; bitmap: Uint8Array }
  | { type: 'RESUME_ACK'; value: number };

export type RpMessageType = RpMessage['type'];

/** The value RESUME_ACK must carry. */
export const MIGRATION_RESUME_ACK_VALUE = 1;

const TYPE_NUMBER: Record<RpMessageType, number> = {
  SHUT: MIG_RP_MSG_SHUT,
  PONG: MIG_RP_MSG_PONG,
  REQ_PAGES_ID: MIG_RP_MSG_REQ_PAGES_ID,
  REQ_PAGES: MIG_RP_MSG_REQ_PAGES,
  RECV_BITMAP: MIG_RP_MSG_RECV_BITMAP,
  RESUME_ACK: MIG_RP_MSG_RESUME_ACK,
};

/** Writes `be16 type, be16 len, payload` (+ the bitmap blob for RECV_BITMAP). */
export function encodeRpMessage(m: RpMessage, w: ByteWriter = new ByteWriter(32)): ByteWriter {
  const p = new ByteWriter(32);
  switch (m.type) {
    case 'SHUT':
    case 'PONG':
    case 'RESUME_ACK':
      p.u32be(m.value);
      break;
    case 'REQ_PAGES_ID':
      p.u64be(m.start).u32be(m.length).idstr(m.block);
      break;
    case 'REQ_PAGES':
      p.u64be(m.start).u32be(m.length);
      break;
    case 'RECV_BITMAP':
      p.idstr(m.block);
      break;
  }
  w.u16be(TYPE_NUMBER[m.type]).u16be(p.length).bytes(p.written());
  if (m.type === 'RECV_BITMAP') {
    if (m.bitmap.length % 8 !== 0)
      throw new MigrationStreamError('E_BAD_VALUE', 'RECV_BITMAP blob size must be a multiple of 8');
    w.u64be(m.bitmap.length).bytes(m.bitmap).u64be(RAMBLOCK_RECV_BITMAP_ENDING);
  }
  return w;
}

/**
 * Decodes one return-path message (and, for RECV_BITMAP, the blob after it). Rejects type 0,
 * unknown types, payloads over 512 bytes, wrong fixed lengths, a RESUME_ACK other than 1, and a
 * bitmap blob without its end mark. SWITCHOVER_ACK (8.1+) is a typed "unsupported feature".
 */
export function decodeRpMessage(r: ByteReader): RpMessage {
  const at = r.offset;
  let name = 'return-path message';
  try {
    const type = r.u16be('return-path message type');
    const len = r.u16be('return-path message length');
    if (type === MIG_RP_MSG_SWITCHOVER_ACK) {
      throw new UnsupportedFeatureError('SWITCHOVER_ACK', at, 'return-path message 7 (SWITCHOVER_ACK) is QEMU 8.1+', {
        record: 'return-path SWITCHOVER_ACK',
      });
    }
    const info = MIG_RP_MSG_INFO[type];
    if (info === undefined || type === 0) {
      throw bad(`unknown return-path message type ${type} at byte offset ${at}`, at, name);
    }
    name = `return-path ${info.name}`;
    if (len > MIG_RP_MAX_PAYLOAD) throw bad(`${name} at byte offset ${at}: length ${len} exceeds 512`, at, name);
    if (typeof info.len === 'number' && len !== info.len) {
      throw bad(`${name} at byte offset ${at}: length ${len}, expected ${info.len}`, at, name);
    }
    const p = r.sub(len, `${name} payload`);
    let m: RpMessage;
    try {
      m = decodePayload(type, p, at, name);
    } catch (err) {
      if (!(err instanceof VmstateError)) throw err;
      throw bad(`${name} at byte offset ${at}: malformed payload (${err.message})`, err.offset ?? at, name);
    }
    if (!p.atEnd) throw bad(`${name} at byte offset ${at}: ${p.remaining} trailing payload byte(s)`, p.offset, name);
    if (m.type === 'RECV_BITMAP') m.bitmap = decodeBitmapBlob(r, name);
    return m;
  } catch (err) {
    throw toStreamError(err, { record: name });
  }
}

function decodePayload(type: number, p: ByteReader, at: number, name: string): RpMessage {
  switch (type) {
    case MIG_RP_MSG_SHUT:
      return { type: 'SHUT', value: p.u32be('SHUT value') };
    case MIG_RP_MSG_PONG:
      return { type: 'PONG', value: p.u32be('PONG value') };
    case MIG_RP_MSG_REQ_PAGES_ID: {
      const start = p.u64beNumber('request start');
      const length = p.u32be('request length');
      return { type: 'REQ_PAGES_ID', start, length, block: p.idstr('request block name') };
    }
    case MIG_RP_MSG_REQ_PAGES:
      return { type: 'REQ_PAGES', start: p.u64beNumber('request start'), length: p.u32be('request length') };
    case MIG_RP_MSG_RECV_BITMAP:
      return { type: 'RECV_BITMAP', block: p.idstr('RECV_BITMAP block name'), bitmap: new Uint8Array(0) };
    default: {
      const value = p.u32be('RESUME_ACK value');
      if (value !== MIGRATION_RESUME_ACK_VALUE)
        throw bad(`${name} at byte offset ${at}: value ${value}, expected 1`, at, name);
      return { type: 'RESUME_ACK', value };
    }
  }
}

/** `be64 size, size bytes, be64 0x0123456789ABCDEF`. */
function decodeBitmapBlob(r: ByteReader, name: string): Uint8Array {
  const at = r.offset;
  const size = r.u64beNumber('RECV_BITMAP size');
  if (size % 8 !== 0) throw bad(`${name} bitmap size ${size} at byte offset ${at} is not a multiple of 8`, at, name);
  if (size > r.remaining) r.need(size + 8, `${name} bitmap`);
  const bitmap = r.bytesCopy(size, `${name} bitmap`);
  const endAt = r.offset;
  const end = r.u64be('RECV_BITMAP end mark');
  if (end !== RAMBLOCK_RECV_BITMAP_ENDING) {
    throw bad(
      `${name} end mark at byte offset ${endAt} is 0x${end.toString(16)}, expected 0x123456789abcdef`,
      endAt,
      name,
    );
  }
  return bitmap;
}

/** Size in bytes of a RECV_BITMAP blob for `pages` target pages: ceil(pages/8) rounded up to 8. */
export function recvBitmapSize(pages: number): number {
  return Math.ceil(Math.ceil(pages / 8) / 8) * 8;
}

/** Bit `page` of a RECV_BITMAP blob (little-endian 64-bit words = byte page/8, bit page%8). */
export function recvBitmapTest(bitmap: Uint8Array, page: number): boolean {
  return (((bitmap[page >>> 3] ?? 0) >>> (page & 7)) & 1) === 1;
}

export function recvBitmapSet(bitmap: Uint8Array, page: number): void {
  const i = page >>> 3;
  bitmap[i] = (bitmap[i] ?? 0) | (1 << (page & 7));
}

function bad(message: string, offset: number, record: string): MigrationStreamError {
  return new MigrationStreamError('E_BAD_RP_MESSAGE', message, { offset, record });
}
