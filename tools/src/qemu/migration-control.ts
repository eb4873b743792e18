import type { JsonObject, JsonValue, QmpClient } from '@e2k-migrate/qmp';

/** `query-migrate` as QEMU returns it (the fields the harness reads; the rest is kept). */
export interface QueryMigrate extends Record<string, unknown> {
  status?: string;
  'total-time'?: number;
  'setup-time'?: number;
  downtime?: number;
  'error-desc'?: string;
  ram?: Record<string, number>;
  'socket-address'?: { type: string; host?: string; port?: string; path?: string }[];
}

/** `migrate-set-capabilities` with every listed capability on (or the given states). */
export async function setCapabilities(
  qmp: QmpClient,
  caps: readonly string[] | Record<string, boolean>,
): Promise<void> {
  const list = Array.isArray(caps)
    ? caps.map((capability) => ({ capability, state: true }))
    : Object.entries(caps).map(([capability, state]) => ({ capability, state }));
  if (list.length) await qmp.execute('migrate-set-capabilities', { capabilities: list });
}

/** `migrate-set-parameters` (QEMU names, e.g. `max-bandwidth`, `downtime-limit`, `xbzrle-cache-size`). */
export async function setParameters(qmp: QmpClient, params: JsonObject): Promise<void> {
  await qmp.execute('migrate-set-parameters', params);
}

export async function queryMigrate(qmp: QmpClient): Promise<QueryMigrate> {
  return (await qmp.execute('query-migrate')) as QueryMigrate;
}

export async function queryStatus(qmp: QmpClient): Promise<{ status: string; running: boolean }> {
  return (await qmp.execute('query-status')) as unknown as { status: string; running: boolean };
}

/** `migrate URI` on a source. */
export async function migrate(qmp: QmpClient, uri: string): Promise<void> {
  await qmp.execute('migrate', { uri });
}

/**
 * `migrate-incoming URI` on a `-incoming defer` destination; for `tcp:HOST:0` returns the URI
 * with the port QEMU picked (from query-migrate's socket-address).
 */
export async function migrateIncoming(qmp: QmpClient, uri: string): Promise<string> {
  await qmp.execute('migrate-incoming', { uri });
  const q = await queryMigrate(qmp);
  const a = q['socket-address']?.[0];
  if (a?.type === 'inet' && a.port !== undefined) return `tcp:${a.host ?? '127.0.0.1'}:${a.port}`;
  if (a?.type === 'unix' && a.path !== undefined) return `unix:${a.path}`;
  return uri;
}

export interface WaitOptions {
  /** Statuses that end the wait successfully (default: `completed`). */
  until?: readonly string[];
  timeoutMs?: number;
  /** Poll interval (default 50 ms). */
  intervalMs?: number;
  /** Called with every poll result (e.g. to raise downtime-limit after a few dirty syncs). */
  onPoll?: (q: QueryMigrate) => void | Promise<void>;
}

/**
 * Polls `query-migrate` until the status is one of `until`; `failed`/`cancelled` (or the
 * timeout) throw with QEMU's error description.
 */
export async function waitForMigration(qmp: QmpClient, opts: WaitOptions = {}): Promise<QueryMigrate> {
  const until = opts.until ?? ['completed'];
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    const q = await queryMigrate(qmp);
    await opts.onPoll?.(q);
    if (q.status !== undefined && until.includes(q.status)) return q;
    if (q.status === 'failed' || q.status === 'cancelled') {
      throw new Error(`migration ${q.status}: ${q['error-desc'] ?? JSON.stringify(q)}`);
    }
    if (Date.now() > deadline) throw new Error(`migration not ${until.join('/')} in time: ${JSON.stringify(q)}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/**
 * The fixtures' pacing for a guest that dirties everything every pass: max-bandwidth 64 MiB/s and
 * downtime-limit 1 ms (the migration cannot converge) until `syncs` dirty-bitmap syncs happened,
 * then downtime-limit 60 s so that it completes.
 */
export function paceUntilSyncs(qmp: QmpClient, syncs: number): (q: QueryMigrate) => Promise<void> {
  let raised = false;
  return async (q) => {
    if (raised || (q.ram?.['dirty-sync-count'] ?? 0) < syncs) return;
    raised = true;
    await setParameters(qmp, { 'downtime-limit': 60_000 });
  };
}

/** Waits until `probe` returns a value (not undefined), polling every `intervalMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export type { JsonValue };
