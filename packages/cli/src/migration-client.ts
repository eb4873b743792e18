import {
  Capabilities,
  coerce,
  MIGRATION_CAPABILITIES,
  parseCapability,
  parseParameterName,
  SUPPORTED_CAPABILITIES,
} from '@e2k-migrate/migration';
import type { JsonObject, JsonValue, QmpClient } from '@e2k-migrate/qmp';
import { parseUri } from '@e2k-migrate/transports';
import { UsageError } from './command.js';

/** `query-migrate` as the client reads it (QEMU 7.2 field names). */
export interface QueryMigrateReply {
  status?: string;
  'total-time'?: number;
  'setup-time'?: number;
  'expected-downtime'?: number;
  downtime?: number;
  'error-desc'?: string;
  'cpu-throttle-percentage'?: number;
  ram?: Record<string, number>;
  'xbzrle-cache'?: Record<string, number>;
  [k: string]: unknown;
}

export const FINAL_STATUSES = ['completed', 'failed', 'cancelled'] as const;

/**
 * Checks `--caps a,b` and `--set name=value` before anything is sent: unknown names are typed
 * errors listing the valid ones (E_UNKNOWN_CAPABILITY / E_UNKNOWN_PARAMETER), capabilities this
 * build lacks are E_NOT_SUPPORTED, values out of range E_BAD_PARAMETER.
 */
export function parseMigrationSettings(
  caps: string | undefined,
  sets: readonly string[],
): { capabilities: { capability: string; state: boolean }[]; parameters: JsonObject } {
  const capabilities: { capability: string; state: boolean }[] = [];
  if (caps !== undefined) {
    const names = caps
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const n of names) capabilities.push({ capability: parseCapability(n), state: true });
    new Capabilities(SUPPORTED_CAPABILITIES).set(capabilities);
  }
  const parameters: JsonObject = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set: "${s}" is not name=value (e.g. --set max-bandwidth=16M)`);
    const name = parseParameterName(s.slice(0, eq));
    parameters[name] = coerce(name, s.slice(eq + 1)) as JsonValue;
  }
  return { capabilities, parameters };
}

/** Validates a migration URI locally (typed E_BAD_URI naming what is wrong). */
export function checkUri(uri: string): void {
  parseUri(uri);
}

/** Applies capabilities and parameters on a VM's monitor. */
export async function applySettings(
  qmp: QmpClient,
  s: { capabilities: { capability: string; state: boolean }[]; parameters: JsonObject },
): Promise<void> {
  if (s.capabilities.length > 0) {
    await qmp.execute('migrate-set-capabilities', { capabilities: s.capabilities as unknown as JsonValue });
  }
  if (Object.keys(s.parameters).length > 0) await qmp.execute('migrate-set-parameters', s.parameters);
}

const MIB = 1024 * 1024;

/** One progress line: status, bar, transferred, remaining, rate, iteration, dirty rate. */
export function formatProgress(q: QueryMigrateReply): string {
  const r = q.ram;
  if (!r) return `${q.status ?? 'none'}`;
  const total = r.total || 1;
  const done = Math.max(0, Math.min(1, 1 - (r.remaining ?? 0) / total));
  const width = 24;
  const filled = Math.round(done * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const parts = [
    `${q.status}`.padEnd(q.status?.startsWith('postcopy') ? 15 : 9),
    bar,
    `sent ${((r.transferred ?? 0) / MIB).toFixed(1)} MiB`,
    `left ${((r.remaining ?? 0) / MIB).toFixed(1)} MiB`,
    `${(r.mbps ?? 0).toFixed(0)} Mbps`,
  ];
  // After the switch the guest runs on the destination: what matters is the pages it asks for.
  if (q.status?.startsWith('postcopy')) parts.push(`requests ${r['postcopy-requests'] ?? 0}`);
  else parts.push(`pass ${r['dirty-sync-count'] ?? 0}`, `dirty ${r['dirty-pages-rate'] ?? 0} pages/s`);
  if (q['cpu-throttle-percentage']) parts.push(`throttle ${q['cpu-throttle-percentage']}%`);
  return parts.join('  ');
}

/** Human summary of a finished migration. */
export function formatResult(q: QueryMigrateReply): string {
  if (q.status !== 'completed') return `migration ${q.status}${q['error-desc'] ? `: ${q['error-desc']}` : ''}\n`;
  const r = q.ram ?? {};
  const x = q['xbzrle-cache'];
  const lines = [
    `migration completed in ${q['total-time']} ms (setup ${q['setup-time']} ms), downtime ${q.downtime} ms`,
    `  ${((r.transferred ?? 0) / MIB).toFixed(1)} MiB transferred of ${((r.total ?? 0) / MIB).toFixed(1)} MiB RAM, ${(r.mbps ?? 0).toFixed(0)} Mbps`,
    `  pages: ${r.normal ?? 0} normal, ${r.duplicate ?? 0} zero; ${r['dirty-sync-count'] ?? 0} dirty syncs (iterations)`,
  ];
  if (x) lines.push(`  xbzrle: ${x.pages} pages, ${x.bytes} bytes, ${x['cache-miss']} misses, ${x.overflow} overflows`);
  if ((r['postcopy-bytes'] ?? 0) > 0) {
    lines.push(
      `  postcopy: ${((r['postcopy-bytes'] ?? 0) / MIB).toFixed(1)} MiB after the switch, ${r['postcopy-requests'] ?? 0} page requests served`,
    );
  }
  if (typeof q['x-guest-pause-ms'] === 'number') lines.push(`  guest-visible pause ${q['x-guest-pause-ms']} ms`);
  return `${lines.join('\n')}\n`;
}

/**
 * Polls `query-migrate` until a final status, drawing progress on `out` (a redrawn line on a
 * terminal, one line a second otherwise). Resolves with the last reply; `deadlineMs` bounds it.
 */
export async function followMigration(
  qmp: QmpClient,
  out: NodeJS.WritableStream & { isTTY?: boolean },
  opts: { intervalMs?: number; deadlineMs?: number; quiet?: boolean } = {},
): Promise<{ last: QueryMigrateReply; timedOut: boolean }> {
  const start = performance.now();
  let lastPrinted = 0;
  let last: QueryMigrateReply = {};
  let lastStatus: string | undefined;
  for (;;) {
    last = (await qmp.execute('query-migrate')) as QueryMigrateReply;
    const final = (FINAL_STATUSES as readonly string[]).includes(last.status ?? '');
    const now = performance.now();
    // a line per second, and one at every status change (setup, active, postcopy-active, …)
    const changed = last.status !== lastStatus;
    lastStatus = last.status;
    if (!opts.quiet && (out.isTTY || now - lastPrinted >= 1000 || final || changed)) {
      out.write(out.isTTY ? `\r${formatProgress(last)}\x1b[K` : `${formatProgress(last)}\n`);
      lastPrinted = now;
    }
    if (final) {
      if (out.isTTY && !opts.quiet) out.write('\n');
      return { last, timedOut: false };
    }
    if (opts.deadlineMs !== undefined && now - start > opts.deadlineMs) return { last, timedOut: true };
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

/** Every capability name, for help texts. */
export const CAPABILITY_HELP = `supported: ${SUPPORTED_CAPABILITIES.join(', ')} (QEMU 7.2 also has: ${MIGRATION_CAPABILITIES.filter((c) => !SUPPORTED_CAPABILITIES.includes(c)).join(', ')})`;
