import { element, field, type Vmsd, vmsd } from '@e2k-migrate/vmstate';

/** Per-vCPU condition carried in `e2k-machine`. */
export const VCPU_COND = { RUNNABLE: 0, HALTED: 1, FAULTED: 2 } as const;

/**
 * The `e2k-machine` section (version 1): what the E2K machine adds to the CPUs' own sections —
 * each vCPU's executed-step count (the guest's deterministic clock, from which `timer` is derived)
 * and whether it halted or faulted. `nr_vcpus` must equal the destination's vCPU count.
 */
export interface MachineSectionState {
  nr_vcpus: number;
  steps: bigint[];
  vcpu_cond: number[];
}

export const vmstateE2kMachine: Vmsd<MachineSectionState> = vmsd<MachineSectionState>({
  name: 'e2k-machine',
  version: 1,
  fields: [
    field.uint32('nr_vcpus', { check: 'equal' }),
    field.array('steps', element.uint64, { field: 'nr_vcpus' }),
    field.array('vcpu_cond', element.uint8, { field: 'nr_vcpus' }),
  ],
});

/**
 * The `e2k-serial` section (version 1): the serial console's transmit count. Output is flushed to
 * the backend before a save, so no undelivered bytes travel.
 */
export interface SerialSectionState {
  tx_bytes: bigint;
}

export const vmstateE2kSerial: Vmsd<SerialSectionState> = vmsd<SerialSectionState>({
  name: 'e2k-serial',
  version: 1,
  fields: [field.uint64('tx_bytes')],
});
