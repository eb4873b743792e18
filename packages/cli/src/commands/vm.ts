import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  DATA_BASE,
  E2kMachine,
  formatSize,
  parseSize,
  vmstateE2kCpu,
  WORKLOAD_PATTERNS,
  type WorkloadConfig,
  type WorkloadPattern,
} from '@e2k-migrate/e2k-cpu';
import type { IncomingMigration } from '@e2k-migrate/migration';
import { formatQmpAddress, QmpServer } from '@e2k-migrate/qmp';
import { ByteWriter, encodeVmsd } from '@e2k-migrate/vmstate';
import { type Command, type CommandContext, UsageError } from '../command.js';
import { checkWorkload, ramSha256, registerInspectCommands } from '../vm-inspect.js';
import { attachMigration } from '../vm-migration.js';
import { type ShutdownReason, vmMonitorCommands } from '../vm-monitor.js';

const RAM_KINDS = ['anonymous', 'memfd', 'hugetlb'] as const;
const TRACKING = ['auto', 'kernel', 'software'] as const;

/** Exit status of `vm` when its incoming migration failed (the reason is on stderr). */
export const EXIT_INCOMING_FAILED = 3;

type FinishReason = ShutdownReason | 'stop-at' | 'fault' | 'incoming-failed';

export const vmCommand: Command = {
  name: 'vm',
  summary: 'Run an E2K virtual machine with a deterministic guest workload and a QMP monitor',
  usage:
    '--mem SIZE [--vcpus N] [--workload PATTERN] [--cpu MODEL] [--stop-at STEP] [--qmp unix:PATH|tcp:HOST:PORT] [--incoming URI|defer] [--caps CAPS] [--seed N] [--serial FILE|stdout|stderr] [--json]',
  description: `
Runs an E2K machine as a process: guest RAM "e2k.ram" of --mem bytes, --vcpus vCPUs (one worker
thread each), a serial console, a step-derived timer. The guest is a small program in guest RAM
whose whole state is E2K registers and RAM, so migrating the machine migrates the program.

Workloads (--workload):
  increment  each pass increments byte 0 of every page of the vCPU's RAM slice, stores the pass
             count and prints "B" on the serial console (QEMU's migration-test pattern)
  random     seeded xorshift64 stores (--seed) over the slice or a working set (--working-set)
  hotset     the increment sweep over a working set of --working-set pages (default 64)
  rate       the hotset sweep paced to --rate dirtied pages per second per vCPU

--stop-at STEP pauses every vCPU at exactly that many executed bundles (deterministic), so two
machines can be compared at the same point. Without --qmp the process then prints a summary and
exits; with --qmp it stays paused for inspection until "quit". SIGINT/SIGTERM stop it cleanly.

QMP (--qmp): query-status, stop, cont, quit, human-monitor-command "info registers [-a]",
query-cpus-fast, x-query-registers (JSON), x-query-vcpus, x-query-ram-hash, x-check-workload;
the migration commands migrate, migrate-incoming, migrate-set-capabilities,
migrate-set-parameters, query-migrate, query-migrate-parameters, query-migrate-capabilities,
migrate_cancel, migrate-start-postcopy, migrate-pause, migrate {"resume": true} (postcopy source),
object-add / object-del (tls-creds-x509, authz-simple, authz-list); events STOP,
RESUME, SHUTDOWN, and MIGRATION / MIGRATION_PASS when the "events" capability is on.

Incoming migration (--incoming URI, or "defer" and QMP migrate-incoming later, as qemu
-incoming): the machine is created empty in run state "inmigrate" and loads the stream from
tcp:HOST:PORT, unix:PATH, fd:N, exec:CMD or file:PATH. Start it with the same --mem, --vcpus,
--workload (and --rate) as the source. After a complete load the guest runs if it ran on the
source (stays paused with --paused). If the incoming migration fails the process prints the
reason and exits with status 3. Postcopy: --caps postcopy-ram[,postcopy-preempt] (or QMP
migrate-set-capabilities before migrate-incoming); the vCPUs start at POSTCOPY_RUN while RAM
is still arriving and fault on missing pages (userfaultfd; the cooperative fallback without it),
query-migrate shows x-postcopy-backend, requests, faults and latency (exact p50/p90/p99 of the
fault → placement time: QMP x-query-postcopy-latency [{"samples": true}]); after a broken connection
the state is postcopy-paused until QMP migrate-recover {"uri": URI}. TLS: object-add tls-creds-x509 + migrate-set-parameters
tls-creds before migrate-incoming (so use "defer").

Exit status: 0 normal exit, 1 a vCPU faulted, 2 bad command line, 3 incoming migration failed.

Examples:
  e2k-migrate vm --mem 64M --vcpus 2 --workload increment --qmp unix:/tmp/vm.qmp
  e2k-migrate vm --mem 16M --workload random --seed 7 --stop-at 1000000 --json
  e2k-migrate vm --mem 256M --vcpus 4 --workload rate --rate 20000 --working-set 4096 --serial stderr
  e2k-migrate vm --mem 64M --vcpus 2 --workload increment --qmp unix:/tmp/dst.qmp --incoming tcp:127.0.0.1:4444
  e2k-migrate vm --mem 64M --vcpus 2 --workload increment --incoming file:/tmp/vm.mig --stop-at 5000000 --json
  e2k-migrate vm --mem 64M --vcpus 2 --qmp unix:/tmp/dst.qmp --caps postcopy-ram --incoming tcp:127.0.0.1:4444

The summary (stdout; one JSON value with --json) gives each vCPU's steps, the sha256 of RAM and
of each vCPU's e2k-cpu section, the serial byte count and the workload invariant check.
`,
  options: {
    mem: { type: 'string', arg: 'SIZE', help: 'guest RAM, e.g. 64M, 1G (default 64M)' },
    vcpus: { type: 'string', arg: 'N', help: 'number of vCPUs, 1..64 (default 1)' },
    workload: {
      type: 'string',
      arg: 'PATTERN',
      help: `guest workload: ${WORKLOAD_PATTERNS.join(', ')} (default increment)`,
    },
    cpu: { type: 'string', arg: 'MODEL', help: 'CPU model, e.g. e8c (default, ISA v4), e8c2, e16c, elbrus-v7' },
    seed: { type: 'string', arg: 'N', help: 'seed of the random workload (default 1)' },
    'working-set': { type: 'string', arg: 'PAGES', help: 'working-set pages per vCPU (random, hotset, rate)' },
    rate: { type: 'string', arg: 'PAGES/S', help: 'rate workload: dirtied pages per second per vCPU' },
    'stop-at': { type: 'string', arg: 'STEP', help: 'pause every vCPU at exactly this many executed bundles' },
    qmp: { type: 'string', arg: 'ADDR', help: 'QMP monitor on unix:PATH or tcp:HOST:PORT' },
    serial: { type: 'string', arg: 'DEST', help: 'serial console output: FILE, stdout, stderr or none (default none)' },
    'ram-kind': { type: 'string', arg: 'KIND', help: 'RAM backing: anonymous (default), memfd or hugetlb' },
    paused: { type: 'boolean', short: 'S', help: 'start with the vCPUs stopped (like qemu -S); "cont" starts them' },
    'mem-prealloc': {
      type: 'boolean',
      help: 'touch every page of guest RAM at start (like qemu -mem-prealloc): no page faults later',
    },
    fill: {
      type: 'string',
      arg: 'random',
      help: 'benchmark aid: fill the data area with random bytes at boot (breaks the workload invariant)',
    },
    incoming: {
      type: 'string',
      arg: 'URI',
      help: 'wait for an incoming migration on URI, or "defer" (QMP migrate-incoming)',
    },
    caps: {
      type: 'string',
      arg: 'CAPS',
      help: 'migration capabilities to turn on at start (like -global migration.x-…=on), e.g. postcopy-ram for --incoming',
    },
    'dirty-tracking': {
      type: 'string',
      arg: 'MODE',
      help: 'outgoing dirty-page tracking: auto (default: kernel when available), kernel, software',
    },
    tags: { type: 'boolean', help: 'enable E2K register tags (cfg.tags)' },
    json: { type: 'boolean', help: 'print the final summary as exactly one JSON value on stdout' },
  },
  async run(ctx: CommandContext): Promise<number> {
    const o = parseOptions(ctx);
    const log = (line: string) => ctx.stderr.write(`vm: ${line}\n`);
    const serial = serialSink(o.serial, ctx);
    const machine = E2kMachine.create({
      memSize: o.memSize,
      vcpus: o.vcpus,
      workload: o.workload,
      cpu: { model: o.cpu, tags: o.tags },
      ramKind: o.ramKind,
      serial: serial.write,
      incoming: o.incoming !== undefined,
    });
    let finish: (r: FinishReason) => void = () => {};
    const done = new Promise<FinishReason>((resolve) => {
      finish = resolve;
    });
    let server: QmpServer | undefined;
    let incomingError: Error | undefined;
    const onIncomingFinished = (inc: IncomingMigration) => {
      if (inc.state.status === 'completed') {
        log(`incoming migration completed; run state ${machine.runState}`);
        return;
      }
      incomingError = inc.error ?? new Error(inc.state.status);
      finish('incoming-failed');
    };
    if (o.prealloc) preallocate(machine);
    if (o.fill && o.incoming === undefined) fillRandom(machine);
    if (o.qmp) server = new QmpServer();
    const control = attachMigration(machine, {
      server,
      autostart: !o.paused,
      tracking: o.tracking,
      log,
      onIncomingFinished,
    });
    try {
      if (o.caps.length > 0) control.setCapabilities(o.caps.map((capability) => ({ capability, state: true })));
      if (server && o.qmp) {
        vmMonitorCommands(machine, server, { shutdown: (r) => finish(r) });
        registerInspectCommands(machine, server, o.workload);
        const bound = await server.listen(o.qmp);
        log(`QMP monitor on ${formatQmpAddress(bound)}`);
      }
      const onEvent = machine.onEvent;
      machine.onEvent = (e) => {
        onEvent?.(e);
        if (e.type === 'stop' && e.reason === 'stop-at') log(`every vCPU reached step ${o.stopAt}`);
        if (e.type === 'vcpu-faulted') log(`vCPU ${e.cpu} faulted: ${e.reason}`);
        if (!server && e.type === 'stop') finish(e.reason === 'fault' ? 'fault' : 'stop-at');
      };
      const onSignal = () => finish('host-signal');
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      if (o.stopAt !== undefined) machine.setStopAt(o.stopAt);
      log(
        `${o.vcpus} vCPU(s) ${o.cpu}, ${formatSize(o.memSize)} RAM, workload ${o.workload.pattern}${o.paused ? ', paused' : ''}`,
      );
      if (o.incoming === 'defer') {
        control.deferIncoming();
        log('waiting for migrate-incoming (-incoming defer)');
      } else if (o.incoming !== undefined) {
        await control.startIncoming(o.incoming).catch(() => undefined);
        const q = control.queryMigrate() as { 'socket-address'?: unknown };
        if (!incomingError) log(`incoming migration on ${o.incoming} ${JSON.stringify(q['socket-address'] ?? '')}`);
      } else if (!o.paused) await machine.cont();
      const reason = await done;
      await control.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // QEMU stops the vCPUs for a shutdown without a STOP event; a stop-at pause is already paused.
      machine.onEvent = undefined;
      if (machine.runState === 'running') await machine.stop(reason === 'fault' ? 'internal-error' : 'shutdown');
      const summary = await summarize(machine, o.workload, reason);
      if (incomingError) {
        const e = incomingError as Error & { code?: string; offset?: number; section?: string };
        summary.error = {
          code: e.code ?? 'E_INTERNAL',
          message: e.message,
          ...(e.offset !== undefined ? { offset: e.offset } : {}),
          ...(e.section !== undefined ? { section: e.section } : {}),
        };
        log(`incoming migration failed: ${summary.error.code}: ${e.message}`);
      }
      if (reason === 'host-qmp-quit' || reason === 'host-signal') server?.emit('SHUTDOWN', { guest: false, reason });
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(summary)}\n`);
      else ctx.stdout.write(formatSummary(summary));
      if (reason === 'incoming-failed') return EXIT_INCOMING_FAILED;
      return summary.vcpus.some((v) => v.state === 'faulted') ? 1 : 0;
    } finally {
      await control.close();
      await server?.close();
      await machine.close();
      serial.close();
    }
  },
};

interface VmOptions {
  memSize: number;
  vcpus: number;
  workload: WorkloadConfig;
  cpu: string;
  tags: boolean;
  ramKind: (typeof RAM_KINDS)[number];
  stopAt: number | undefined;
  qmp: string | undefined;
  serial: string;
  paused: boolean;
  incoming: string | undefined;
  tracking: (typeof TRACKING)[number];
  fill: boolean;
  prealloc: boolean;
  caps: string[];
}

function parseOptions(ctx: CommandContext): VmOptions {
  const v = ctx.values;
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const int = (k: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined => {
    const s = str(k);
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new UsageError(`--${k}: "${s}" is not an integer in [${min}, ${max}]`);
    }
    return n;
  };
  let memSize: number;
  try {
    memSize = parseSize(str('mem') ?? '64M');
  } catch (e) {
    throw new UsageError(`--mem: ${(e as Error).message}`);
  }
  const pattern = (str('workload') ?? 'increment') as WorkloadPattern;
  if (!WORKLOAD_PATTERNS.includes(pattern))
    throw new UsageError(`--workload: "${pattern}" is not one of ${WORKLOAD_PATTERNS.join(', ')}`);
  const ws = int('working-set', 1);
  const rate = int('rate', 1);
  if (pattern === 'increment' && ws !== undefined)
    throw new UsageError('--working-set does not apply to the increment workload (it covers all RAM)');
  if (rate !== undefined && pattern !== 'rate') throw new UsageError('--rate applies only to --workload rate');
  if (pattern === 'rate' && rate === undefined) throw new UsageError('--workload rate needs --rate PAGES/S');
  const seed = str('seed');
  if (seed !== undefined && !/^\d+$/.test(seed))
    throw new UsageError(`--seed: "${seed}" is not a non-negative integer`);
  const ramKind = (str('ram-kind') ?? 'anonymous') as VmOptions['ramKind'];
  if (!RAM_KINDS.includes(ramKind))
    throw new UsageError(`--ram-kind: "${ramKind}" is not one of ${RAM_KINDS.join(', ')}`);
  const tracking = (str('dirty-tracking') ?? 'auto') as VmOptions['tracking'];
  if (!TRACKING.includes(tracking))
    throw new UsageError(`--dirty-tracking: "${tracking}" is not one of ${TRACKING.join(', ')}`);
  const serial = str('serial') ?? 'none';
  if (serial === 'stdout' && v.json)
    throw new UsageError('--serial stdout cannot be combined with --json (stdout carries the JSON)');
  return {
    memSize,
    vcpus: int('vcpus', 1, 64) ?? 1,
    workload: {
      pattern,
      ...(seed !== undefined ? { seed: BigInt(seed) } : {}),
      ...(ws !== undefined ? { workingSetPages: ws } : {}),
      ...(rate !== undefined ? { pagesPerSecond: rate } : {}),
    },
    cpu: str('cpu') ?? 'e8c',
    tags: v.tags === true,
    ramKind,
    stopAt: int('stop-at', 0),
    qmp: str('qmp'),
    serial,
    paused: v.paused === true,
    incoming: str('incoming'),
    tracking,
    fill: parseFill(str('fill')),
    prealloc: v['mem-prealloc'] === true,
    caps: (str('caps') ?? '')
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean),
  };
}

function parseFill(v: string | undefined): boolean {
  if (v === undefined) return false;
  if (v !== 'random') throw new UsageError(`--fill: "${v}" is not "random"`);
  return true;
}

/** Writes one byte of every 4 KiB page (its own value) so the kernel allocates all of RAM now. */
function preallocate(m: E2kMachine): void {
  for (const view of m.ram.views()) {
    for (let at = 0; at < view.length; at += 4096) view[at] = view[at] as number;
  }
}

/** Fills guest RAM past the program (DATA_BASE) with random bytes: incompressible, no zero pages. */
function fillRandom(m: E2kMachine): void {
  for (const [i, view] of m.ram.views().entries()) {
    const from = i === 0 ? DATA_BASE : 0;
    for (let at = from; at < view.length; at += 1 << 16) {
      randomFillSync(view, at, Math.min(1 << 16, view.length - at));
    }
  }
}

function serialSink(dest: string, ctx: CommandContext): { write: (b: Uint8Array) => void; close: () => void } {
  if (dest === 'none') return { write: () => {}, close: () => {} };
  if (dest === 'stdout') return { write: (b) => ctx.stdout.write(b), close: () => {} };
  if (dest === 'stderr') return { write: (b) => ctx.stderr.write(b), close: () => {} };
  const fd = openSync(dest, 'a');
  return { write: (b) => writeSync(fd, b), close: () => closeSync(fd) };
}

export interface VmSummary {
  status: string;
  reason: string;
  vcpus: { 'cpu-index': number; state: string; steps: number; cpuSectionSha256: string; fault?: string }[];
  ramSha256: string;
  serialBytes: number;
  workload: { pattern: string; ok: boolean; progress?: string[]; error?: string };
  /** Why the incoming migration failed (with status 3). */
  error?: { code: string; message: string; offset?: number; section?: string };
}

async function summarize(m: E2kMachine, workload: WorkloadConfig, reason: string): Promise<VmSummary> {
  const steps = m.stepCounts();
  const states = m.vcpuStates();
  const check: VmSummary['workload'] = { pattern: workload.pattern, ...(await checkWorkload(m, workload)) };
  return {
    status: m.runState,
    reason,
    vcpus: states.map((s, i) => ({
      'cpu-index': i,
      state: s.kind,
      steps: steps[i] ?? 0,
      cpuSectionSha256: createHash('sha256')
        .update(encodeVmsd(vmstateE2kCpu, m.cpuState(i), new ByteWriter()).written())
        .digest('hex'),
      ...(s.kind === 'faulted' ? { fault: s.reason } : {}),
    })),
    ramSha256: ramSha256(m),
    serialBytes: m.serialTxBytes(),
    workload: check,
  };
}

function formatSummary(s: VmSummary): string {
  const lines = [
    `status ${s.status} (${s.reason})`,
    ...s.vcpus.map(
      (v) => `vCPU ${v['cpu-index']}: ${v.state}, ${v.steps} steps${v.fault ? `, fault: ${v.fault}` : ''}`,
    ),
    `RAM sha256 ${s.ramSha256}`,
    `serial bytes ${s.serialBytes}`,
    `workload ${s.workload.pattern}: ${s.workload.ok ? `invariant holds (progress ${s.workload.progress?.join(', ')})` : `NOT checked/failed: ${s.workload.error}`}`,
  ];
  return `${lines.join('\n')}\n`;
}
