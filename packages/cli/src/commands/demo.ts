import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSize, WORKLOAD_PATTERNS } from '@e2k-migrate/e2k-cpu';
import { HUGE_PAGE_BYTES, type HugePageReservation, reserveHugePages } from '@e2k-migrate/native';
import type { JsonObject } from '@e2k-migrate/qmp';
import { type Command, type CommandContext, UsageError } from '../command.js';
import {
  DEMO_MODES,
  type DemoMode,
  destinationPostcopy,
  postcopyDemoSettings,
  postcopySummary,
} from '../demo-postcopy.js';
import {
  applySettings,
  CAPABILITY_HELP,
  followMigration,
  formatResult,
  parseMigrationSettings,
  type QueryMigrateReply,
} from '../migration-client.js';
import { VmProcess } from '../vm-process.js';

/** The default workload: dirties 2 × 2500 pages/s (≈ 20 MB/s), well under the 128 MiB/s default. */
const DEFAULT_RATE = 2500;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Live-migrate a running E2K VM between two processes on loopback and verify it',
  usage:
    '[--mode precopy|postcopy] [--preempt] [--hugepages] [--mem SIZE] [--vcpus N] [--workload PATTERN] [--rate PAGES/S] [--caps LIST] [--set NAME=VALUE]... [--timeout SEC] [--json]',
  description: `
The whole of e2k-migrate in one command. It starts two \`e2k-migrate vm\` processes — a destination
waiting for an incoming migration on tcp:127.0.0.1 and a source running the guest workload —
lets the workload run, migrates the source live with QEMU's default parameters (max-bandwidth
128 MiB/s, downtime-limit 300 ms) while drawing progress (sent, remaining, rate, iteration,
dirty rate), then verifies the guest on the destination: the workload's invariant holds on its
RAM and its vCPUs keep executing. Finally it prints total time, downtime (as QEMU measures it:
from stopping the source VM to the end of the stream), the guest-visible pause (last source vCPU
step to first destination vCPU step), bytes, pages and iterations.

The default workload is "rate": each vCPU dirties ${DEFAULT_RATE} pages/s (about 20 MB/s for 2 vCPUs),
well below the bandwidth, so the migration converges. The increment workload rewrites all of
RAM faster than any link; watch auto-converge throttle it until it converges:
  e2k-migrate demo --mem 64M --vcpus 1 --workload increment --caps auto-converge \\
      --set max-bandwidth=256M --set downtime-limit=20 \\
      --set cpu-throttle-initial=90 --set cpu-throttle-increment=9
Capabilities: ${CAPABILITY_HELP}.

--mode postcopy: both VMs get postcopy-ram (with --preempt also postcopy-preempt: a second
connection carries the requested pages), the destination postcopy-blocktime, and the demo sends
migrate-start-postcopy right after migrate: the source switches at its next iteration — it
stops, discards what the destination does not have, sends the device state — and the guest runs
on the destination at once, which fetches every page it touches first (userfaultfd) while the
rest streams in. To send precopy passes first, let the source decide instead: --set
x-postcopy-after-iterations=N (after N passes) or x-postcopy-stall-syncs=K (precopy may then
complete on its own, as in QEMU, when what is left fits in bandwidth × downtime-limit). The
progress line counts page requests after the switch; the summary adds the time in postcopy,
the requests and, from the destination's query-migrate, its faults, average fault latency and
blocktime. Slow the background stream (--set max-postcopy-bandwidth=16M) to see more requests.

--hugepages: guest RAM on 2 MiB hugetlb pages on both sides (--mem a multiple of 2M). Run as
root, the demo reserves the pages the two VMs need (2 × SIZE / 2 MiB) by raising
/proc/sys/vm/nr_hugepages, checks HugePages_Free, says what it did, and gives them back at the
end — also on failure or Ctrl-C. Not root, it uses free huge pages if there are enough, and
otherwise stops with E_HUGEPAGES saying how to reserve them.

Examples:
  e2k-migrate demo
  e2k-migrate demo --mem 1G --vcpus 2 --caps xbzrle
  e2k-migrate demo --json | jq '{status, downtime, verified}'
  e2k-migrate demo --mode postcopy --mem 64M --set max-postcopy-bandwidth=16M
  e2k-migrate demo --mode postcopy --mem 64M --set x-postcopy-after-iterations=1 --set downtime-limit=1
  sudo e2k-migrate demo --mode postcopy --preempt --hugepages --mem 64M

With --json, stdout is the source's final query-migrate object plus "verified" (and the
extras x-guest-pause-ms, x-destination — with "postcopy", the destination's postcopy statistics
in postcopy mode — and x-hugepages). Exit status 0 only when the migration completed and the
destination verified; past --timeout (default 120 s) the demo fails showing the last
query-migrate; 130 after Ctrl-C.
`,
  options: {
    mode: { type: 'string', arg: 'MODE', help: 'precopy (default) or postcopy' },
    preempt: { type: 'boolean', help: 'postcopy: the postcopy-preempt channel for requested pages' },
    hugepages: { type: 'boolean', help: 'guest RAM on 2 MiB huge pages (reserved when root, given back at the end)' },
    mem: { type: 'string', arg: 'SIZE', help: 'guest RAM (default 256M)' },
    vcpus: { type: 'string', arg: 'N', help: 'vCPUs (default 2)' },
    workload: { type: 'string', arg: 'PATTERN', help: `${WORKLOAD_PATTERNS.join(', ')} (default rate)` },
    rate: { type: 'string', arg: 'PAGES/S', help: `rate workload: pages/s per vCPU (default ${DEFAULT_RATE})` },
    caps: { type: 'string', arg: 'LIST', help: 'capabilities to enable on the source' },
    set: { type: 'string', multiple: true, arg: 'NAME=VALUE', help: 'a migration parameter (repeatable)' },
    timeout: { type: 'string', arg: 'SEC', help: 'give up after this many seconds (default 120)' },
    json: { type: 'boolean', help: 'print the final query-migrate object + "verified" as JSON' },
  },
  async run(ctx: CommandContext): Promise<number> {
    const o = parseDemoOptions(ctx);
    const settings = parseMigrationSettings(o.caps, o.sets);
    if (settings.capabilities.some((c) => c.capability.startsWith('postcopy-'))) {
      throw new UsageError(
        'postcopy capabilities go through --mode postcopy [--preempt] (the destination needs them too)',
      );
    }
    settings.capabilities.push({ capability: 'events', state: true });
    const pc = o.mode === 'postcopy' ? postcopyDemoSettings(o.preempt, settings.parameters) : undefined;
    if (pc) for (const capability of pc.source) settings.capabilities.push({ capability, state: true });
    const log = (s: string) => ctx.stderr.write(`demo: ${s}\n`);
    const vms: VmProcess[] = [];
    let interrupted = false;
    // Ctrl-C: stop the VMs; every await below then fails and the finally block cleans up.
    const onSigint = () => {
      interrupted = true;
      log('interrupted: stopping the VMs');
      for (const v of vms) v.kill();
    };
    process.once('SIGINT', onSigint);
    let huge: HugePageReservation | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'e2k-demo-'));
    const start = performance.now();
    try {
      if (o.hugepages) huge = reserveHugePages((2 * o.memBytes) / HUGE_PAGE_BYTES, { log, purpose: '--hugepages' });
      const vmArgs = ['--mem', o.mem, '--vcpus', String(o.vcpus), '--workload', o.workload];
      if (o.workload === 'rate') vmArgs.push('--rate', String(o.rate));
      if (o.hugepages) vmArgs.push('--ram-kind', 'hugetlb');
      const dst = await VmProcess.start({ dir, name: 'dst', args: [...vmArgs, '--incoming', 'defer'] });
      vms.push(dst);
      const src = await VmProcess.start({ dir, name: 'src', args: vmArgs });
      vms.push(src);
      if (pc) {
        await dst.qmp.execute('migrate-set-capabilities', {
          capabilities: pc.destination.map((capability) => ({ capability, state: true })),
        });
      }
      await dst.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
      const port = listeningPort((await dst.qmp.execute('query-migrate')) as JsonObject);
      log(
        `source and destination VMs up (${o.mem}${o.hugepages ? ' on 2 MiB huge pages' : ''}, ${o.vcpus} vCPU, workload ${o.workload}); ` +
          `destination on tcp:127.0.0.1:${port}; ${o.mode}${o.preempt ? ' with postcopy-preempt' : ''}`,
      );
      await new Promise((r) => setTimeout(r, 1000));
      await applySettings(src.qmp, settings);
      await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
      if (pc?.startPostcopy) {
        await src.qmp.execute('migrate-start-postcopy');
        log('migrate-start-postcopy: the source switches at its next iteration');
      }
      const left = o.timeoutSec * 1000 - (performance.now() - start);
      const { last, timedOut } = await followMigration(src.qmp, ctx.stderr, { deadlineMs: Math.max(left, 1000) });
      if (timedOut) {
        log(`no result within ${o.timeoutSec} s; last query-migrate:\n${JSON.stringify(last, null, 2)}`);
        await src.qmp.execute('migrate_cancel').catch(() => undefined);
        if (ctx.values.json) ctx.stdout.write(`${JSON.stringify({ ...last, verified: false, 'x-timed-out': true })}\n`);
        return 1;
      }
      const check = last.status === 'completed' ? await verify(dst, log) : { verified: false, detail: {}, query: {} };
      // the switch happened (precopy may also complete before it)
      const postcopy = last.status === 'completed' && 'x-postcopy-time' in last;
      const detail: JsonObject = { ...check.detail, ...(pc ? { postcopy: destinationPostcopy(check.query) } : {}) };
      const result: QueryMigrateReply = { ...last, verified: check.verified, 'x-destination': detail };
      const pause = guestPause(last, check.detail);
      if (pause !== undefined) result['x-guest-pause-ms'] = pause;
      if (huge) result['x-hugepages'] = { needed: huge.needed, reserved: huge.reserved, pool: huge.pool };
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        ctx.stdout.write(formatResult(result));
        if (postcopy) ctx.stdout.write(`${postcopySummary(last, check.query).join('\n')}\n`);
        ctx.stdout.write(
          check.verified
            ? 'destination verified: workload invariant holds and the guest keeps running\n'
            : 'destination NOT verified\n',
        );
      }
      return check.verified ? 0 : 1;
    } catch (err) {
      if (interrupted) return 130;
      throw err;
    } finally {
      process.off('SIGINT', onSigint);
      await Promise.all(vms.map((v) => v.quit()));
      rmSync(dir, { recursive: true, force: true });
      huge?.release();
    }
  },
};

