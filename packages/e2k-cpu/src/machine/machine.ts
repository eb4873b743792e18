import { createGuestMemory, type GuestMemory, type RegionKind } from '@e2k-migrate/native';
import { TARGET_PAGE_SIZE } from '../cpu/constants.js';
import { CpuView } from '../cpu/cpu-view.js';
import { type CpuConfigInit, cpuConfig, type E2kCpuCfg, type E2kCpuState, resetCpuState } from '../cpu/state.js';
import { E2kError, type InvariantViolation } from '../errors.js';
import { runBundles } from '../guest/interpreter.js';
import { CODE_BASE, dataSlices, type VcpuSlice } from '../guest/layout.js';
import { bootWorkload, pacedStepsPerSecond, type WorkloadConfig } from '../guest/workload.js';
import { REQ, VcpuControl, VSTATE } from '../vcpu/control.js';
import { isQuiescent, stepVcpu, type VcpuEvent, type VcpuRunState } from '../vcpu/run-state.js';
import { VcpuThread } from '../vcpu/vcpu-thread.js';
import type { RunState } from './globalstate.vmstate.js';

export interface MachineConfig {
  /** RAM bytes (a multiple of 4 KiB; of 2 MiB for hugetlb). */
  memSize: number;
  vcpus: number;
  workload: WorkloadConfig;
  cpu?: CpuConfigInit;
  /** Backing of `e2k.ram` (default anonymous). */
  ramKind?: RegionKind;
  /** `workers` (default): one worker thread per vCPU. `inline`: vCPUs run in the caller's thread via {@link E2kMachine.runInline}. */
  executor?: 'workers' | 'inline';
  /** Incoming migration target: the guest is not booted, RAM stays zero, run state `inmigrate`. */
  incoming?: boolean;
  /** Receives serial console output. */
  serial?: (bytes: Uint8Array) => void;
  /** CPU loads reject soft invariant violations too. */
  strict?: boolean;
  /** Soft invariant violations accepted while loading a CPU. */
  onWarning?: (w: InvariantViolation, cpuIndex: number) => void;
  /** Bundles per worker chunk (stop latency). */
  chunk?: number;
}

/** Machine-level events (the QMP layer turns them into STOP / RESUME / … events). */
export type MachineEvent =
  | { type: 'stop'; reason: 'request' | 'stop-at' | 'fault' }
  | { type: 'resume' }
  | { type: 'vcpu-halted'; cpu: number }
  | { type: 'vcpu-faulted'; cpu: number; reason: string };

/**
 * The E2K machine: `e2k.ram`, N vCPUs (each a CPU state buffer + control block, run by a worker
 * thread or inline), the serial console, the step-derived timer, and the global run state.
 */
export class E2kMachine {
  readonly config: Readonly<MachineConfig>;
  readonly cpuConfig: E2kCpuCfg;
  readonly ram: GuestMemory;
  readonly cpus: readonly CpuView[];
  readonly controls: readonly VcpuControl[];
  readonly slices: readonly VcpuSlice[];
  runState: RunState;
  /** The run state stored for `globalstate` (QEMU's global_state_store) before a migration stops the VM. */
  storedRunState: RunState | undefined;
  /** Serial bytes sent before this machine took over (restored from `e2k-serial`). */
  serialBase = 0;
  onEvent: ((e: MachineEvent) => void) | undefined;
  private vstate: VcpuRunState[];
  private threads: VcpuThread[] = [];
  private watching = false;
  private closed = false;

  private constructor(config: MachineConfig) {
    this.config = config;
    this.cpuConfig = cpuConfig(config.cpu);
    const pageSize = config.ramKind === 'hugetlb' ? 2 << 20 : TARGET_PAGE_SIZE;
    if (!Number.isSafeInteger(config.memSize) || config.memSize <= 0 || config.memSize % pageSize !== 0) {
      throw new E2kError(
        'E_MACHINE_CONFIG',
        `memory size ${config.memSize} must be a positive multiple of ${pageSize}`,
      );
    }
    this.slices = dataSlices(config.memSize, config.vcpus);
    this.ram = createGuestMemory({ size: config.memSize, kind: config.ramKind ?? 'anonymous', name: 'e2k.ram' });
    this.cpus = this.slices.map(() => new CpuView());
    this.controls = this.slices.map(() => new VcpuControl());
    this.vstate = this.slices.map(() => ({ kind: 'created' }));
    this.onEvent = undefined;
    this.storedRunState = undefined;
    this.runState = config.incoming ? 'inmigrate' : 'prelaunch';
    const pace = pacedStepsPerSecond(config.workload);
    this.controls.forEach((c) => {
      c.setPace(pace);
    });
    if (!config.incoming) this.boot();
  }

  /** Builds the machine (RAM allocated, guest booted unless `incoming`); vCPUs are not running yet. */
  static create(config: MachineConfig): E2kMachine {
    return new E2kMachine(config);
  }

