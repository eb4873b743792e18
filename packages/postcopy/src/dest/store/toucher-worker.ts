// The toucher worker: reads one byte of every target page of the given regions in a pattern,
// faulting on pages that have not arrived (userfaultfd blocks this thread; the cooperative
// fallback waits on Atomics). Stands in for the vCPUs of a guest that has none here (a QEMU
// guest received into a store). Control words (Int32Array over `control`):
//   [0] stop request, [1] kernel thread id, [2] pages touched, [3] 1 = read every page, 2 = stopped.
import { parentPort, workerData } from 'node:worker_threads';
import { attachGuestMemory, gettid, type MemoryHandle } from '@e2k-migrate/native';
import { touchOrder } from './touch-order.js';

const data = workerData as { handles: MemoryHandle[]; control: SharedArrayBuffer; pattern: string; seed: number };
const ctl = new Int32Array(data.control);
Atomics.store(ctl, 1, gettid());
Atomics.notify(ctl, 1);
const regions = data.handles.map((h) => attachGuestMemory(h));
let sum = 0;
let stopped = false;
outer: for (const mem of regions) {
  for (const page of touchOrder(mem.size / 4096, data.pattern, data.seed)) {
    if (Atomics.load(ctl, 0) !== 0) {
      stopped = true;
      break outer;
    }
    sum = (sum + mem.load8(page * 4096)) | 0;
    Atomics.add(ctl, 2, 1);
  }
}
for (const m of regions) m.detach();
Atomics.store(ctl, 3, stopped ? 2 : 1);
parentPort?.postMessage({ sum });
