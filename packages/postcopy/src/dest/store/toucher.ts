import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type MemoryHandle, NativeError } from '@e2k-migrate/native';
import type { TouchPattern } from './touch-order.js';

export interface ToucherOptions {
  /** Page order (default `random`). */
  pattern?: TouchPattern;
  /** Seed of the random order (default 1). */
  seed?: number;
}

/** What a toucher did. */
export interface ToucherReport {
  /** Its kernel thread id (the "vCPU 0" of blocktime). */
  tid: number;
  /** Pages read. */
  touched: number;
  /** It read every page once (rather than being stopped). */
  complete: boolean;
}

/**
 * A worker thread that reads one byte of every target page of the given regions in a pattern
 * (see `touch-order.ts`) and so faults on pages that have not arrived yet — the stand-in for
 * vCPUs when the guest (a QEMU x86 guest received into a store) does not run here. Read-only:
 * the received RAM is never changed.
 */
export class Toucher {
  private readonly worker: Worker;
  private readonly ctl: Int32Array;
  private readonly exited: Promise<void>;
  private failure: Error | undefined;

  private constructor(handles: readonly MemoryHandle[], opts: ToucherOptions) {
    const control = new SharedArrayBuffer(16);
    this.ctl = new Int32Array(control);
    this.worker = new Worker(toucherWorkerUrl(), {
      workerData: { handles, control, pattern: opts.pattern ?? 'random', seed: opts.seed ?? 1 },
      name: 'postcopy-toucher',
    });
    this.worker.on('error', (err) => {
      this.failure = err;
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Starts the toucher over `handles`; resolves once its thread id is known. */
  static async start(handles: readonly MemoryHandle[], opts: ToucherOptions = {}): Promise<Toucher> {
    const t = new Toucher(handles, opts);
    while (Atomics.load(t.ctl, 1) === 0 && Atomics.load(t.ctl, 3) === 0 && !t.failure) {
      const w = waitAsync(t.ctl, 1, 0, 50);
      if (w.async) await w.value;
    }
    if (t.failure) throw t.failure;
    return t;
  }

  /** Kernel thread id of the worker. */
  get tid(): number {
    return Atomics.load(this.ctl, 1);
  }

  /** Pages read so far. */
  get touched(): number {
    return Atomics.load(this.ctl, 2);
  }

  /**
   * Asks it to stop after its current read and waits for the thread to end. Call it after the
   * pages are all placed (or userfaultfd is unregistered): a read blocked on a missing page
   * returns only then.
   */
  async stop(): Promise<ToucherReport> {
    Atomics.store(this.ctl, 0, 1);
    await this.exited;
    if (this.failure) throw this.failure;
    return { tid: this.tid, touched: this.touched, complete: Atomics.load(this.ctl, 3) === 1 };
  }

  /** Resolves when it has read every page once. */
  async done(): Promise<void> {
    await this.exited;
  }
}

/** `toucher-worker.js` beside this module in `dist/`, or the built copy when running from sources. */
export function toucherWorkerUrl(): URL {
  const here = new URL('./toucher-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../../../dist/dest/store/toucher-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new NativeError(
    'E_INVALID_ARGUMENT',
    `the toucher worker is not built (looked for ${fileURLToPath(built)}); run \`pnpm build\``,
  );
}

/** Atomics.waitAsync (ES2024; present in Node 20, absent from the es2023 lib typings). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      ta: Int32Array,
      index: number,
      value: number,
      timeout: number,
    ): { async: boolean; value: Promise<string> | string };
  }
).waitAsync;
