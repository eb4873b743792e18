import { type ByteReader, ByteWriter, latin1String, VmstateError } from '@e2k-migrate/vmstate';
import { MigrationStreamError, toStreamError, UnsupportedFeatureError } from '../errors.js';
import {
  MIG_CMD_ENABLE_COLO,
  MIG_CMD_INFO,
  MIG_CMD_MAX_7_2,
  MIG_CMD_OPEN_RETURN_PATH,
  MIG_CMD_PACKAGED,
  MIG_CMD_PING,
  MIG_CMD_POSTCOPY_ADVISE,
  MIG_CMD_POSTCOPY_LISTEN,
  MIG_CMD_POSTCOPY_RAM_DISCARD,
  MIG_CMD_POSTCOPY_RESUME,
  MIG_CMD_POSTCOPY_RUN,
  MIG_CMD_RECV_BITMAP,
  MIG_CMD_SWITCHOVER_START,
  POSTCOPY_RAM_DISCARD_VERSION,
  QEMU_VM_COMMAND,
} from './constants.js';

/** One byte range of a POSTCOPY_RAM_DISCARD command, in bytes within the block. */
export interface DiscardRange {
  start: number;
  length: number;
}

/** A decoded QEMU_VM_COMMAND (spec §8.1). */
export type MigCommand =
  | { cmd: 'OPEN_RETURN_PATH' }
  | { cmd: 'PING'; value: number }
  /** 16-byte form with both fields (postcopy-ram), or the empty form (dirty-bitmaps only). */
  | { cmd: 'POSTCOPY_ADVISE'; pageSizeSummary?: number; targetPageSize?: number }
  | { cmd: 'POSTCOPY_LISTEN' }
  | { cmd: 'POSTCOPY_RUN' }
  | { cmd: 'POSTCOPY_RAM_DISCARD'; version: number; block: string; ranges: DiscardRange[] }
  /** `length` bytes of nested stream follow the command, outside its payload. */
  | { cmd: 'PACKAGED'; length: number }
  | { cmd: 'ENABLE_COLO' }
  | { cmd: 'POSTCOPY_RESUME' }
  | { cmd: 'RECV_BITMAP'; block: string };

export type MigCommandName = MigCommand['cmd'];

const CMD_NUMBER: Record<MigCommandName, number> = {
  OPEN_RETURN_PATH: MIG_CMD_OPEN_RETURN_PATH,
  PING: MIG_CMD_PING,
  POSTCOPY_ADVISE: MIG_CMD_POSTCOPY_ADVISE,
  POSTCOPY_LISTEN: MIG_CMD_POSTCOPY_LISTEN,
  POSTCOPY_RUN: MIG_CMD_POSTCOPY_RUN,
  POSTCOPY_RAM_DISCARD: MIG_CMD_POSTCOPY_RAM_DISCARD,
  PACKAGED: MIG_CMD_PACKAGED,
  ENABLE_COLO: MIG_CMD_ENABLE_COLO,
  POSTCOPY_RESUME: MIG_CMD_POSTCOPY_RESUME,
  RECV_BITMAP: MIG_CMD_RECV_BITMAP,
};

/** Writes `08, be16 cmd, be16 len, payload` (for PACKAGED only the header; the package follows). */
export function encodeCommand(c: MigCommand, w: ByteWriter = new ByteWriter(32)): ByteWriter {
  const p = new ByteWriter(32);
  switch (c.cmd) {
    case 'PING':
      p.u32be(c.value);
      break;
    case 'POSTCOPY_ADVISE':
      if (c.pageSizeSummary !== undefined || c.targetPageSize !== undefined) {
        p.u64be(c.pageSizeSummary ?? 0).u64be(c.targetPageSize ?? 0);
      }
      break;
    case 'POSTCOPY_RAM_DISCARD':
      if (c.ranges.length === 0)
        throw new MigrationStreamError('E_BAD_VALUE', 'POSTCOPY_RAM_DISCARD needs at least one range');
      p.u8(c.version).idstr(c.block).u8(0);
      for (const r of c.ranges) p.u64be(r.start).u64be(r.length);
      break;
    case 'PACKAGED':
      p.u32be(c.length);
      break;
    case 'RECV_BITMAP':
      p.idstr(c.block);
      break;
    default:
      break;
  }
  const payload = p.written();
  if (payload.length > 0xffff) throw new MigrationStreamError('E_BAD_VALUE', `command ${c.cmd} payload too long`);
  return w.u8(QEMU_VM_COMMAND).u16be(CMD_NUMBER[c.cmd]).u16be(payload.length).bytes(payload);
}

/** Writes a PACKAGED command followed by the package bytes (a header-less nested stream). */
export function encodePackaged(pkg: Uint8Array, w: ByteWriter = new ByteWriter(pkg.length + 16)): ByteWriter {
  return encodeCommand({ cmd: 'PACKAGED', length: pkg.length }, w).bytes(pkg);
}

/**
 * Decodes a command after its 0x08 type byte: `be16 cmd, be16 len, len bytes`. Rejects command
 * 0 and numbers QEMU 7.2 does not know (11 = SWITCHOVER_START is a typed "unsupported feature"),
 * fixed-length commands whose length differs, and payloads not consumed exactly.
 */
