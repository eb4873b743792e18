import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createGuestMemoryWith } from '../src/memory.js';
import { createUserfault } from '../src/userfault.js';

/**
 * Helpers for the multi-thread and multi-process tests. Their worker and child scripts are
 * plain .mjs files in test/fixtures that import the BUILT package (native/dist, through the
 * package's self-reference): run `pnpm build` (or `pnpm exec tsc -b native`) first.
 */
export const NATIVE_ROOT = resolve(import.meta.dirname, '..');
export const fixture = (name: string): string => join(NATIVE_ROOT, 'test', 'fixtures', name);

/** Throws a clear error when native/dist is missing or older than the sources. */
export function requireBuiltDist(): void {
  const dist = join(NATIVE_ROOT, 'dist', 'index.js');
  if (!existsSync(dist)) throw new Error(`native/dist is not built: run \`pnpm build\` before these tests (${dist})`);
  const src = statSync(join(NATIVE_ROOT, 'src', 'guest-memory.ts')).mtimeMs;
  if (statSync(join(NATIVE_ROOT, 'dist', 'guest-memory.js')).mtimeMs < src) {
    throw new Error('native/dist is older than native/src: run `pnpm build` before these tests');
  }
}

/**
 * Buffers every message of a worker from now on (a worker's messages can arrive in one batch, so
 * a listener attached after the previous message resolved could miss the next one).
 */
export function inbox(w: Worker): { next<T>(): Promise<T> } {
  const queue: unknown[] = [];
  const waiters: { res: (m: unknown) => void; rej: (e: Error) => void }[] = [];
  let failure: Error | undefined;
  w.on('message', (m) => {
    const waiter = waiters.shift();
    if (waiter) waiter.res(m);
    else queue.push(m);
  });
  const fail = (e: Error): void => {
    failure = e;
    for (const waiter of waiters.splice(0)) waiter.rej(e);
  };
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`worker exited with ${code} before sending the expected message`)));
  return {
    next<T>(): Promise<T> {
      if (queue.length > 0) return Promise.resolve(queue.shift() as T);
      if (failure) return Promise.reject(failure);
      return new Promise<T>((res, rej) => waiters.push({ res: res as (m: unknown) => void, rej }));
    },
  };
}

export function exited(w: Worker): Promise<number> {
  return new Promise((res) => w.once('exit', res));
}

/** Deterministic page contents: xorshift32 bytes seeded by the page number. */
export function pagePattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
    out[i + 1] = (x >>> 8) & 0xff;
    out[i + 2] = (x >>> 16) & 0xff;
    out[i + 3] = x >>> 24;
  }
  return out;
}

export { Worker };

/** Whether a 2 MiB hugetlb region can be created here now (a free huge page, the addon loaded). */
export function canCreateHugetlb(): boolean {
  try {
    createGuestMemoryWith('native', { size: 2 << 20, kind: 'hugetlb' }).close();
    return true;
  } catch {
    return false;
  }
}

/** Whether a userfaultfd can be created here (syscall or /dev/userfaultfd). */
export function canCreateUffd(): boolean {
  try {
    createUserfault({ mode: 'uffd' }).close();
    return true;
  } catch {
    return false;
  }
}
