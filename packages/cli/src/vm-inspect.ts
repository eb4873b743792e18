import { createHash } from 'node:crypto';
import { checkWorkloadInvariant, E2kError, type E2kMachine, type WorkloadConfig } from '@e2k-migrate/e2k-cpu';
import type { JsonValue, QmpServer } from '@e2k-migrate/qmp';

/** sha256 of all of guest RAM (hex). */
export function ramSha256(m: E2kMachine): string {
  const h = createHash('sha256');
  for (const v of m.ram.views()) h.update(v);
  return h.digest('hex');
}

/** The workload invariant over a RAM image taken with the vCPUs parked for the copy. */
export async function checkWorkload(
  m: E2kMachine,
  workload: WorkloadConfig,
): Promise<{ ok: boolean; progress?: string[]; error?: string }> {
  if (m.ram.size > 2 ** 30) return { ok: false, error: 'RAM over 1 GiB: not checked' };
  const image = new Uint8Array(m.ram.size);
  await m.withVcpusStopped(() => m.ram.readBytes(0, image));
  try {
    const r = checkWorkloadInvariant(image, m.vcpuCount, workload);
    return { ok: true, progress: r.map((x) => x.progress.toString()) };
  } catch (e) {
    if (!(e instanceof E2kError)) throw e;
    return { ok: false, error: e.message };
  }
}

/**
 * Verification commands of the VM monitor (e2k-migrate extensions, `x-` prefixed as QEMU does):
 * `x-query-ram-hash` → `{sha256, size}` (vCPUs parked for the hash) and `x-check-workload` →
 * `{ok, progress[], error?}`: the guest workload's invariant checked on a RAM snapshot.
 */
export function registerInspectCommands(m: E2kMachine, server: QmpServer, workload: WorkloadConfig): void {
  server.commands.register('x-query-ram-hash', async () => {
    const sha256 = await m.withVcpusStopped(() => ramSha256(m));
    return { sha256, size: m.ram.size };
  });
  server.commands.register('x-check-workload', async () => (await checkWorkload(m, workload)) as JsonValue);
}
