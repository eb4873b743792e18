import { readFileSync } from 'node:fs';
import { isMainThread, Worker } from 'node:worker_threads';
import type { NativeAddon } from './addon.js';

/**
 * Exit hooks. A worker blocked in a userfaultfd fault cannot be terminated (V8 only stops a thread
 * at a JS safepoint, and the thread is asleep in the kernel), so Node hangs joining it on exit.
 * Before Node joins its workers, every exit path unregisters every registered range: the kernel
 * then wakes the blocked threads (their fault resolves to a zero page, harmless because the
 * process is going away) and Node can stop them. The userfaultfd itself is never closed here.
 *
 * - `process.exit()`, a natural exit and an uncaught exception: the `exit` event.
 * - SIGINT / SIGTERM: a listener that, when it is the only one, unregisters and re-raises the
 *   signal with the default action (so the exit status is still "killed by signal"); when the
 *   application has its own listener, that one decides and its `process.exit` hits the exit hook.
 * - `worker.terminate()`: wrapped so that terminating a worker whose thread is asleep in
 *   `handle_userfault` first unregisters the ranges (this ends demand paging in this process: later
 *   copies fail with E_GONE).
 */
let installed = false;

export function installExitHooks(addon: NativeAddon): void {
  if (installed) return;
  installed = true;
  patchWorkerTerminate(addon);
  if (!isMainThread) return;
  process.on('exit', () => {
    addon.unregisterAll();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(sig) > 1) return;
      addon.unregisterAll();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** True when thread `tid` of this process is asleep in a userfaultfd fault. */
export function blockedInUserfault(tid: number): boolean {
  try {
    return readFileSync(`/proc/self/task/${tid}/wchan`, 'utf8').includes('userfault');
  } catch {
    return false;
  }
}

function patchWorkerTerminate(addon: NativeAddon): void {
  const proto = Worker.prototype as Worker & { __e2kTerminate?: true };
  if (proto.__e2kTerminate) return;
  const original = proto.terminate;
  proto.terminate = function terminate(this: Worker): Promise<number> {
    const tid = addon.tidOfThread(this.threadId);
    if (tid > 0 && blockedInUserfault(tid)) addon.unregisterAll();
    return original.call(this);
  };
  Object.defineProperty(proto, '__e2kTerminate', { value: true });
}
