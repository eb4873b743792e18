/**
 * The E2K machine with real vCPU worker threads over shared guest RAM, and the `e2k-migrate vm`
 * process driven over QMP. Worker threads and the CLI run from `dist/` (built by the global setup).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  checkCpuState,
  checkWorkloadInvariant,
  E2kMachine,
  type MachineConfig,
  type MachineEvent,
} from '@e2k-migrate/e2k-cpu';
import { QmpClient } from '@e2k-migrate/qmp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadMachineStream, ramSha256, saveMachineStream } from './machine-stream.js';

const root = resolve(import.meta.dirname, '..', '..');
const bin = join(root, 'packages', 'cli', 'bin', 'e2k-migrate.js');
let dir: string;

// Worker threads and the CLI run from dist/, which test/support/build-setup.ts brings up to date.
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'e2k-workers-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const machines: E2kMachine[] = [];
afterEach(async () => {
  for (const m of machines.splice(0)) await m.close();
});

function make(config: MachineConfig): E2kMachine {
  const m = E2kMachine.create(config);
  machines.push(m);
  return m;
}

async function runTo(m: E2kMachine, step: number): Promise<void> {
  m.setStopAt(step);
  await m.cont();
  await m.waitForStopAt();
  expect(m.stepCounts().every((s) => s === step)).toBe(true);
}

const image = (m: E2kMachine) => {
  const img = new Uint8Array(m.ram.size);
  m.ram.readBytes(0, img);
  return img;
};

describe('vCPU worker threads', () => {
  it.each([
    ['increment', 2, { pattern: 'increment' as const }],
    ['random', 2, { pattern: 'random' as const, seed: 77n }],
  ])('%s on %i workers: N straight == N/2 + stream save/restore + N/2, bit-exact', async (_, vcpus, workload) => {
    const cfg: MachineConfig = { memSize: 4 << 20, vcpus, workload, chunk: 4096 };
    const n = 1_500_000;
    const straight = make(cfg);
    await runTo(straight, n);
    const first = make(cfg);
    await runTo(first, n / 2);
    await first.stop();
    const stream = await saveMachineStream(first);
    const second = make({ ...cfg, incoming: true });
    await loadMachineStream(second, stream);
    await runTo(second, n);
    expect(ramSha256(second)).toBe(ramSha256(straight));
    for (let i = 0; i < vcpus; i++) expect(second.cpuState(i)).toEqual(straight.cpuState(i));
    expect(second.serialTxBytes()).toBe(straight.serialTxBytes());
    checkWorkloadInvariant(image(second), vcpus, workload);
  });

  it('pacing (rate) and throttling change how fast bundles run, not what they compute', async () => {
    const workload = { pattern: 'rate' as const, pagesPerSecond: 100_000, workingSetPages: 30 };
    const cfg: MachineConfig = { memSize: 2 << 20, vcpus: 2, workload };
    const inline = make({ ...cfg, executor: 'inline' });
    inline.runInline(150_000);
    const paced = make(cfg);
    paced.setThrottle(50);
    await runTo(paced, 150_000);
    expect(ramSha256(paced)).toBe(ramSha256(inline));
    for (let i = 0; i < 2; i++) expect(paced.cpuState(i)).toEqual(inline.cpuState(i));
  });

  it('stops at a bundle boundary: every stop leaves valid registers and a RAM image satisfying the invariant', async () => {
    const m = make({ memSize: 2 << 20, vcpus: 2, workload: { pattern: 'increment' } });
    const events: MachineEvent[] = [];
    m.onEvent = (e) => events.push(e);
    await m.cont();
    let last = [0, 0];
    for (let round = 0; round < 5; round++) {
      await new Promise((r) => setTimeout(r, 20));
      await m.stop();
      expect(m.runState).toBe('paused');
      const steps = m.stepCounts();
      expect(steps.every((s, i) => s >= (last[i] as number))).toBe(true);
      last = steps;
      for (let i = 0; i < 2; i++) expect(checkCpuState(m.cpuState(i)).errors).toEqual([]);
      checkWorkloadInvariant(image(m), 2, { pattern: 'increment' });
      // nothing moves while stopped
      const before = m.cpuState(0);
      await new Promise((r) => setTimeout(r, 10));
      expect(m.cpuState(0)).toEqual(before);
      expect(m.stepCounts()).toEqual(steps);
      await m.cont();
    }
    expect(() => m.cpuState(0)).toThrow(expect.objectContaining({ code: 'E_VCPU_STATE' }));
    await m.stop();
    expect(events.filter((e) => e.type === 'stop').length).toBe(6);
    expect(events.filter((e) => e.type === 'resume').length).toBe(6);
  });

  it('a guest fault stops the machine (internal-error); a halt parks only that vCPU', async () => {
    const m = make({ memSize: 1 << 20, vcpus: 2, workload: { pattern: 'increment' } });
    const events: MachineEvent[] = [];
    m.onEvent = (e) => events.push(e);
    // vCPU 1 jumps to the reserved page: a nop, then an illegal bundle
    m.ram.store8(0x8, 0xff);
    const s = m.cpuState(1);
    s.ip = 0n;
    m.setCpuState(1, s);
    await m.cont();
    for (let i = 0; i < 200 && m.runState === 'running'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(m.runState).toBe('internal-error');
    expect(m.vcpuStates()[1]).toEqual({ kind: 'faulted', reason: 'illegal opcode 0xff' });
    expect(m.stepCounts()[1]).toBe(1);
    expect(m.cpuState(1).ip).toBe(8n);
    expect(events).toContainEqual({ type: 'vcpu-faulted', cpu: 1, reason: 'illegal opcode 0xff' });

    const h = make({ memSize: 1 << 20, vcpus: 2, workload: { pattern: 'increment' } });
    h.ram.store8(0x10, 0x01); // halt at 0x10
    const t = h.cpuState(0);
    t.ip = 0n;
    h.setCpuState(0, t);
    await runTo2(h, 50_000);
    expect(h.vcpuStates()[0]).toEqual({ kind: 'halted' });
    expect(h.stepCounts()).toEqual([2, 50_000]);
  });
});

/** Runs to a stop-at step where some vCPUs may halt before it. */
async function runTo2(m: E2kMachine, step: number): Promise<void> {
  m.setStopAt(step);
  await m.cont();
  await m.waitForStopAt();
}

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function vm(args: string[]): Proc {
  const child = spawn(process.execPath, [bin, 'vm', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c) => {
    out += c;
  });
  child.stderr?.on('data', (c) => {
    err += c;
  });
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function connect(path: string, p: Proc): Promise<QmpClient> {
  for (let i = 0; i < 200; i++) {
    if (p.stderr().includes('QMP monitor on')) return QmpClient.connect(`unix:${path}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`vm did not start its monitor: ${p.stderr()}`);
}

describe('e2k-migrate vm', () => {
  it('--stop-at is deterministic across processes', async () => {
    const args = [
      '--mem',
      '8M',
      '--vcpus',
      '2',
      '--workload',
      'random',
      '--seed',
      '42',
      '--stop-at',
      '700000',
      '--json',
    ];
    const runs = [vm(args), vm(args)];
    const codes = await Promise.all(runs.map((r) => r.exit));
    expect(codes).toEqual([0, 0]);
    const [a, b] = runs.map((r) => JSON.parse(r.stdout()));
    expect(a.status).toBe('paused');
    expect(a.vcpus.map((v: { steps: number }) => v.steps)).toEqual([700_000, 700_000]);
    expect(a.workload.ok).toBe(true);
    expect(b.ramSha256).toBe(a.ramSha256);
    expect(b.vcpus).toEqual(a.vcpus);
  });

  it('is driven over QMP: status, registers, stop/cont with events, quit', async () => {
    const sock = join(dir, 'vm1.qmp');
    const p = vm([
      '--mem',
      '4M',
      '--vcpus',
      '2',
      '--workload',
      'hotset',
      '--qmp',
      `unix:${sock}`,
      '--stop-at',
      '300000',
      '--json',
    ]);
    const c = await connect(sock, p);
    await c.waitEvent('STOP', { timeoutMs: 30_000 });
    expect(await c.execute('query-status')).toEqual({ status: 'paused', singlestep: false, running: false });
    const regs = (await c.execute('x-query-registers')) as {
      'cpu-index': number;
      steps: number;
      registers: { ip: string };
    }[];
    expect(regs.map((r) => [r['cpu-index'], r.steps])).toEqual([
      [0, 300_000],
      [1, 300_000],
    ]);
    const text = (await c.execute('human-monitor-command', { 'command-line': 'info registers -a' })) as string;
    expect(text).toContain('CPU#0 e8c (ISA v4)');
    expect(text).toContain('CPU#1 e8c (ISA v4)');
    expect(text).toContain(
      ` ip    = 0x${BigInt(regs[0]?.registers.ip ?? 0)
        .toString(16)
        .padStart(16, '0')}`,
    );
    const since = c.events.length;
    await c.execute('cont');
    await c.waitEvent('RESUME', { since, timeoutMs: 5000 });
    expect(((await c.execute('query-status')) as { status: string }).status).toBe('running');
    // the vCPUs run on after cont (polled: on a loaded machine a worker may take a while to wake)
    const ran = async () => ((await c.execute('x-query-vcpus')) as { steps: number }[]).every((v) => v.steps > 300_000);
    for (let i = 0; i < 500 && !(await ran()); i++) await new Promise((r) => setTimeout(r, 10));
    await c.execute('stop');
    await c.waitEvent('STOP', { since, timeoutMs: 5000 });
    const vcpus = (await c.execute('x-query-vcpus')) as { steps: number }[];
    expect(vcpus.every((v) => v.steps > 300_000)).toBe(true);
    const cpus = (await c.execute('query-cpus-fast')) as { 'cpu-index': number; 'thread-id': number }[];
    expect(cpus.map((x) => x['cpu-index'])).toEqual([0, 1]);
    // real kernel thread ids of the worker threads: distinct, and not the process id
    expect(new Set(cpus.map((x) => x['thread-id'])).size).toBe(2);
    expect(cpus.every((x) => x['thread-id'] > 0 && x['thread-id'] !== p.child.pid)).toBe(true);
    await c.execute('quit');
    await c.waitEvent('SHUTDOWN', { since, timeoutMs: 10_000 });
    expect(await p.exit).toBe(0);
    const summary = JSON.parse(p.stdout());
    expect(summary.reason).toBe('host-qmp-quit');
    expect(summary.workload.ok).toBe(true);
    await c.close();
  });

  it('stops cleanly on SIGTERM with the workload invariant intact', async () => {
    const sock = join(dir, 'vm2.qmp');
    const p = vm(['--mem', '8M', '--vcpus', '2', '--workload', 'increment', '--qmp', `unix:${sock}`, '--json']);
    const c = await connect(sock, p);
    expect(((await c.execute('query-status')) as { status: string }).status).toBe('running');
    // let both workers get going
    for (let i = 0; i < 200; i++) {
      const v = (await c.execute('x-query-vcpus')) as { steps: number }[];
      if (v.every((x) => x.steps > 0)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    const summary = JSON.parse(p.stdout());
    expect(summary.reason).toBe('host-signal');
    expect(summary.status).toBe('shutdown');
    expect(summary.workload.ok).toBe(true);
    expect(summary.vcpus.every((v: { steps: number }) => v.steps > 0)).toBe(true);
    await c.close();
  });

  it('rejects bad command lines with exit status 2', async () => {
    const p = vm(['--mem', '4M', '--workload', 'sideways']);
    expect(await p.exit).toBe(2);
    expect(p.stderr()).toContain('--workload: "sideways" is not one of increment, random, hotset, rate');
    const q = vm(['--mem', 'lots']);
    expect(await q.exit).toBe(2);
    const r = vm(['--mem', '64K', '--stop-at', '10']);
    expect(await r.exit).toBe(1);
    expect(r.stderr()).toContain('E_MACHINE_CONFIG');
  });
});
