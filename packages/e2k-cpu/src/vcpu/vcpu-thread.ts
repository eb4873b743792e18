import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { MemoryHandle } from '@e2k-migrate/native';
import { E2kError } from '../errors.js';
import { REQ, type VcpuControl } from './control.js';

/** What a vCPU worker receives (all shared or structured-clonable; nothing is copied per step). */
export interface VcpuWorkerData {
  index: number;
  cpu: SharedArrayBuffer;
  control: SharedArrayBuffer;
  memory: MemoryHandle;
  chunk?: number;
}

/**
 * The worker script: `vcpu-worker.js` beside this module when running from `dist/`; when running
 * from sources (tests), the built copy in the package's `dist/` (run `pnpm build` first).
 */
export function vcpuWorkerUrl(): URL {
  const here = new URL('./vcpu-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../../dist/vcpu/vcpu-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new E2kError(
    'E_MACHINE_CONFIG',
    `the vCPU worker script is not built (looked for ${fileURLToPath(here)} and ${fileURLToPath(built)}); run \`pnpm build\``,
  );
}

/** A vCPU running in its own worker thread over the shared RAM, CPU buffer and control block. */
export class VcpuThread {
  readonly index: number;
  private readonly worker: Worker;
  private readonly exited: Promise<number>;
  private error: Error | undefined;

  constructor(data: VcpuWorkerData) {
    this.index = data.index;
    this.worker = new Worker(vcpuWorkerUrl(), { workerData: data, name: `vcpu-${data.index}` });
    this.worker.on('error', (err) => {
      this.error = err;
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
  }

  /** The error the worker died of, if it did. */
  get failure(): Error | undefined {
    return this.error;
  }

  /** Asks the worker to exit after its current chunk and waits for the thread to end. */
  async terminate(ctl: VcpuControl, timeoutMs = 10_000): Promise<void> {
    ctl.request(REQ.EXIT);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    if ((await Promise.race([this.exited, timer])) === 'timeout') await this.worker.terminate();
  }
}
