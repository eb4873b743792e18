import { type ByteReader, ByteWriter, latin1Bytes, latin1String } from '@e2k-migrate/vmstate';
import { MigrationStreamError, toStreamError, UnsupportedFeatureError } from '../errors.js';
import {
  CONFIGURATION_SUBSECTION_CAPABILITIES,
  CONFIGURATION_SUBSECTION_PAGE_BITS,
  CONFIGURATION_SUBSECTION_UUID,
  CONFIGURATION_VMSD_NAME,
  QEMU_VM_CONFIGURATION,
  QEMU_VM_SUBSECTION,
} from './constants.js';

/** A configuration subsection (spec §2.5), in stream order. `version` is the raw be32. */
export type ConfigurationSubsection =
  | { name: typeof CONFIGURATION_SUBSECTION_PAGE_BITS; version: number; targetPageBits: number }
  | { name: typeof CONFIGURATION_SUBSECTION_CAPABILITIES; version: number; capabilities: string[] }
  | { name: typeof CONFIGURATION_SUBSECTION_UUID; version: number; uuid: Uint8Array };

/** The QEMU_VM_CONFIGURATION record: machine type name plus optional subsections. */
export interface Configuration {
  /** Resolved machine type, e.g. `pc-i440fx-7.2` (bytes as Latin-1). */
  machine: string;
  subsections: ConfigurationSubsection[];
}

/** Longest machine name accepted (QEMU machine names are short; this bounds hostile lengths). */
export const MAX_MACHINE_NAME = 4096;

/** Writes `07, be32 len, name`, then each subsection `05, idstr, be32 version, body`. */
export function encodeConfiguration(cfg: Configuration, w: ByteWriter = new ByteWriter(64)): ByteWriter {
  w.u8(QEMU_VM_CONFIGURATION);
  const name = latin1Bytes(cfg.machine);
  w.u32be(name.length).bytes(name);
  for (const sub of cfg.subsections) {
    w.u8(QEMU_VM_SUBSECTION).idstr(sub.name).u32be(sub.version);
    switch (sub.name) {
      case CONFIGURATION_SUBSECTION_PAGE_BITS:
        w.u32be(sub.targetPageBits);
        break;
      case CONFIGURATION_SUBSECTION_CAPABILITIES:
        w.u32be(sub.capabilities.length);
        for (const c of sub.capabilities) w.idstr(c);
        break;
      case CONFIGURATION_SUBSECTION_UUID:
        if (sub.uuid.length !== 16)
          throw new MigrationStreamError('E_BAD_VALUE', 'configuration uuid must be 16 bytes');
        w.bytes(sub.uuid);
        break;
    }
  }
  return w;
}

/**
 * Decodes the configuration body (after the 0x07 byte). Subsections are consumed with QEMU's
 * rule: while the next byte is 0x05 and the name that follows starts with `configuration`; a
 * prefixed name this reader does not know is an error, anything else ends the record.
 * The reader must hold enough look-ahead (≥ 257 bytes, or the rest of the input).
 */
export function decodeConfigurationBody(r: ByteReader): Configuration {
  try {
    const at = r.offset;
    const len = r.u32be('configuration machine name length');
    if (len > MAX_MACHINE_NAME) {
      throw new MigrationStreamError(
        'E_BAD_CONFIGURATION',
        `machine name length ${len} at byte offset ${at} exceeds ${MAX_MACHINE_NAME}`,
        { offset: at, record: 'configuration' },
      );
    }
    const machine = latin1String(r.bytesView(len, 'configuration machine name'));
    const subsections: ConfigurationSubsection[] = [];
    for (;;) {
      const name = peekSubsectionName(r, CONFIGURATION_VMSD_NAME);
      if (name === undefined) break;
      const subAt = r.offset;
      r.skip(2 + name.length);
      const version = r.u32be('configuration subsection version');
      if ((version & 0xff) !== 1) {
        throw new MigrationStreamError(
          'E_BAD_CONFIGURATION',
          `configuration subsection ${name} at byte offset ${subAt} has version ${version}, expected 1`,
          { offset: subAt, record: name },
        );
      }
      subsections.push(decodeSubsectionBody(r, name, version, subAt));
    }
    return { machine, subsections };
  } catch (err) {
    throw toStreamError(err, { record: 'configuration' });
  }
}

function decodeSubsectionBody(r: ByteReader, name: string, version: number, at: number): ConfigurationSubsection {
  switch (name) {
    case CONFIGURATION_SUBSECTION_PAGE_BITS: {
      const bitsAt = r.offset;
      const targetPageBits = r.u32be('target_page_bits');
      if (targetPageBits < 10 || targetPageBits > 16) {
        throw new MigrationStreamError(
          'E_BAD_CONFIGURATION',
          `target_page_bits at byte offset ${bitsAt} is ${targetPageBits}, expected 10..16`,
          { offset: bitsAt, record: name },
        );
      }
      return { name, version, targetPageBits };
    }
    case CONFIGURATION_SUBSECTION_CAPABILITIES: {
      const countAt = r.offset;
      const count = r.u32be('capability count');
      if (count > r.remaining) {
        throw new MigrationStreamError(
          'E_BAD_LENGTH',
          `capability count ${count} at byte offset ${countAt} exceeds the ${r.remaining} remaining bytes`,
          { offset: countAt, record: name },
        );
      }
      const capabilities: string[] = [];
      for (let i = 0; i < count; i++) {
        const capAt = r.offset;
        const cap = r.idstr('capability name');
        if (cap === 'mapped-ram') {
          throw new UnsupportedFeatureError(
            'mapped-ram',
            capAt,
            'capability mapped-ram is QEMU 9.0+ (file: URI layout)',
            {
              record: name,
            },
          );
        }
        capabilities.push(cap);
      }
      return { name, version, capabilities };
    }
    case CONFIGURATION_SUBSECTION_UUID:
      return { name, version, uuid: r.bytesCopy(16, 'configuration uuid') };
    default:
      throw new MigrationStreamError(
        'E_BAD_CONFIGURATION',
        `unknown configuration subsection "${name}" at byte offset ${at}`,
        { offset: at, record: name },
      );
  }
}

/**
 * QEMU's subsection look-ahead: returns the name of the subsection that starts at the reader's
 * position if the next byte is 0x05 and the name (u8 len + bytes) starts with `parent` and is
 * at least `parent.length + 1` long; otherwise undefined. Consumes nothing; throws a truncation
 * error when the bytes needed to decide are not there yet.
 */
export function peekSubsectionName(r: ByteReader, parent: string): string | undefined {
  // Without enough look-ahead the answer is unknown: ask for more input (a truncation the
  // caller retries with a larger window) rather than guessing "no subsection".
  r.need(1, 'record after configuration');
  if (r.peekU8(0) !== QEMU_VM_SUBSECTION) return undefined;
  r.need(2, 'subsection name length');
  const len = r.peekU8(1) as number;
  if (len < parent.length + 1) return undefined;
  r.need(2 + len, 'subsection name');
  const start = r.position + 2;
  for (let i = 0; i < parent.length; i++) {
    if (r.bytes[start + i] !== parent.charCodeAt(i)) return undefined;
  }
  return latin1String(r.bytes.subarray(start, start + len));
}
