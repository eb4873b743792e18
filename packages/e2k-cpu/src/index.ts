/**
 * @e2k-migrate/e2k-cpu — the E2K vCPU state and its `e2k-cpu` VMState with load-time validation,
 * the E2K machine (RAM, vCPU worker threads, serial, timer, globalstate) and its deterministic guest.
 */

// cpu
export * from './cpu/aau.js';
export * from './cpu/aau.vmstate.js';
export * from './cpu/constants.js';
export * from './cpu/cpu.vmstate.js';
export * from './cpu/cpu-layout.js';
export * from './cpu/cpu-view.js';
export * from './cpu/dump.js';
export type { CheckedState, E2kUnmodelled, Invariant, InvariantContext } from './cpu/invariant.js';
export * from './cpu/models.js';
export * from './cpu/packing.js';
export * from './cpu/state.js';
export * from './cpu/validate.js';
export * from './errors.js';
// guest
export * from './guest/assembler.js';
export * from './guest/checker.js';
export * from './guest/interpreter.js';
export * from './guest/isa.js';
export * from './guest/layout.js';
export * from './guest/workload.js';
// machine
export * from './machine/description.js';
export * from './machine/globalstate.vmstate.js';
export * from './machine/machine.js';
export * from './machine/machine.vmstate.js';
export * from './machine/sections.js';
export * from './machine/size.js';
export * from './machine/timer.vmstate.js';
// vcpu
export * from './vcpu/control.js';
export * from './vcpu/run-state.js';
export * from './vcpu/vcpu-loop.js';
export { VcpuThread, type VcpuWorkerData, vcpuWorkerUrl } from './vcpu/vcpu-thread.js';
