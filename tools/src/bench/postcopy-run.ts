import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmProcess } from '@e2k-migrate/cli';
import type { JsonValue } from '@e2k-migrate/qmp';

/** One E2K → E2K postcopy migration between two `e2k-migrate vm` processes over loopback TCP. */
export interface PostcopyRunOptions {
  /** Guest RAM, e.g. `512M`. */
  mem: string;
  ramKind: 'anonymous' | 'hugetlb';
  preempt: boolean;
  /** `e2k-migrate vm` workload arguments (both sides). */
  workload: string[];
  /** Fill the source's RAM with random bytes at boot (no zero pages: every fault is a remote one). */
  fillRandom: boolean;
  /** Milliseconds the source guest runs before `migrate`. */
  warmupMs: number;
  /** Precopy `max-bandwidth` (0 = unlimited). */
  maxBandwidth: number;
  /** `max-postcopy-bandwidth` of the background stream (0 = unlimited; page requests bypass it). */
  postcopyBandwidth: number;
  /** `start`: `migrate-start-postcopy` right after `migrate`; N: switch after N passes over RAM (`x-postcopy-after-iterations`). */
  switchAfter: 'start' | number;
}

export interface PostcopyRunResult {
  /** The source's final `query-migrate`. */
  src: Record<string, unknown>;
  /** The destination's final `query-migrate`. */
  dst: Record<string, unknown>;
  /** The destination's `x-query-postcopy-latency`. */
  latency: { resolved: number; samples: number; 'p50-ns': number; 'p99-ns': number; 'max-ns': number };
  /** Source `total-time`, ms. */
  totalMs: number;
  /** Source `downtime` (switchover), ms. */
  downtimeMs: number;
  /** Last source vCPU step → first destination vCPU step (x-vcpu-stop-time → x-vcpu-start-time), ms. */
  pauseMs: number | undefined;
  /** Switchover (the source's vCPUs stop) → completion on the source, ms. */
  postcopyMs: number;
  /** RAM bytes sent after the switchover. */
  postcopyBytes: number;
}

type Query = Record<string, unknown>;

async function waitFinal(vm: VmProcess, timeoutMs: number): Promise<Query> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const q = (await vm.qmp.execute('query-migrate')) as Query;
    if (q.status === 'completed' || q.status === 'failed' || q.status === 'cancelled') return q;
    if (performance.now() > deadline) throw new Error(`${vm.name}: migration still ${String(q.status)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function caps(list: string[]): JsonValue {
  return list.map((capability) => ({ capability, state: true }));
}

/**
 * Runs one postcopy migration and returns both sides' statistics. Both VMs are quit (and their
 * temporary directory removed) before it returns or throws.
 */
export async function runPostcopy(o: PostcopyRunOptions): Promise<PostcopyRunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'e2k-bench-postcopy-'));
  const vms: VmProcess[] = [];
  let stderr = '';
  const onStderr = (t: string) => {
    stderr = (stderr + t).slice(-4000);
  };
  try {
    const base = ['--mem', o.mem, '--vcpus', '2', '--ram-kind', o.ramKind, ...o.workload];
    const dst = await VmProcess.start({ dir, name: 'dst', args: [...base, '--incoming', 'defer'], onStderr });
    vms.push(dst);
    const src = await VmProcess.start({
      dir,
      name: 'src',
      args: [...base, ...(o.fillRandom ? ['--fill', 'random'] : [])],
      onStderr,
    });
    vms.push(src);
    const pc = ['postcopy-ram', ...(o.preempt ? ['postcopy-preempt'] : [])];
    await dst.qmp.execute('migrate-set-capabilities', { capabilities: caps([...pc, 'postcopy-blocktime']) });
    await src.qmp.execute('migrate-set-capabilities', { capabilities: caps(pc) });
    await dst.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    const dq = (await dst.qmp.execute('query-migrate')) as { 'socket-address': { port: string }[] };
    const port = dq['socket-address'][0]?.port;
    await src.qmp.execute('migrate-set-parameters', {
      'max-bandwidth': o.maxBandwidth,
      'max-postcopy-bandwidth': o.postcopyBandwidth,
      'downtime-limit': 1,
      ...(o.switchAfter === 'start' ? {} : { 'x-postcopy-after-iterations': o.switchAfter }),
    });
    if (o.warmupMs > 0) await new Promise((r) => setTimeout(r, o.warmupMs));
    const startWall = Date.now();
    await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    if (o.switchAfter === 'start') await src.qmp.execute('migrate-start-postcopy');
    const s = await waitFinal(src, 180_000);
    if (s.status !== 'completed')
      throw new Error(`postcopy ${String(s.status)}: ${String(s['error-desc'])}\n${stderr}`);
    const d = await waitFinal(dst, 60_000);
    if (d.status !== 'completed') throw new Error(`destination ${String(d.status)}\n${stderr}`);
    const latency = (await dst.qmp.execute('x-query-postcopy-latency')) as unknown as PostcopyRunResult['latency'];
    const totalMs = s['total-time'] as number;
    const stop = s['x-vcpu-stop-time'];
    const start = d['x-vcpu-start-time'];
    const ram = s.ram as Record<string, number>;
    return {
      src: s,
      dst: d,
      latency,
      totalMs,
      downtimeMs: s.downtime as number,
      pauseMs: typeof stop === 'number' && typeof start === 'number' ? start - stop : undefined,
      postcopyMs: typeof stop === 'number' ? startWall + totalMs - stop : totalMs,
      postcopyBytes: ram['postcopy-bytes'] ?? 0,
    };
  } finally {
    await Promise.all(vms.map((v) => v.quit()));
    rmSync(dir, { recursive: true, force: true });
  }
}