interface DemoOptions {
  mode: DemoMode;
  preempt: boolean;
  hugepages: boolean;
  mem: string;
  memBytes: number;
  vcpus: number;
  workload: string;
  rate: number;
  caps: string | undefined;
  sets: string[];
  timeoutSec: number;
}

function parseDemoOptions(ctx: CommandContext): DemoOptions {
  const v = ctx.values;
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const num = (k: string, def: number) => {
    const s = str(k);
    if (s === undefined) return def;
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${k}: "${s}" is not a positive number`);
    return n;
  };
  const workload = str('workload') ?? 'rate';
  if (!(WORKLOAD_PATTERNS as readonly string[]).includes(workload)) {
    throw new UsageError(`--workload: "${workload}" is not one of ${WORKLOAD_PATTERNS.join(', ')}`);
  }
  const mode = (str('mode') ?? 'precopy') as DemoMode;
  if (!DEMO_MODES.includes(mode)) throw new UsageError(`--mode: "${mode}" is not one of ${DEMO_MODES.join(', ')}`);
  if (v.preempt === true && mode !== 'postcopy') throw new UsageError('--preempt needs --mode postcopy');
  const mem = str('mem') ?? '256M';
  let memBytes: number;
  try {
    memBytes = parseSize(mem);
  } catch (e) {
    throw new UsageError(`--mem: ${(e as Error).message}`);
  }
  if (v.hugepages === true && memBytes % (2 << 20) !== 0) {
    throw new UsageError(`--hugepages: --mem ${mem} is not a multiple of the 2 MiB huge page`);
  }
  return {
    mode,
    preempt: v.preempt === true,
    hugepages: v.hugepages === true,
    mem,
    memBytes,
    vcpus: num('vcpus', 2),
    workload,
    rate: num('rate', DEFAULT_RATE),
    caps: str('caps'),
    sets: (v.set as string[] | undefined) ?? [],
    timeoutSec: num('timeout', 120),
  };
}

function listeningPort(q: JsonObject): number {
  const addrs = q['socket-address'] as { type: string; port?: string }[] | undefined;
  const port = Number(addrs?.find((a) => a.type === 'inet')?.port);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`destination reports no tcp port: ${JSON.stringify(q)}`);
  return port;
}

/** The destination runs, its workload invariant holds, and its vCPUs keep stepping. */
async function verify(
  dst: VmProcess,
  log: (s: string) => void,
): Promise<{ verified: boolean; detail: JsonObject; query: JsonObject }> {
  const q = dst.qmp;
  let inc = (await q.execute('query-migrate')) as JsonObject;
  for (let i = 0; i < 200 && inc.status !== 'completed' && inc.status !== 'failed'; i++) {
    await new Promise((r) => setTimeout(r, 25));
    inc = (await q.execute('query-migrate')) as JsonObject;
  }
  const status = (await q.execute('query-status')) as JsonObject;
  const steps0 = await totalSteps(dst);
  const first = (await q.execute('x-check-workload')) as JsonObject;
  await new Promise((r) => setTimeout(r, 500));
  const steps1 = await totalSteps(dst);
  const second = (await q.execute('x-check-workload')) as JsonObject;
  const running = status.status === 'running';
  const verified = inc.status === 'completed' && running && first.ok === true && second.ok === true && steps1 > steps0;
  log(
    `destination ${status.status}; workload invariant ${first.ok && second.ok ? 'holds' : `FAILED: ${String(first.error ?? second.error)}`}; vCPU steps ${steps0} → ${steps1}`,
  );
  return {
    verified,
    query: inc,
    detail: {
      status: status.status ?? null,
      'migration-status': inc.status ?? null,
      'vcpu-start-time': inc['x-vcpu-start-time'] ?? null,
      workload: second,
      'steps-before': steps0,
      'steps-after': steps1,
    },
  };
}

async function totalSteps(vm: VmProcess): Promise<number> {
  const vcpus = (await vm.qmp.execute('x-query-vcpus')) as { steps: number }[];
  return vcpus.reduce((n, v) => n + v.steps, 0);
}

function guestPause(src: QueryMigrateReply, dst: JsonObject): number | undefined {
  const stop = src['x-vcpu-stop-time'];
  const startT = dst['vcpu-start-time'];
  if (typeof stop !== 'number' || typeof startT !== 'number') return undefined;
  return Math.round((startT - stop) * 10) / 10;
}
