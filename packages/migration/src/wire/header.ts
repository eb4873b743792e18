import { type ByteReader, ByteWriter } from '@e2k-migrate/vmstate';
import { MigrationStreamError, toStreamError } from '../errors.js';
import { QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION, QEMU_VM_FILE_VERSION_COMPAT } from './constants.js';

/** The 8-byte file header: `be32 magic "QEVM"`, `be32 version 3` (spec §2.1). */
export interface FileHeader {
  magic: number;
  version: number;
}

export const FILE_HEADER_SIZE = 8;

/** Writes `51 45 56 4d 00 00 00 03`. */
export function encodeHeader(w: ByteWriter = new ByteWriter(8)): ByteWriter {
  return w.u32be(QEMU_VM_FILE_MAGIC).u32be(QEMU_VM_FILE_VERSION);
}

/**
 * Reads and checks the file header. Version 2 (`QEMU_VM_FILE_VERSION_COMPAT`) is rejected as
 * obsolete, as QEMU does; any other version or magic is an error.
 */
export function decodeHeader(r: ByteReader): FileHeader {
  const at = r.offset;
  try {
    const magic = r.u32be('file magic');
    if (magic !== QEMU_VM_FILE_MAGIC) {
      throw new MigrationStreamError(
        'E_BAD_MAGIC',
        `expected file magic 0x5145564d ("QEVM") at byte offset ${at}, found 0x${hex32(magic)}`,
        { offset: at, record: 'file header' },
      );
    }
    const version = r.u32be('file version');
    if (version !== QEMU_VM_FILE_VERSION) {
      const why = version === QEMU_VM_FILE_VERSION_COMPAT ? ' (obsolete v2 format)' : '';
      throw new MigrationStreamError(
        'E_BAD_VERSION',
        `expected file version 3 at byte offset ${at + 4}, found ${version}${why}`,
        { offset: at + 4, record: 'file header' },
      );
    }
    return { magic, version };
  } catch (err) {
    throw toStreamError(err, { record: 'file header' });
  }
}

export function hex32(v: number): string {
  return (v >>> 0).toString(16).padStart(8, '0');
}
