import { ByteWriter, describeDevice, encodeVmsd, formatVmdesc, type VmdescDevice } from '@e2k-migrate/vmstate';
import { encodeCommand } from '../wire/command.js';
import { encodeConfiguration } from '../wire/configuration.js';
import { QEMU_VM_EOF } from '../wire/constants.js';
import { encodeHeader } from '../wire/header.js';
import { encodeFooter, encodeSectionHeader, type SectionHeader } from '../wire/section.js';
import { encodeVmdescTrailer } from '../wire/vmdesc-trailer.js';
import type { MigrationFile } from './migration-file.js';
import type { DeviceStateHandler, SaveVmHandlers } from './savevm-handlers.js';

/**
 * File header (`QEVM`, version 3) and the configuration record naming the machine (spec §2.1,
 * §2.5), or a stored configuration record verbatim; then, as QEMU 7.2's migration thread does
 * (spec §2.8, §9.1), OPEN_RETURN_PATH + PING(1) when the return path is opened and
 * POSTCOPY_ADVISE(page-size summary, TPS) with postcopy-ram.
 */
export function writeStreamStart(
  f: MigrationFile,
  machine: string,
  configuration?: Uint8Array,
  opts: { returnPath?: boolean; advise?: { pageSizeSummary: number; targetPageSize: number } } = {},
): void {
  f.put(encodeHeader(new ByteWriter(8)));
  if (configuration) f.bytes(configuration);
  else f.put(encodeConfiguration({ machine, subsections: [] }, new ByteWriter(16 + machine.length)));
  if (opts.returnPath) {
    f.put(encodeCommand({ cmd: 'OPEN_RETURN_PATH' }));
    f.put(encodeCommand({ cmd: 'PING', value: 1 }));
  }
  if (opts.advise) f.put(encodeCommand({ cmd: 'POSTCOPY_ADVISE', ...opts.advise }, new ByteWriter(24)));
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
 * order, EOF and the vmdesc JSON describing exactly the bodies written (spec §2.6–§2.8) — or a
 * stored migration's device state and vmdesc verbatim.
 */
export function writeDeviceStateAndEnd(
  f: MigrationFile,
  handlers: SaveVmHandlers,
  pageSize: number,
  verbatim?: { devices: Uint8Array; vmdesc?: Uint8Array },
): void {
  if (verbatim) {
    // a stored migration: its FULL sections through EOF, and its vmdesc, as received
    f.bytes(verbatim.devices);
    if (verbatim.vmdesc) f.put(encodeVmdescTrailer(verbatim.vmdesc, new ByteWriter(verbatim.vmdesc.length + 8)));
    return;
  }
  const described = writeDeviceSections(f, handlers);
  f.u8(QEMU_VM_EOF);
  const json = new TextEncoder().encode(formatVmdesc({ page_size: pageSize, devices: described }));
  f.put(encodeVmdescTrailer(json, new ByteWriter(json.length + 8)));
}

/**
 * One FULL section per VMState device in registration order (QEMU's
 * qemu_savevm_state_complete_precopy_non_iterable; also the body of the postcopy package).
 * Returns their vmdesc descriptions.
 */
export function writeDeviceSections(f: MigrationFile, handlers: SaveVmHandlers): VmdescDevice[] {
  const described: VmdescDevice[] = [];
  for (const { sectionId, device } of handlers.devices()) described.push(writeDevice(f, sectionId, device));
  return described;
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
