/**
 * Worker of `pnpm bench native`'s fault round trip: touches `pages` missing pages one by one and
 * times each touch (fault → fault thread → JS handler → install → resume) with hrtime.
 * workerData: { handle, pages }. Posts a Float64Array of nanoseconds.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { attachGuestMemory, type MemoryHandle } from '@e2k-migrate/native';

const { handle, pages } = workerData as { handle: MemoryHandle; pages: number };
const mem = attachGuestMemory(handle);
const lat = new Float64Array(pages);
let sink = 0;
// performance.now(): sub-microsecond doubles without a BigInt allocation per sample.
for (let i = 0; i < pages; i++) {
  const t0 = performance.now();
  sink += mem.load8(i * mem.pageSize);
  lat[i] = (performance.now() - t0) * 1e6;
}
mem.detach();
parentPort?.postMessage({ lat, sink });
