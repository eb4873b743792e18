/**
 * What the migration drivers need from the virtual machine they move. The core knows nothing
 * about the guest; the process that owns the machine adapts it (for the E2K machine: the CLI's
 * `vm` command).
 */
export interface MigrationVm {
  /** QEMU RunState name: `running`, `paused`, `inmigrate`, `postmigrate`, `finish-migrate`, … */
  readonly runState: string;
  /**
   * Source, at completion: records the run state for `globalstate` (global_state_store) and stops
   * the vCPUs into `finish-migrate` (vm_stop_force_state; a STOP event when it was running).
   * Resolves when no vCPU executes any more.
   */
  stopForMigration(): Promise<void>;
  /** Sets the run state without starting or stopping anything (runstate_set): `postmigrate`, `paused`. */
  setRunState(state: string): void;
  /** Starts the vCPUs (vm_start; a RESUME event). */
  start(): Promise<void>;
  /** Auto-converge: vCPUs sleep this percentage of the time (0 = not throttled). */
  setThrottle(percent: number): void;
  /**
   * Destination, after a complete load: the run state the stream's `globalstate` carried
   * (undefined when the stream had none).
   */
  loadedRunState?(): string | undefined;
}

/** Wall-clock time in ms with sub-ms precision (both processes of a local migration share it). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}
