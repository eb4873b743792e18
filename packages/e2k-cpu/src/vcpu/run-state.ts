import { E2kError } from '../errors.js';

/**
 * The run state of one vCPU, as the main thread tracks it (README: state diagram).
 *
 * `stopping` exists because a stop is a request: the worker finishes its current chunk of bundles
 * and parks at a bundle boundary, then reports `stopped`.
 */
export type VcpuRunState =
  | { kind: 'created' }
  | { kind: 'running' }
  | { kind: 'stopping' }
  | { kind: 'stopped'; reason: 'request' | 'stop-at' }
  | { kind: 'halted' }
  | { kind: 'faulted'; reason: string }
  | { kind: 'exited' };

export type VcpuEvent =
  /** Main: run (first start or continue). */
  | { type: 'cont' }
  /** Main: stop at the next bundle boundary. */
  | { type: 'stop' }
  /** Worker: parked at a boundary (asked to, or reached `--stop-at`). */
  | { type: 'parked'; reason: 'request' | 'stop-at' }
  /** Worker: the guest executed `halt`. */
  | { type: 'halt' }
  /** Worker: the guest faulted. */
  | { type: 'fault'; reason: string }
  /** Main: a restored machine state sets the vCPU's condition (while not running). */
  | { type: 'restore'; to: 'stopped' | 'halted' | 'faulted'; reason?: string }
  /** Main: terminate the worker. */
  | { type: 'exit' };

/** Advances the run state; an event that makes no sense in the current state is `E_VCPU_STATE`. */
export function stepVcpu(s: VcpuRunState, e: VcpuEvent): VcpuRunState {
  const illegal = (): never => {
    throw new E2kError('E_VCPU_STATE', `vCPU: event ${e.type} is not allowed in state ${s.kind}`);
  };
  if (e.type === 'exit') return s.kind === 'exited' ? illegal() : { kind: 'exited' };
  switch (s.kind) {
    case 'created':
    case 'stopped':
      if (e.type === 'cont') return { kind: 'running' };
      if (e.type === 'stop') return s.kind === 'created' ? { kind: 'stopped', reason: 'request' } : s;
      if (e.type === 'parked') return { kind: 'stopped', reason: e.reason };
      if (e.type === 'restore') return restored(e);
      return illegal();
    case 'running':
      if (e.type === 'cont') return s;
      if (e.type === 'stop') return { kind: 'stopping' };
      if (e.type === 'parked') return { kind: 'stopped', reason: e.reason };
      if (e.type === 'halt') return { kind: 'halted' };
      if (e.type === 'fault') return { kind: 'faulted', reason: e.reason };
      return illegal();
    case 'stopping':
      if (e.type === 'stop') return s;
      if (e.type === 'parked') return { kind: 'stopped', reason: e.reason };
      if (e.type === 'halt') return { kind: 'halted' };
      if (e.type === 'fault') return { kind: 'faulted', reason: e.reason };
      return illegal();
    case 'halted':
    case 'faulted':
      // A halted or faulted vCPU stays so: cont and stop leave it where it is.
      if (e.type === 'cont' || e.type === 'stop') return s;
      if (e.type === 'restore') return restored(e);
      return illegal();
    case 'exited':
      return illegal();
  }
}

function restored(e: Extract<VcpuEvent, { type: 'restore' }>): VcpuRunState {
  if (e.to === 'halted') return { kind: 'halted' };
  if (e.to === 'faulted') return { kind: 'faulted', reason: e.reason ?? 'restored faulted' };
  return { kind: 'stopped', reason: 'request' };
}

/** Whether the vCPU is parked at a bundle boundary (its state may be read or written). */
export function isQuiescent(s: VcpuRunState): boolean {
  return (
    s.kind === 'created' || s.kind === 'stopped' || s.kind === 'halted' || s.kind === 'faulted' || s.kind === 'exited'
  );
}
