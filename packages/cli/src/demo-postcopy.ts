import type { JsonObject } from '@e2k-migrate/qmp';
import type { QueryMigrateReply } from './migration-client.js';

/** `demo --mode`: precopy (QEMU's default) or postcopy after the first pass. */
export const DEMO_MODES = ['precopy', 'postcopy'] as const;
export type DemoMode = (typeof DEMO_MODES)[number];

/** The destination's `query-migrate` fields the demo reports for postcopy. */
const DESTINATION_POSTCOPY_FIELDS = [
  'postcopy-blocktime',
  'postcopy-vcpu-blocktime',
  'postcopy-latency',
  'postcopy-vcpu-latency',
  'postcopy-non-vcpu-latency',
  'postcopy-latency-dist',
  'x-postcopy-backend',
  'x-postcopy-backend-reason',
  'x-postcopy-state',
  'x-postcopy-requests',
  'x-postcopy-faults',
  'x-postcopy-pages',
  'x-postcopy-discarded-bytes',
] as const;

/**
 * Capabilities of a postcopy demo — postcopy-ram (+ postcopy-preempt) on both sides,
 * postcopy-blocktime on the destination (its statistics) — and whether the demo sends
 * `migrate-start-postcopy` itself right after `migrate` (as a user would): the source then switches
 * at its next iteration, the guest runs on the destination at once and fetches what it touches
 * while the rest streams in. Not when the user chose the source's own policy
 * (`x-postcopy-after-iterations`, `x-postcopy-stall-syncs`) — precopy may then also complete
 * before it fires, QEMU's way, when what is left fits in bandwidth × downtime-limit.
 */
export function postcopyDemoSettings(
  preempt: boolean,
  userParams: JsonObject,
): { source: string[]; destination: string[]; startPostcopy: boolean } {
  const caps = ['postcopy-ram', ...(preempt ? ['postcopy-preempt'] : [])];
  const policy = 'x-postcopy-after-iterations' in userParams || 'x-postcopy-stall-syncs' in userParams;
  return { source: caps, destination: [...caps, 'postcopy-blocktime'], startPostcopy: !policy };
}

/** The postcopy statistics of the destination's final query-migrate (for --json). */
export function destinationPostcopy(q: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const k of DESTINATION_POSTCOPY_FIELDS) if (q[k] !== undefined) out[k] = q[k];
  return out;
}

const ms = (ns: number) => `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 0)} ms`;

/** Summary lines of a postcopy migration: the switch, the postcopy phase, requests, the destination's faults. */
export function postcopySummary(src: QueryMigrateReply, dst: JsonObject): string[] {
  const lines: string[] = [];
  const preempt = src['x-postcopy-preempt-host-pages'];
  lines.push(
    `  postcopy phase ${src['x-postcopy-time'] ?? '?'} ms (switched by ${String(src['x-postcopy-trigger'] ?? 'migrate-start-postcopy')}; ` +
      `downtime ${src.downtime} ms); ${src['x-postcopy-discard-ranges'] ?? 0} discard ranges` +
      (typeof preempt === 'number' && preempt > 0 ? `; ${preempt} requested host pages on the preempt channel` : ''),
  );
  if (typeof src['x-postcopy-recoveries'] === 'number' && src['x-postcopy-recoveries'] > 0) {
    lines.push(`  postcopy recoveries: ${src['x-postcopy-recoveries']}`);
  }
  const faults = dst['x-postcopy-faults'];
  if (typeof faults === 'number') {
    const vcpu = dst['postcopy-vcpu-blocktime'];
    lines.push(
      `  destination (${String(dst['x-postcopy-backend'] ?? '?')}): ${faults} faults, ${String(dst['x-postcopy-requests'] ?? 0)} requests, ` +
        `average fault latency ${ms(Number(dst['postcopy-latency'] ?? 0))}` +
        (typeof dst['postcopy-blocktime'] === 'number'
          ? `, blocktime ${dst['postcopy-blocktime']} ms (all vCPUs blocked at once)` +
            (Array.isArray(vcpu) ? `, per vCPU ${vcpu.join(', ')} ms` : '')
          : ''),
    );
  }
  return lines;
}
