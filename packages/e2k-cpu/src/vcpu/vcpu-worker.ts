/**
 * Entry point of a vCPU worker thread (loaded from `dist/`): attaches the guest RAM by its handle
 * (no copy), maps the CPU state and control block, and runs {@link vcpuLoop} until told to exit.
 */
import { workerData } from 'node:worker_threads';
import { attachGuestMemory, gettid } from '@e2k-migrate/native';
import { CpuView } from '../cpu/cpu-view.js';
import { VcpuControl } from './control.js';
import { vcpuLoop } from './vcpu-loop.js';
import type { VcpuWorkerData } from './vcpu-thread.js';

const data = workerData as VcpuWorkerData;
const mem = attachGuestMemory(data.memory);
const control = new VcpuControl(data.control);
control.setTid(gettid());
try {
  vcpuLoop(new CpuView(data.cpu), control, mem, { chunk: data.chunk });
} finally {
  mem.detach();
}
