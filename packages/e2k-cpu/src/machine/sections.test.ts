import { ByteReader, ByteWriter, decodeVmsd, encodeVmsd, VmstateError } from '@e2k-migrate/vmstate';
import { afterEach, describe, expect, it } from 'vitest';
import { E2kError } from '../errors.js';
import type { WorkloadConfig } from '../guest/workload.js';
import type { DeviceSection } from './description.js';
import { globalStateOf, vmstateGlobalState } from './globalstate.vmstate.js';
import { E2kMachine, type MachineConfig } from './machine.js';
import { describeMachine } from './sections.js';

const machines: E2kMachine[] = [];
afterEach(async () => {
  for (const m of machines.splice(0)) await m.close();
});

function make(extra: Partial<MachineConfig> = {}, workload: WorkloadConfig = { pattern: 'increment' }) {
  const m = E2kMachine.create({ memSize: 1 << 20, vcpus: 2, workload, executor: 'inline', ...extra });
  machines.push(m);
  return m;
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

function saveSections(m: E2kMachine): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const s of describeMachine(m).sections) {
    out.set(`${s.idstr}/${s.instanceId}`, encodeVmsd(s.vmsd, s.save(), new ByteWriter()).written());
  }
  return out;
}

function loadSections(m: E2kMachine, bytes: Map<string, Uint8Array>): ReturnType<typeof describeMachine> {
  const d = describeMachine(m);
  for (const s of d.sections as DeviceSection<unknown>[]) {
    const body = bytes.get(`${s.idstr}/${s.instanceId}`) as Uint8Array;
    const r = new ByteReader(body);
    s.load(decodeVmsd(s.vmsd, r, s.vmsd.version, s.loadTarget()));
    expect(r.remaining).toBe(0);
  }
  d.afterLoad();
  return d;
}

describe('E2K machine sections', () => {
  it('describes e2k.ram and the sections in save order', () => {
    const d = describeMachine(make());
    expect(d.targetPageSize).toBe(4096);
    expect(d.ramBlocks.map((b) => [b.idstr, b.size, b.pageSize])).toEqual([['e2k.ram', 1 << 20, 4096]]);
    expect(d.sections.map((s) => `${s.idstr}:${s.instanceId}:${s.vmsd.name}:v${s.vmsd.version}`)).toEqual([
      'timer:0:timer:v2',
      'e2k-cpu:0:e2k-cpu:v1',
      'e2k-cpu:1:e2k-cpu:v1',
      'e2k-serial:0:e2k-serial:v1',
      'e2k-machine:0:e2k-machine:v1',
      'globalstate:0:globalstate:v1',
    ]);
  });

  it('encodes timer, e2k-machine, e2k-serial and globalstate to their golden bytes', () => {
    const m = make();
    m.runInline(1000);
    m.storedRunState = 'running';
    const b = saveSections(m);
    // timer v2: be64 cpu_ticks_offset = 2000 bundles, 8 unused bytes, be64 cpu_clock_offset = 2000 ns
    expect(hexOf(b.get('timer/0') as Uint8Array)).toBe(`00000000000007d0${'00'.repeat(8)}00000000000007d0`);
    // e2k-machine: be32 nr_vcpus, be64 steps × 2, u8 condition × 2 (runnable)
    expect(hexOf(b.get('e2k-machine/0') as Uint8Array)).toBe(`00000002${'00000000000003e8'.repeat(2)}0000`);
    // e2k-serial: be64 bytes sent ('A' at boot and 'B' after the first 606-bundle pass, per vCPU)
    expect(hexOf(b.get('e2k-serial/0') as Uint8Array)).toBe('0000000000000004');
    // globalstate: be32 strlen+1, then "running" NUL-padded to 100 bytes (as QEMU writes it)
    expect(hexOf(b.get('globalstate/0') as Uint8Array)).toBe(
      `00000008${Buffer.from('running').toString('hex')}${'00'.repeat(93)}`,
    );
  });

  it('save and restore into a fresh incoming machine reproduces CPU state, steps and serial count', () => {
    const src = make({}, { pattern: 'random', seed: 99n });
    src.runInline(7777);
    const saved = saveSections(src);
    const dst = make({ incoming: true }, { pattern: 'random', seed: 99n });
    expect(dst.runState).toBe('inmigrate');
    const d = loadSections(dst, saved);
    expect(d.loadedRunState()).toBe('prelaunch');
    expect(dst.stepCounts()).toEqual([7777, 7777]);
    expect(dst.cpuState(0)).toEqual(src.cpuState(0));
    expect(dst.cpuState(1)).toEqual(src.cpuState(1));
    expect(dst.serialTxBytes()).toBe(src.serialTxBytes());
    // everything but the run state (the destination is still `inmigrate`) re-encodes identically
    const again = saveSections(dst);
    again.delete('globalstate/0');
    saved.delete('globalstate/0');
    expect(again).toEqual(saved);
  });

  it('rejects a timer that disagrees with the step counts, and a vCPU count mismatch', () => {
    const src = make();
    src.runInline(100);
    const saved = saveSections(src);
    const w = new ByteWriter().u64be(12345n).zeros(8).u64be(12345n);
    saved.set('timer/0', w.written());
    const dst = make({ incoming: true });
    expect(() => loadSections(dst, saved)).toThrow(expect.objectContaining({ code: 'E_MACHINE_STATE' }));
    expect(() => loadSections(dst, saved)).toThrow(E2kError);

    const one = E2kMachine.create({
      memSize: 1 << 20,
      vcpus: 1,
      workload: { pattern: 'increment' },
      executor: 'inline',
      incoming: true,
    });
    machines.push(one);
    const sec = describeMachine(one).sections.find((s) => s.idstr === 'e2k-machine') as DeviceSection<unknown>;
    expect(() =>
      decodeVmsd(sec.vmsd, new ByteReader(saveSections(src).get('e2k-machine/0') as Uint8Array), 1, sec.loadTarget()),
    ).toThrow(expect.objectContaining({ code: 'E_EQUAL_MISMATCH' }));
  });

  it('refuses a CPU section from another model or with a broken invariant', () => {
    const src = make({ cpu: { model: 'e8c2' } });
    const saved = saveSections(src);
    const dst = make({ incoming: true });
    expect(() => loadSections(dst, saved)).toThrow(
      expect.objectContaining({ code: 'E_CPU_INVARIANT', invariant: 'C2', field: 'cfg.isa' }),
    );
  });

  it('globalstate rejects an unknown run state or an oversized length', () => {
    const bad = globalStateOf('running');
    bad.runstate.set(Buffer.from('sprinting'));
    const bytes = encodeVmsd(vmstateGlobalState, bad, new ByteWriter()).written();
    expect(() => decodeVmsd(vmstateGlobalState, new ByteReader(bytes), 1, globalStateOf('inmigrate'))).toThrow(
      VmstateError,
    );
    const long = new ByteWriter().u32be(101).zeros(100).written();
    expect(() => decodeVmsd(vmstateGlobalState, new ByteReader(long), 1, globalStateOf('inmigrate'))).toThrow(
      expect.objectContaining({ code: 'E_BAD_VALUE', what: 'size' }),
    );
  });
});
