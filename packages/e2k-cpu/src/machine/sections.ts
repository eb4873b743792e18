import { TARGET_PAGE_SIZE } from '../cpu/constants.js';
import { e2kCpuVmsd } from '../cpu/cpu.vmstate.js';
import { type E2kCpuState, resetCpuState } from '../cpu/state.js';
import { E2kError } from '../errors.js';
import type { DeviceSection, MachineDescription } from './description.js';
import {
  type GlobalStateState,
  globalStateOf,
  type RunState,
  runStateName,
  vmstateGlobalState,
} from './globalstate.vmstate.js';
import type { E2kMachine } from './machine.js';
import {
  type MachineSectionState,
  type SerialSectionState,
  VCPU_COND,
  vmstateE2kMachine,
  vmstateE2kSerial,
} from './machine.vmstate.js';
import { type TimerState, timerFromSteps, vmstateTimers } from './timer.vmstate.js';

/** The RAM block idstr of the E2K machine. */
export const E2K_RAM_IDSTR = 'e2k.ram';

/** What the last load of a machine brought in, for checks across sections. */
interface LoadedState {
  timer?: TimerState;
  steps?: bigint[];
  runState?: RunState;
}

/**
 * The machine description the migration code enumerates: the `e2k.ram` block, then the sections
 * in save order — `timer`, one `e2k-cpu` per vCPU (instance = vCPU index), `e2k-serial`,
 * `e2k-machine`, `globalstate`.
 */
export function describeMachine(m: E2kMachine): MachineDescription & { loadedRunState(): RunState | undefined } {
  const loaded: LoadedState = {};
  const totalSteps = () => m.stepCounts().reduce((a, b) => a + b, 0);
  const timer: DeviceSection<TimerState> = {
    idstr: 'timer',
    instanceId: 0,
    vmsd: vmstateTimers,
    save: () => timerFromSteps(totalSteps()),
    loadTarget: () => timerFromSteps(0),
    load: (s) => {
      loaded.timer = s;
    },
  };
  const cpus: DeviceSection<E2kCpuState>[] = m.cpus.map((_, i) => ({
    idstr: 'e2k-cpu',
    instanceId: i,
    vmsd: e2kCpuVmsd({
      dest: m.cpuConfig,
      cpuIndex: i,
      ...(m.config.strict ? { strict: true } : {}),
      ...(m.config.onWarning ? { onWarning: (w) => m.config.onWarning?.(w, i) } : {}),
    }),
    save: () => m.cpuState(i),
    loadTarget: () => resetCpuState(m.cpuConfig),
    load: (s) => m.setCpuState(i, s),
  }));
  const serial: DeviceSection<SerialSectionState> = {
    idstr: 'e2k-serial',
    instanceId: 0,
    vmsd: vmstateE2kSerial,
    save: () => {
      m.drainSerial();
      return { tx_bytes: BigInt(m.serialTxBytes()) };
    },
    loadTarget: () => ({ tx_bytes: 0n }),
    load: (s) => {
      m.serialBase = Number(s.tx_bytes);
      for (const c of m.controls) c.resetSerial();
    },
  };
  const machine: DeviceSection<MachineSectionState> = {
    idstr: 'e2k-machine',
    instanceId: 0,
    vmsd: vmstateE2kMachine,
    save: () => ({
      nr_vcpus: m.vcpuCount,
      steps: m.stepCounts().map((n) => BigInt(n)),
      vcpu_cond: m
        .vcpuStates()
        .map((s) =>
          s.kind === 'halted' ? VCPU_COND.HALTED : s.kind === 'faulted' ? VCPU_COND.FAULTED : VCPU_COND.RUNNABLE,
        ),
    }),
    loadTarget: () => ({ nr_vcpus: m.vcpuCount, steps: [], vcpu_cond: [] }),
    load: (s) => {
      s.steps.forEach((steps, i) => {
        const cond = s.vcpu_cond[i];
        if (cond === undefined || cond > VCPU_COND.FAULTED) {
          throw new E2kError('E_MACHINE_STATE', `e2k-machine: vCPU ${i} condition ${cond} unknown`);
        }
        if (steps > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw new E2kError('E_MACHINE_STATE', `e2k-machine: vCPU ${i} step count ${steps} too large`);
        }
        m.restoreVcpu(
          i,
          Number(steps),
          cond === VCPU_COND.HALTED ? 'halted' : cond === VCPU_COND.FAULTED ? 'faulted' : 'runnable',
        );
      });
      loaded.steps = s.steps;
    },
  };
  const global: DeviceSection<GlobalStateState> = {
    idstr: 'globalstate',
    instanceId: 0,
    vmsd: vmstateGlobalState,
    save: () => globalStateOf(m.storedRunState ?? m.runState),
    loadTarget: () => globalStateOf('inmigrate'),
    load: (s) => {
      loaded.runState = runStateName(s) as RunState;
    },
  };
  return {
    targetPageSize: TARGET_PAGE_SIZE,
    ramBlocks: [{ idstr: E2K_RAM_IDSTR, size: m.ram.size, pageSize: m.ram.pageSize, memory: m.ram }],
    sections: [timer, ...cpus, serial, machine, global] as DeviceSection[],
    afterLoad: () => {
      if (loaded.timer && loaded.steps) {
        const want = timerFromSteps(Number(loaded.steps.reduce((a, b) => a + b, 0n)));
        if (want.cpu_ticks_offset !== loaded.timer.cpu_ticks_offset) {
          throw new E2kError(
            'E_MACHINE_STATE',
            `timer: cpu_ticks_offset ${loaded.timer.cpu_ticks_offset} differs from the ${want.cpu_ticks_offset} bundles the vCPUs executed`,
          );
        }
      }
    },
    loadedRunState: () => loaded.runState,
  };
}
