import { type E2kCpuState, type E2kMachine, formatRegisters, registersToJson } from '@e2k-migrate/e2k-cpu';
import {
  argNumber,
  argString,
  type CommandRegistry,
  type JsonValue,
  QmpFailure,
  type QmpServer,
} from '@e2k-migrate/qmp';

/** How the VM process shuts down (QMP `quit`, a signal, …); SHUTDOWN's `reason`. */
export type ShutdownReason = 'host-qmp-quit' | 'host-signal';

export interface VmMonitorHooks {
  /** Called after `quit` has been answered. */
  shutdown(reason: ShutdownReason): void | Promise<void>;
}

/**
 * The QMP commands of an E2K VM process: `query-status`, `stop`, `cont`, `quit`,
 * `human-monitor-command` (`info registers [-a]`, `info status`), `query-cpus-fast` (with the
 * vCPU threads' kernel tids), `x-query-registers`, `x-query-vcpus`. Machine events become QMP events (STOP, RESUME). The migration commands are
 * registered on the same table by the migration issue.
 */
export function vmMonitorCommands(machine: E2kMachine, server: QmpServer, hooks: VmMonitorHooks): CommandRegistry {
  const reg = server.commands;
  machine.onEvent = (e) => {
    if (e.type === 'stop') server.emit('STOP');
    else if (e.type === 'resume') server.emit('RESUME');
  };
  reg.register('query-status', () => ({
    status: machine.runState,
    singlestep: false,
    running: machine.runState === 'running',
  }));
  reg.register('stop', async () => {
    if (machine.runState === 'running') await machine.stop();
  });
  reg.register('cont', async () => {
    if (
      machine.runState === 'internal-error' ||
      machine.runState === 'guest-panicked' ||
      machine.runState === 'shutdown'
    ) {
      throw new QmpFailure('Resetting the Virtual Machine is required');
    }
    if (machine.runState === 'inmigrate') throw new QmpFailure('Migration is not finished yet');
    if (machine.runState !== 'running') await machine.cont();
  });
  reg.register('quit', (_args, ctx) => {
    ctx.afterReply(() => hooks.shutdown('host-qmp-quit'));
  });
  reg.register('human-monitor-command', {
    args: ['command-line', 'cpu-index'],
    required: ['command-line'],
    handler: async (args) => {
      const line = (argString(args, 'command-line') ?? '').trim();
      const cpu = argNumber(args, 'cpu-index') ?? 0;
      const words = line.split(/\s+/);
      if (words[0] === 'info' && words[1] === 'registers') {
        const all = words.includes('-a');
        checkCpu(machine, cpu);
        const states = await snapshot(machine);
        const which = all ? states.map((_, i) => i) : [cpu];
        return which.map((i) => formatRegisters(states[i] as E2kCpuState, i)).join('\n');
      }
      if (words[0] === 'info' && words[1] === 'status') {
        return `VM status: ${machine.runState}\r\n`;
      }
      return `unknown command: '${line}'\r\n`;
    },
  });
  reg.register('x-query-registers', {
    args: ['cpu-index'],
    handler: async (args) => {
      const cpu = argNumber(args, 'cpu-index');
      if (cpu !== undefined) checkCpu(machine, cpu);
      const states = await snapshot(machine);
      const steps = machine.stepCounts();
      return states
        .map(
          (s, i) => ({ 'cpu-index': i, steps: steps[i] ?? 0, registers: registersToJson(s) }) as unknown as JsonValue,
        )
        .filter((_, i) => cpu === undefined || i === cpu);
    },
  });
  reg.register('query-cpus-fast', () =>
    machine.vcpuThreadIds().map((tid, i) => ({
      'cpu-index': i,
      'qom-path': `/machine/unattached/device[${i}]`,
      'thread-id': tid,
      props: { 'core-id': i, 'thread-id': 0, 'socket-id': 0 },
      target: 'e2k',
    })),
  );
  reg.register('x-query-vcpus', () => {
    const steps = machine.stepCounts();
    return machine.vcpuStates().map((s, i) => ({
      'cpu-index': i,
      state: s.kind,
      steps: steps[i] ?? 0,
      ...(s.kind === 'faulted' ? { fault: s.reason } : {}),
    }));
  });
  return reg;
}

function checkCpu(machine: E2kMachine, cpu: number): void {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= machine.vcpuCount) {
    throw new QmpFailure(`Parameter 'cpu-index' expects a vCPU index in 0..${machine.vcpuCount - 1}`);
  }
}

/** Every vCPU's registers at one bundle boundary (vCPUs paused briefly if running). */
function snapshot(machine: E2kMachine): Promise<E2kCpuState[]> {
  return machine.withVcpusStopped(() => machine.cpus.map((_, i) => machine.cpuState(i)));
}
