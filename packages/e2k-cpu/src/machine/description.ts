import type { GuestMemory } from '@e2k-migrate/native';
import type { Vmsd } from '@e2k-migrate/vmstate';

/** One RAM block, as QEMU's `ram` section lists it. */
export interface RamBlockInfo {
  /** RAM block idstr (`e2k.ram`). */
  idstr: string;
  /** used_length in bytes. */
  size: number;
  /** Host page size of the block (4 KiB, or 2 MiB for hugetlb). */
  pageSize: number;
  /** The memory interface (and, through `.handle`, the region for workers and the addon). */
  memory: GuestMemory;
}

/**
 * One device section. To save: `encodeVmsd(vmsd, save())`. To load: decode into `loadTarget()`
 * (the values absent fields and subsections keep: reset state and this machine's configuration),
 * then pass the result to `load()`. Only while the machine is stopped.
 */
export interface DeviceSection<S = unknown> {
  idstr: string;
  instanceId: number;
  vmsd: Vmsd<S>;
  save(): S;
  loadTarget(): S;
  load(state: S): void;
}

/** What the migration code enumerates: RAM blocks, then device sections in QEMU's save order. */
export interface MachineDescription {
  /** TARGET_PAGE_SIZE (the `ram` section's page granularity). */
  targetPageSize: number;
  ramBlocks: RamBlockInfo[];
  sections: DeviceSection[];
  /** Cross-section checks once every section is loaded (e.g. `timer` against the step counts). */
  afterLoad(): void;
}