  /** Writes the guest program and mailboxes and resets every vCPU to the program's entry. */
  private boot(): void {
    bootWorkload(this.ram, this.slices.length, this.config.workload);
    this.cpus.forEach((view, i) => {
      const s = resetCpuState(this.cpuConfig);
      s.ip = BigInt(CODE_BASE);
      s.rf_lo[0] = BigInt(i);
      view.write(s);
    });
  }

  get vcpuCount(): number {
    return this.cpus.length;
  }

  /** The vCPUs' run states. */
  vcpuStates(): readonly VcpuRunState[] {
    return this.vstate;
  }

  private apply(i: number, e: VcpuEvent): void {
    this.vstate[i] = stepVcpu(this.vstate[i] as VcpuRunState, e);
  }

  /** Bundles each vCPU has executed. */
  stepCounts(): number[] {
    return this.controls.map((c) => c.steps);
  }

  /**
   * Starts the vCPUs (workers are spawned on first start). Run state becomes `running`. A stop-at
   * point every vCPU has reached is cleared first (it is a one-shot breakpoint).
   */
  async cont(): Promise<void> {
    this.assertOpen();
    if (this.config.executor === 'inline')
      throw new E2kError('E_VCPU_STATE', 'an inline machine runs only through runInline()');
    if (this.controls.every((c) => c.steps >= c.stopAt)) this.setStopAt(Number.POSITIVE_INFINITY);
    this.startVcpus();
    const was = this.runState;
    this.runState = 'running';
    if (was !== 'running') this.onEvent?.({ type: 'resume' });
  }

  /** Stops every vCPU at a bundle boundary and waits until all are parked. Run state `paused` (or `to`). */
  async stop(to: RunState = 'paused'): Promise<void> {
    this.assertOpen();
    await this.parkVcpus();
    const was = this.runState;
    this.runState = to;
    if (was === 'running') this.onEvent?.({ type: 'stop', reason: 'request' });
  }

  /**
   * Runs `fn` with every vCPU parked at a bundle boundary, then lets them run again if the machine
   * was running: a consistent snapshot (registers, RAM) without a run-state change or events.
   */
  async withVcpusStopped<T>(fn: () => T | Promise<T>): Promise<T> {
    this.assertOpen();
    const running = this.runState === 'running' && this.threads.length > 0;
    if (running) await this.parkVcpus();
    try {
      return await fn();
    } finally {
      if (running && !this.closed) this.startVcpus();
    }
  }

  private startVcpus(): void {
    if (this.threads.length === 0) {
      this.threads = this.cpus.map(
        (cpu, index) =>
          new VcpuThread({
            index,
            cpu: cpu.buffer,
            control: (this.controls[index] as VcpuControl).buffer,
            memory: this.ram.handle,
            ...(this.config.chunk ? { chunk: this.config.chunk } : {}),
          }),
      );
      this.watch();
    }
    this.controls.forEach((c, i) => {
      this.apply(i, { type: 'cont' });
      c.request(REQ.RUN);
    });
  }

  private async parkVcpus(): Promise<void> {
    const seqs = this.controls.map((c, i) => {
      this.apply(i, { type: 'stop' });
      return c.request(REQ.STOP);
    });
    if (this.threads.length > 0) await Promise.all(this.controls.map((c, i) => c.waitParked(seqs[i] as number)));
    this.syncStates();
  }

  /** Kernel thread ids of the vCPU threads (0 for a vCPU whose thread has not started). */
  vcpuThreadIds(): number[] {
    return this.controls.map((c) => c.tid);
  }

  /**
   * Throttles every vCPU to run only `(100 - percent)`% of the time (QEMU's auto-converge CPU
   * throttle, 0–99): sleeps between chunks, so what the guest computes is unchanged.
   */
  setThrottle(percent: number): void {
    for (const c of this.controls) c.setThrottle(percent);
  }

  /** Every vCPU parks when its step count reaches `step` (exactly: chunks are cut to it). */
  setStopAt(step: number): void {
    for (const c of this.controls) c.setStopAt(step);
  }

  /** Resolves when every vCPU is parked at its stop-at step (or halted/faulted). */
  async waitForStopAt(): Promise<void> {
    for (;;) {
      this.syncStates();
      if (this.vstate.every((s) => s.kind !== 'running' && s.kind !== 'stopping')) return;
      await Promise.race(this.controls.map((c) => c.waitAck(c.ack, 200)));
    }
  }

  /**
   * Inline executor: runs each vCPU until it has executed `steps` bundles in total (or halts or
   * faults), one vCPU after another in this thread. vCPUs write disjoint RAM, so the result is the
   * same as running them in parallel.
   */
  runInline(steps: number): void {
    this.assertOpen();
    if (this.threads.length > 0) throw new E2kError('E_VCPU_STATE', 'vCPUs are running in workers');
    this.cpus.forEach((cpu, i) => {
      const c = this.controls[i] as VcpuControl;
      const st = this.vstate[i] as VcpuRunState;
      if (st.kind === 'halted' || st.kind === 'faulted') return;
      const ctx = { cpu, mem: this.ram, serialOut: (b: number) => c.serialPush(b) };
      while (c.steps < steps) {
        const r = runBundles(ctx, Math.min(1 << 20, steps - c.steps));
        c.addSteps(r.executed);
        if (r.exit === 'halt') {
          c.setState(VSTATE.HALTED);
          break;
        }
        if (r.exit === 'fault') {
          c.setFault(r.fault ?? 'fault');
          c.setState(VSTATE.FAULTED);
          break;
        }
      }
      this.drainSerial();
    });
    this.syncStates();
  }

