import { ByteWriter, describeDevice, encodeVmsd, formatVmdesc, type VmdescDevice } from '@e2k-migrate/vmstate';
import { encodeConfiguration } from '../wire/configuration.js';
import { QEMU_VM_EOF } from '../wire/constants.js';
import { encodeHeader } from '../wire/header.js';
import { encodeFooter, encodeSectionHeader, type SectionHeader } from '../wire/section.js';
import { encodeVmdescTrailer } from '../wire/vmdesc-trailer.js';
import type { MigrationFile } from './migration-file.js';
import type { DeviceStateHandler, SaveVmHandlers } from './savevm-handlers.js';

/** File header (`QEVM`, version 3) and the configuration record naming the machine (spec §2.1, §2.5). */
export function writeStreamStart(f: MigrationFile, machine: string): void {
  f.put(encodeHeader(new ByteWriter(8)));
  f.put(encodeConfiguration({ machine, subsections: [] }, new ByteWriter(16 + machine.length)));
}

/** A section header (START/PART/END/FULL) of a registered handler. */
export function writeSectionHeader(f: MigrationFile, h: SectionHeader): void {
  f.put(encodeSectionHeader(h, new ByteWriter(32)));
}

/** The footer `7e <be32 section_id>` that follows every section body. */
export function writeFooter(f: MigrationFile, sectionId: number): void {
  f.put(encodeFooter(sectionId, new ByteWriter(8)));
}

/**
 * Completion, after the END sections: one FULL section per VMState device in registration
 * order, EOF and the vmdesc JSON describing exactly the bodies written (spec §2.6–§2.8).
 */
export function writeDeviceStateAndEnd(f: MigrationFile, handlers: SaveVmHandlers, pageSize: number): void {
  const described: VmdescDevice[] = [];
  for (const { sectionId, device } of handlers.devices()) {
    described.push(writeDevice(f, sectionId, device));
  }
  f.u8(QEMU_VM_EOF);
  const json = new TextEncoder().encode(formatVmdesc({ page_size: pageSize, devices: described }));
  f.put(encodeVmdescTrailer(json, new ByteWriter(json.length + 8)));
}

function writeDevice(f: MigrationFile, sectionId: number, d: DeviceStateHandler): VmdescDevice {
  const state = d.save();
  writeSectionHeader(f, {
    kind: 'FULL',
    sectionId,
    idstr: d.idstr,
    instanceId: d.instanceId,
    versionId: d.vmsd.version,
  });
  f.put(encodeVmsd(d.vmsd, state, new ByteWriter(4096)));
  writeFooter(f, sectionId);
  return describeDevice(d.idstr, d.instanceId, d.vmsd, state);
}
