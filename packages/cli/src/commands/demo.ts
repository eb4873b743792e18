import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WORKLOAD_PATTERNS } from '@e2k-migrate/e2k-cpu';
import type { JsonObject } from '@e2k-migrate/qmp';
import { type Command, type CommandContext, UsageError } from '../command.js';
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
    '[--mem SIZE] [--vcpus N] [--workload PATTERN] [--rate PAGES/S] [--caps LIST] [--set NAME=VALUE]... [--timeout SEC] [--json]',
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

Examples:
  e2k-migrate demo
  e2k-migrate demo --mem 1G --vcpus 2 --caps xbzrle
  e2k-migrate demo --json | jq '{status, downtime, verified}'

With --json, stdout is the source's final query-migrate object plus "verified" (and the
extras x-guest-pause-ms, x-destination). Exit status 0 only when the migration completed and
the destination verified; past --timeout (default 120 s) the demo fails showing the last
query-migrate.
`,
  options: {
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
    settings.capabilities.push({ capability: 'events', state: true });
    const log = (s: string) => ctx.stderr.write(`demo: ${s}\n`);
    const dir = mkdtempSync(join(tmpdir(), 'e2k-demo-'));
    const vmArgs = ['--mem', o.mem, '--vcpus', String(o.vcpus), '--workload', o.workload];
    if (o.workload === 'rate') vmArgs.push('--rate', String(o.rate));
    const vms: VmProcess[] = [];
    const start = performance.now();
    try {
      const dst = await VmProcess.start({ dir, name: 'dst', args: [...vmArgs, '--incoming', 'defer'] });
      vms.push(dst);
      const src = await VmProcess.start({ dir, name: 'src', args: vmArgs });
      vms.push(src);
      await dst.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
      const port = listeningPort((await dst.qmp.execute('query-migrate')) as JsonObject);
      log(
        `source and destination VMs up (${o.mem}, ${o.vcpus} vCPU, workload ${o.workload}); destination on tcp:127.0.0.1:${port}`,
      );
      await new Promise((r) => setTimeout(r, 1000));
      await applySettings(src.qmp, settings);
      await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
      const left = o.timeoutSec * 1000 - (performance.now() - start);
      const { last, timedOut } = await followMigration(src.qmp, ctx.stderr, { deadlineMs: Math.max(left, 1000) });
      if (timedOut) {
        log(`no result within ${o.timeoutSec} s; last query-migrate:\n${JSON.stringify(last, null, 2)}`);
        await src.qmp.execute('migrate_cancel').catch(() => undefined);
        if (ctx.values.json) ctx.stdout.write(`${JSON.stringify({ ...last, verified: false, 'x-timed-out': true })}\n`);
        return 1;
      }
      const check = last.status === 'completed' ? await verify(dst, log) : { verified: false, detail: {} };
      const result: QueryMigrateReply = { ...last, verified: check.verified, 'x-destination': check.detail };
      const pause = guestPause(last, check.detail);
      if (pause !== undefined) result['x-guest-pause-ms'] = pause;
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        ctx.stdout.write(formatResult(result));
        ctx.stdout.write(
          check.verified
            ? 'destination verified: workload invariant holds and the guest keeps running\n'
            : 'destination NOT verified\n',
        );
      }
      return check.verified ? 0 : 1;
    } finally {
      await Promise.all(vms.map((v) => v.quit()));
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

interface DemoOptions {
  mem: string;
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
  return {
    mem: str('mem') ?? '256M',
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
async function verify(dst: VmProcess, log: (s: string) => void): Promise<{ verified: boolean; detail: JsonObject }> {
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
  const verified = running && first.ok === true && second.ok === true && steps1 > steps0;
  log(
    `destination ${status.status}; workload invariant ${first.ok && second.ok ? 'holds' : `FAILED: ${String(first.error ?? second.error)}`}; vCPU steps ${steps0} → ${steps1}`,
  );
  return {
    verified,
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
