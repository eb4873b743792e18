import type { CpuView } from '../cpu/cpu-view.js';
import { type GuestBus, runBundles } from '../guest/interpreter.js';
import { REQ, type VcpuControl, VSTATE } from './control.js';

/** Bundles run between two looks at the control block (the stop latency, in steps). */
export const VCPU_CHUNK = 16384;

export interface VcpuLoopOptions {
  chunk?: number;
  /** Wall clock for pacing and throttling (ms); injectable for tests. */
  now?: () => number;
}

/**
 * The body of a vCPU thread: runs bundles while the control block says RUN and the step count is
 * below STOP_AT, parks (Atomics.wait on SEQ) otherwise, and returns on EXIT.
 *
 * Pacing (`rate`) and throttling (auto-converge) only sleep between chunks, from the wall clock:
 * they change how fast steps run, never what a step computes.
 */
export function vcpuLoop(cpu: CpuView, ctl: VcpuControl, mem: GuestBus, opts: VcpuLoopOptions = {}): void {
  const chunk = opts.chunk ?? VCPU_CHUNK;
  const now = opts.now ?? (() => performance.now());
  const ctx = { cpu, mem, serialOut: (b: number) => ctl.serialPush(b) };
  // Pacing origin: reset whenever the vCPU (re)starts running.
  let paceT0 = 0;
  let paceS0 = 0;
  for (;;) {
    const seq = ctl.seq;
    const req = ctl.req;
    if (req === REQ.EXIT) {
      ctl.setState(VSTATE.EXITED);
      ctl.parkAck(seq);
      return;
    }
    const state = ctl.state;
    const steps = ctl.steps;
    const stopAt = ctl.stopAt;
    const parked = state === VSTATE.HALTED || state === VSTATE.FAULTED;
    if (req === REQ.STOP || steps >= stopAt || parked) {
      if (!parked && state !== VSTATE.STOPPED) ctl.setState(VSTATE.STOPPED);
      ctl.parkAck(seq);
      Atomics.wait(ctl.i32, 0, seq);
      continue;
    }
    if (state !== VSTATE.RUNNING) {
      ctl.setState(VSTATE.RUNNING);
      paceT0 = now();
      paceS0 = steps;
    }
    const pace = ctl.pace;
    const budget = Math.min(pace > 0 ? Math.max(1, Math.ceil(pace / 200)) : chunk, stopAt - steps);
    const t0 = now();
    let result: ReturnType<typeof runBundles>;
    try {
      result = runBundles(ctx, budget);
    } catch (err) {
      // The memory interface refused the access (region closed, …): the vCPU cannot go on.
      ctl.setFault(`memory interface: ${(err as Error).message}`);
      ctl.setState(VSTATE.FAULTED);
      continue;
    }
    ctl.addSteps(result.executed);
    if (result.exit === 'halt') {
      ctl.setState(VSTATE.HALTED);
      continue;
    }
    if (result.exit === 'fault') {
      ctl.setFault(result.fault ?? 'fault');
      ctl.setState(VSTATE.FAULTED);
      continue;
    }
    const sleep = sleepMs(ctl, pace, paceT0, paceS0, t0, now());
    if (sleep > 0) Atomics.wait(ctl.i32, 0, seq, sleep);
  }
}

/** How long to sleep after a chunk: to hold the paced step rate, and for the throttle share. */
function sleepMs(ctl: VcpuControl, pace: number, paceT0: number, paceS0: number, t0: number, t1: number): number {
  let ms = 0;
  if (pace > 0) {
    const due = paceT0 + ((ctl.steps - paceS0) / pace) * 1000;
    ms = Math.max(0, due - t1);
  }
  const throttle = ctl.throttle;
  if (throttle > 0) ms += ((t1 - t0) * throttle) / (100 - throttle);
  return Math.min(ms, 1000);
}