  /** Reads vCPU run states from the control blocks (after the workers reported). */
  private syncStates(): void {
    this.controls.forEach((c, i) => {
      const st = this.vstate[i] as VcpuRunState;
      switch (c.state) {
        case VSTATE.HALTED:
          if (st.kind !== 'halted') {
            this.apply(
              i,
              st.kind === 'stopped' || st.kind === 'created' ? { type: 'restore', to: 'halted' } : { type: 'halt' },
            );
            this.onEvent?.({ type: 'vcpu-halted', cpu: i });
          }
          break;
        case VSTATE.FAULTED:
          if (st.kind !== 'faulted') {
            const reason = c.fault;
            this.apply(
              i,
              st.kind === 'stopped' || st.kind === 'created'
                ? { type: 'restore', to: 'faulted', reason }
                : { type: 'fault', reason },
            );
            this.onEvent?.({ type: 'vcpu-faulted', cpu: i, reason });
          }
          break;
        case VSTATE.STOPPED:
          if ((st.kind === 'running' || st.kind === 'stopping') && c.parkedSinceLastCommand) {
            this.apply(i, { type: 'parked', reason: c.steps >= c.stopAt ? 'stop-at' : 'request' });
          }
          break;
      }
    });
  }

  /** Background: follows worker state changes (stop-at, halt, fault) and drains the serial console. */
  private watch(): void {
    if (this.watching) return;
    this.watching = true;
    const loop = async () => {
      while (!this.closed) {
        await Promise.race(this.controls.map((c) => c.waitAck(c.ack, 100)));
        if (this.closed) break;
        this.drainSerial();
        this.syncStates();
        if (this.runState === 'running' && this.vstate.some((s) => s.kind === 'faulted')) {
          this.runState = 'internal-error';
          for (const c of this.controls) c.request(REQ.STOP);
          this.onEvent?.({ type: 'stop', reason: 'fault' });
        } else if (this.runState === 'running' && this.allAtStopAt()) {
          this.runState = 'paused';
          this.onEvent?.({ type: 'stop', reason: 'stop-at' });
        }
      }
    };
    void loop();
  }

  /** Every vCPU parked at its stop-at step (or halted/faulted), at least one at stop-at. */
  private allAtStopAt(): boolean {
    const atStop = (s: VcpuRunState) => s.kind === 'stopped' && s.reason === 'stop-at';
    return (
      this.vstate.some(atStop) && this.vstate.every((s) => atStop(s) || s.kind === 'halted' || s.kind === 'faulted')
    );
  }

  /** Moves serial output from the vCPUs' rings to the configured sink. */
  drainSerial(): void {
    for (const c of this.controls) {
      const bytes = c.serialDrain();
      if (bytes.length > 0) this.config.serial?.(bytes);
    }
  }

  /** Serial bytes the guest has sent in total (including before a migration). */
  serialTxBytes(): number {
    return this.controls.reduce((n, c) => n + c.txBytes, this.serialBase);
  }

  /** A vCPU's CPU state (only while it is not running). */
  cpuState(i: number): E2kCpuState {
    this.assertQuiescent(i);
    return (this.cpus[i] as CpuView).read();
  }

  /** Replaces a vCPU's CPU state (only while it is not running). */
  setCpuState(i: number, s: E2kCpuState): void {
    this.assertQuiescent(i);
    (this.cpus[i] as CpuView).write(s);
  }

  /** Restores a vCPU's step count and condition (machine section load). */
  restoreVcpu(i: number, steps: number, cond: 'runnable' | 'halted' | 'faulted'): void {
    this.assertQuiescent(i);
    const c = this.controls[i] as VcpuControl;
    c.setSteps(steps);
    c.resetSerial();
    const code = cond === 'halted' ? VSTATE.HALTED : cond === 'faulted' ? VSTATE.FAULTED : VSTATE.STOPPED;
    if (cond === 'faulted') c.setFault('faulted before migration');
    c.setState(code);
    this.apply(i, { type: 'restore', to: cond === 'runnable' ? 'stopped' : cond });
  }

  private assertQuiescent(i: number): void {
    const st = this.vstate[i];
    if (!st || !isQuiescent(st)) {
      throw new E2kError(
        'E_VCPU_STATE',
        `vCPU ${i} is ${st?.kind ?? 'missing'}: stop the machine before touching its state`,
      );
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new E2kError('E_VCPU_STATE', 'the machine is closed');
  }

  /** Stops and joins the workers, then releases RAM. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.threads.map((t, i) => t.terminate(this.controls[i] as VcpuControl)));
    this.drainSerial();
    this.vstate = this.vstate.map((s) => (s.kind === 'exited' ? s : { kind: 'exited' }));
    this.runState = 'shutdown';
    this.ram.close();
  }
}
