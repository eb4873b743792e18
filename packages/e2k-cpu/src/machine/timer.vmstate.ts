import { field, type Vmsd, vmsd } from '@e2k-migrate/vmstate';

/**
 * QEMU's `timer` section (version 2): `cpu_ticks_offset`, 8 unused bytes, `cpu_clock_offset`.
 * On the E2K machine the clock is derived from executed bundles, not the wall clock
 * (like QEMU's icount): ticks = bundles executed by all vCPUs, clock = ticks × {@link E2K_NS_PER_STEP}.
 */
export interface TimerState {
  cpu_ticks_offset: bigint;
  cpu_clock_offset: bigint;
}

/** Virtual nanoseconds per executed bundle. */
export const E2K_NS_PER_STEP = 1n;

export const vmstateTimers: Vmsd<TimerState> = vmsd<TimerState>({
  name: 'timer',
  version: 2,
  minimumVersion: 1,
  fields: [field.int64('cpu_ticks_offset'), field.unused(8), field.int64('cpu_clock_offset', { version: 2 })],
});

/** The timer state of a machine whose vCPUs executed `totalSteps` bundles. */
export function timerFromSteps(totalSteps: number): TimerState {
  const ticks = BigInt(totalSteps);
  return { cpu_ticks_offset: ticks, cpu_clock_offset: ticks * E2K_NS_PER_STEP };
}
