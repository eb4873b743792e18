import { readFileSync } from 'node:fs';
import { needs } from '@e2k-migrate/test-support';
import { beforeAll, describe, expect, it } from 'vitest';
import { backendInfo } from '../src/loader.js';
import { createGuestMemoryWith } from '../src/memory.js';
import type { BackendName } from '../src/types.js';
import { exited, fixture, inbox, requireBuiltDist, Worker } from './support.js';

/**
 * close() in one thread: every thread's memory API throws E_CLOSED at once; the other threads'
 * views are detached on their own thread; the mapping disappears only when the last is detached.
 */
const nativeOk = needs('native', backendInfo().name === 'native', backendInfo().reason);

const mapped = (name: string): boolean => readFileSync('/proc/self/maps', 'utf8').includes(`memfd:${name}`);

beforeAll(() => requireBuiltDist());

for (const backend of ['native', 'fallback'] as BackendName[]) {
  describe.skipIf(backend === 'native' && !nativeOk)(`close across threads: ${backend}`, () => {
    it('throws E_CLOSED in the worker, detaches its views, unmaps after the last detach', async () => {
      const name = `close-test-${process.pid}-${backend}`;
      const mem = createGuestMemoryWith(backend, {
        size: 64 * 4096,
        kind: backend === 'native' ? 'memfd' : 'anonymous',
        name,
      });
      mem.store8(0, 42);
      const w = new Worker(fixture('close-worker.mjs'), { workerData: { handle: mem.handle } });
      const box = inbox(w);
      expect(await box.next()).toBe('ready');
      w.postMessage('probe');
      expect(await box.next()).toEqual({ value: 42, rawBytes: 64 * 4096 });
      mem.close();
      expect(mem.closed).toBe(true);
      w.postMessage('probe');
      const after = await box.next<{ code: string; rawBytes: number }>();
      expect(after.code).toBe('E_CLOSED');
      if (backend === 'native') {
        // the detach runs on the worker's own event loop, soon after the close
        let probe = after;
        for (let i = 0; i < 200 && probe.rawBytes !== 0; i++) {
          await new Promise((r) => setTimeout(r, 5));
          w.postMessage('probe');
          probe = await box.next<{ code: string; rawBytes: number }>();
        }
        expect(probe).toEqual({ code: 'E_CLOSED', rawBytes: 0 });
        expect(mapped(name)).toBe(false);
      } else {
        expect(after.rawBytes).toBe(64 * 4096); // SharedArrayBuffers cannot be detached; the API still refuses
      }
      const done = exited(w);
      w.postMessage('exit');
      await done;
    });

    if (backend === 'native')
      it('keeps the memory mapped while another thread still holds views', async () => {
        const name = `close-hold-${process.pid}`;
        const mem = createGuestMemoryWith('native', { size: 16 * 4096, kind: 'memfd', name });
        const gate = new Int32Array(new SharedArrayBuffer(4));
        const w = new Worker(fixture('hold-worker.mjs'), { workerData: { handle: mem.handle, gate: gate.buffer } });
        const box = inbox(w);
        const done = exited(w);
        expect(await box.next()).toBe('attached');
        mem.close(); // the worker is blocked in Atomics.wait: its detach cannot run yet
        expect(mapped(name)).toBe(true);
        Atomics.store(gate, 0, 1);
        Atomics.notify(gate, 0);
        expect(await box.next()).toEqual({ code: 'E_CLOSED' });
        await done;
        expect(mapped(name)).toBe(false);
      });
  });
}
