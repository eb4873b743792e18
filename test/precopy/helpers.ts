/**
 * Shared pieces of the precopy end-to-end suites: each test runs real `e2k-migrate vm`
 * processes (from dist/, built once by the vitest global setup) talking over real sockets.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type VmExit, VmProcess } from '@e2k-migrate/cli';
import type { JsonObject, JsonValue, QmpEvent } from '@e2k-migrate/qmp';

export const root = resolve(import.meta.dirname, '..', '..');

/**
 * The VM processes run the built CLI. test/support/build-setup.ts builds every package once before
 * the run; building again here, from several test processes at once, could hand a starting VM a
 * half-written file. So this only checks that the build is there.
 */
export function buildCli(): void {
  if (!existsSync(join(root, 'packages', 'cli', 'dist', 'main.js'))) {
    throw new Error('packages/cli/dist is missing: run `pnpm build` (the vitest global setup does it)');
  }
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface QueryMigrate {
  status?: string;
  'error-desc'?: string;
  'total-time'?: number;
  'setup-time'?: number;
  downtime?: number;
  'expected-downtime'?: number;
  'cpu-throttle-percentage'?: number;
  ram?: Record<string, number>;
  'xbzrle-cache'?: Record<string, number>;
  'socket-address'?: { type: string; port?: string; path?: string }[];
  [k: string]: unknown;
}

/** Runs VM processes and stops every one of them at the end of the test. */
export class VmSet {
  private readonly vms: VmProcess[] = [];
  private readonly stderr = new Map<string, string>();
  readonly dir: string;
  private readonly cleanupDir: () => void;

  constructor() {
    const t = tempDir('e2k-precopy-');
    this.dir = t.dir;
    this.cleanupDir = t.cleanup;
  }

  async start(name: string, args: string[]): Promise<VmProcess> {
    this.stderr.set(name, '');
    const vm = await VmProcess.start({
      dir: this.dir,
      name,
      args: [...args, '--json'],
      onStderr: (t) => this.stderr.set(name, (this.stderr.get(name) ?? '') + t),
    });
    this.vms.push(vm);
    return vm;
  }

  /** Everything a VM wrote on stderr so far. */
  log(name: string): string {
    return this.stderr.get(name) ?? '';
  }

  /** `quit` + its JSON summary (stdout). */
  async quit(vm: VmProcess): Promise<{ exit: VmExit; summary: JsonObject }> {
    const exit = await vm.quit();
    return { exit, summary: parseSummary(exit.stdout) };
  }

  async close(): Promise<void> {
    await Promise.all(this.vms.map((v) => v.quit(5000)));
    this.cleanupDir();
  }
}

export function parseSummary(stdout: string): JsonObject {
  const text = stdout.trim();
  return text ? (JSON.parse(text) as JsonObject) : {};
}

export const FINAL = ['completed', 'failed', 'cancelled'];

export async function queryMigrate(vm: VmProcess): Promise<QueryMigrate> {
  return (await vm.qmp.execute('query-migrate')) as QueryMigrate;
}

/** Polls query-migrate until `done(q)` (default: a final status). */
export async function waitMigrate(
  vm: VmProcess,
  done: (q: QueryMigrate) => boolean = (q) => FINAL.includes(q.status ?? ''),
  timeoutMs = 60_000,
): Promise<QueryMigrate> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const q = await queryMigrate(vm);
    if (done(q)) return q;
    if (performance.now() > deadline) throw new Error(`${vm.name}: query-migrate still ${JSON.stringify(q)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A destination waiting on `migrate-incoming tcp:127.0.0.1:0`: returns its URI. */
export async function listenTcp(dst: VmProcess): Promise<string> {
  await dst.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
  const q = await queryMigrate(dst);
  const port = q['socket-address']?.find((a) => a.type === 'inet')?.port;
  if (!port) throw new Error(`destination reports no port: ${JSON.stringify(q)}`);
  return `tcp:127.0.0.1:${port}`;
}

export async function setCaps(vm: VmProcess, caps: string[]): Promise<void> {
  await vm.qmp.execute('migrate-set-capabilities', {
    capabilities: caps.map((capability) => ({ capability, state: true })) as unknown as JsonValue,
  });
}

export async function totalSteps(vm: VmProcess): Promise<number> {
  const v = (await vm.qmp.execute('x-query-vcpus')) as { steps: number }[];
  return v.reduce((n, x) => n + x.steps, 0);
}

/** Resolves once the guest has executed at least `steps` bundles. */
export async function waitSteps(vm: VmProcess, steps = 1, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while ((await totalSteps(vm)) < steps) {
    if (performance.now() > deadline) throw new Error(`${vm.name}: the guest did not run ${steps} steps`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The guest runs on `vm`: run state running and its vCPUs step forward. */
/**
 * The VM's run state, and its step count before and after it advanced: polls until the vCPUs have
 * run (a freshly resumed vCPU may take a while to be scheduled on a loaded machine), up to 15 s.
 */
export async function expectRunning(vm: VmProcess): Promise<{ status: string; before: number; after: number }> {
  const status = ((await vm.qmp.execute('query-status')) as { status: string }).status;
  const before = await totalSteps(vm);
  const deadline = performance.now() + 15_000;
  let after = before;
  while (after <= before && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    after = await totalSteps(vm);
  }
  return { status, before, after };
}

export async function checkWorkload(vm: VmProcess): Promise<{ ok: boolean; error?: string; progress?: string[] }> {
  return (await vm.qmp.execute('x-check-workload')) as { ok: boolean; error?: string };
}

export function eventNames(events: readonly QmpEvent[], name: string): string[] {
  return events.filter((e) => e.event === name).map((e) => String((e.data as JsonObject | undefined)?.status ?? ''));
}
