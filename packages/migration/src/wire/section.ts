import { type ByteReader, ByteWriter } from '@e2k-migrate/vmstate';
import { MigrationStreamError, toStreamError } from '../errors.js';
import {
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_FOOTER,
  QEMU_VM_SECTION_FULL,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  SECTION_TYPE_NAMES,
  type SectionKind,
} from './constants.js';
import { hex32 } from './header.js';

/** START (0x01) / FULL (0x04): `u8 type, be32 section_id, idstr, be32 instance_id, be32 version_id`. */
export interface SectionHeaderFull {
  kind: 'START' | 'FULL';
  sectionId: number;
  idstr: string;
  instanceId: number;
  versionId: number;
}

/** PART (0x02) / END (0x03): `u8 type, be32 section_id`. */
export interface SectionHeaderShort {
  kind: 'PART' | 'END';
  sectionId: number;
}

export type SectionHeader = SectionHeaderFull | SectionHeaderShort;

/** Section footer: `u8 0x7E, be32 section_id` (spec §2.4). */
export const SECTION_FOOTER_SIZE = 5;

const KIND_BYTE: Record<SectionKind, number> = {
  START: QEMU_VM_SECTION_START,
  PART: QEMU_VM_SECTION_PART,
  END: QEMU_VM_SECTION_END,
  FULL: QEMU_VM_SECTION_FULL,
};

/** True for the four section record type bytes. */
export function isSectionType(b: number): b is 1 | 2 | 3 | 4 {
  return b >= QEMU_VM_SECTION_START && b <= QEMU_VM_SECTION_FULL;
}

export function sectionKindOf(typeByte: 1 | 2 | 3 | 4): SectionKind {
  return SECTION_TYPE_NAMES[typeByte];
}

export function encodeSectionHeader(h: SectionHeader, w: ByteWriter = new ByteWriter(32)): ByteWriter {
  w.u8(KIND_BYTE[h.kind]).u32be(h.sectionId);
  if (h.kind === 'START' || h.kind === 'FULL') w.idstr(h.idstr).u32be(h.instanceId).u32be(h.versionId);
  return w;
}

/** Decodes a section header after its type byte has been read. */
export function decodeSectionHeaderBody(typeByte: 1 | 2 | 3 | 4, r: ByteReader): SectionHeader {
  const kind = sectionKindOf(typeByte);
  try {
    const sectionId = r.u32be('section_id');
    if (kind === 'PART' || kind === 'END') return { kind, sectionId };
    const idstr = r.idstr('section idstr');
    const instanceId = r.u32be('instance_id');
    const versionId = r.u32be('version_id');
    return { kind, sectionId, idstr, instanceId, versionId };
  } catch (err) {
    throw toStreamError(err, { record: `section ${kind} header` });
  }
}

export function encodeFooter(sectionId: number, w: ByteWriter = new ByteWriter(8)): ByteWriter {
  return w.u8(QEMU_VM_SECTION_FOOTER).u32be(sectionId);
}

/**
 * Reads a section footer and checks it names `sectionId`, as QEMU's loader does.
 * @param section `idstr (id)` for the error message.
 */
export function decodeFooter(r: ByteReader, sectionId: number, section: string): void {
  const at = r.offset;
  try {
    const b = r.u8('section footer');
    if (b !== QEMU_VM_SECTION_FOOTER) {
      throw new MigrationStreamError(
        'E_FOOTER_MISMATCH',
        `missing section footer for ${section} at byte offset ${at}: expected 0x7e, found 0x${b.toString(16).padStart(2, '0')}`,
        { offset: at, section, record: 'section footer' },
      );
    }
    const id = r.u32be('section footer id');
    if (id !== sectionId) {
      throw new MigrationStreamError(
        'E_FOOTER_MISMATCH',
        `section footer at byte offset ${at} names section id 0x${hex32(id)}, expected ${sectionId} (${section})`,
        { offset: at, section, record: 'section footer' },
      );
    }
  } catch (err) {
    throw toStreamError(err, { section, record: 'section footer' });
  }
}