export function decodeCommandBody(r: ByteReader): MigCommand {
  const at = r.offset;
  let name = 'command';
  try {
    const num = r.u16be('command number');
    const len = r.u16be('command length');
    const info = MIG_CMD_INFO[num];
    if (num === MIG_CMD_SWITCHOVER_START) {
      throw new UnsupportedFeatureError('SWITCHOVER_START', at, 'command 11 (MIG_CMD_SWITCHOVER_START) is QEMU 10.0+', {
        record: 'command SWITCHOVER_START',
      });
    }
    if (info === undefined || num === 0 || num >= MIG_CMD_MAX_7_2) {
      throw new MigrationStreamError('E_BAD_COMMAND', `unknown command number ${num} at byte offset ${at}`, {
        offset: at,
        record: 'command',
      });
    }
    name = `command ${info.name}`;
    if (typeof info.len === 'number' ? len !== info.len : Array.isArray(info.len) && !info.len.includes(len)) {
      throw new MigrationStreamError(
        'E_BAD_COMMAND',
        `${name} at byte offset ${at} has payload length ${len}, expected ${String(info.len)}`,
        { offset: at, record: name },
      );
    }
    if (len > r.remaining) {
      r.need(len, `${name} payload`);
    }
    const p = r.sub(len, `${name} payload`);
    let c: MigCommand;
    try {
      c = decodePayload(num, p, at, name);
    } catch (err) {
      if (!(err instanceof VmstateError)) throw err;
      // The whole payload is present: running out of it means the payload is malformed.
      throw new MigrationStreamError(
        'E_BAD_COMMAND',
        `${name} at byte offset ${at}: malformed payload (${err.message})`,
        {
          offset: err.offset ?? at,
          record: name,
          cause: err,
        },
      );
    }
    if (!p.atEnd) {
      throw new MigrationStreamError(
        'E_BAD_COMMAND',
        `${name} at byte offset ${at}: ${p.remaining} unexpected trailing payload byte(s)`,
        { offset: p.offset, record: name },
      );
    }
    return c;
  } catch (err) {
    throw toStreamError(err, { record: name });
  }
}

function decodePayload(num: number, p: ByteReader, at: number, name: string): MigCommand {
  switch (num) {
    case MIG_CMD_OPEN_RETURN_PATH:
      return { cmd: 'OPEN_RETURN_PATH' };
    case MIG_CMD_PING:
      return { cmd: 'PING', value: p.u32be('PING value') };
    case MIG_CMD_POSTCOPY_ADVISE:
      if (p.remaining === 0) return { cmd: 'POSTCOPY_ADVISE' };
      return {
        cmd: 'POSTCOPY_ADVISE',
        pageSizeSummary: p.u64beNumber('page size summary'),
        targetPageSize: p.u64beNumber('target page size'),
      };
    case MIG_CMD_POSTCOPY_LISTEN:
      return { cmd: 'POSTCOPY_LISTEN' };
    case MIG_CMD_POSTCOPY_RUN:
      return { cmd: 'POSTCOPY_RUN' };
    case MIG_CMD_POSTCOPY_RAM_DISCARD:
      return decodeDiscard(p, at, name);
    case MIG_CMD_PACKAGED:
      return { cmd: 'PACKAGED', length: p.u32be('package length') };
    case MIG_CMD_ENABLE_COLO:
      return { cmd: 'ENABLE_COLO' };
    case MIG_CMD_POSTCOPY_RESUME:
      return { cmd: 'POSTCOPY_RESUME' };
    default: {
      // MIG_CMD_RECV_BITMAP: u8 n + name, len must be n + 1
      const block = p.idstr('RECV_BITMAP block name');
      return { cmd: 'RECV_BITMAP', block };
    }
  }
}

function decodeDiscard(p: ByteReader, at: number, name: string): MigCommand {
  const version = p.u8('discard version');
  if (version !== POSTCOPY_RAM_DISCARD_VERSION) {
    throw new MigrationStreamError('E_BAD_COMMAND', `${name} at byte offset ${at}: version ${version}, expected 0`, {
      offset: at,
      record: name,
    });
  }
  const block = latin1String(p.bytesView(p.u8('discard block name length'), 'discard block name'));
  const nulAt = p.offset;
  if (p.u8('discard name terminator') !== 0) {
    throw new MigrationStreamError('E_BAD_COMMAND', `${name}: missing NUL after block name at byte offset ${nulAt}`, {
      offset: nulAt,
      record: name,
    });
  }
  if (p.remaining === 0 || p.remaining % 16 !== 0) {
    throw new MigrationStreamError(
      'E_BAD_COMMAND',
      `${name} at byte offset ${at}: ${p.remaining} range bytes, expected a non-zero multiple of 16`,
      { offset: p.offset, record: name },
    );
  }
  const ranges: DiscardRange[] = [];
  while (!p.atEnd) ranges.push({ start: p.u64beNumber('discard start'), length: p.u64beNumber('discard length') });
  return { cmd: 'POSTCOPY_RAM_DISCARD', version, block, ranges };
}

/** Name of a command number (for listings), or `CMD_<n>`. */
export function commandName(num: number): string {
  return MIG_CMD_INFO[num]?.name ?? `CMD_${num}`;
}
