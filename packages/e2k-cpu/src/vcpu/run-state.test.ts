import { describe, expect, it } from 'vitest';
import { isQuiescent, stepVcpu, type VcpuEvent, type VcpuRunState } from './run-state.js';

const run = (events: VcpuEvent[], from: VcpuRunState = { kind: 'created' }) => events.reduce(stepVcpu, from);

describe('vCPU run state', () => {
  it('follows start, stop request, park and continue', () => {
    expect(run([{ type: 'cont' }])).toEqual({ kind: 'running' });
    expect(run([{ type: 'cont' }, { type: 'stop' }])).toEqual({ kind: 'stopping' });
    expect(run([{ type: 'cont' }, { type: 'stop' }, { type: 'parked', reason: 'request' }])).toEqual({
      kind: 'stopped',
      reason: 'request',
    });
    expect(run([{ type: 'cont' }, { type: 'parked', reason: 'stop-at' }, { type: 'cont' }])).toEqual({
      kind: 'running',
    });
  });

  it('keeps halted and faulted vCPUs there until a restore', () => {
    const halted = run([{ type: 'cont' }, { type: 'halt' }]);
    expect(run([{ type: 'cont' }, { type: 'stop' }], halted)).toEqual({ kind: 'halted' });
    const faulted = run([{ type: 'cont' }, { type: 'fault', reason: 'illegal opcode' }]);
    expect(faulted).toEqual({ kind: 'faulted', reason: 'illegal opcode' });
    expect(run([{ type: 'restore', to: 'stopped' }], faulted)).toEqual({ kind: 'stopped', reason: 'request' });
    expect(isQuiescent(halted) && isQuiescent(faulted)).toBe(true);
    expect(isQuiescent({ kind: 'running' }) || isQuiescent({ kind: 'stopping' })).toBe(false);
  });

  it('rejects transitions that make no sense, with E_VCPU_STATE', () => {
    const bad: [VcpuRunState, VcpuEvent][] = [
      [{ kind: 'created' }, { type: 'halt' }],
      [{ kind: 'running' }, { type: 'restore', to: 'stopped' }],
      [{ kind: 'stopping' }, { type: 'cont' }],
      [{ kind: 'exited' }, { type: 'cont' }],
      [{ kind: 'exited' }, { type: 'exit' }],
    ];
    for (const [s, e] of bad) expect(() => stepVcpu(s, e)).toThrow(expect.objectContaining({ code: 'E_VCPU_STATE' }));
    expect(stepVcpu({ kind: 'running' }, { type: 'exit' })).toEqual({ kind: 'exited' });
  });
});
