import { InvalidArgumentError, OutOfRangeError } from './errors.js';
import type { GuestMemoryImpl } from './guest-memory.js';
import type { GuestMemory } from './types.js';
import { checkBytes, checkRange } from './validate.js';

/** Shared argument checks of both userfault backends (all before any system call). */
export function memImpl(mem: GuestMemory, what: string): GuestMemoryImpl {
  if (typeof mem !== 'object' || mem === null || typeof (mem as GuestMemoryImpl).controlViews !== 'function') {
    throw new InvalidArgumentError(`${what}: mem`, 'a GuestMemory', mem);
  }
  return mem as GuestMemoryImpl;
}

/** A page-aligned range of the region; defaults to the whole region. */
export function resolveRange(
  m: GuestMemoryImpl,
  what: string,
  offset: number | undefined,
  length: number | undefined,
): { offset: number; length: number } {
  const o = offset ?? 0;
  const l = length ?? m.size - (typeof o === 'number' ? o : 0);
  const r = checkRange(what, o, l, m.size, m.pageSize);
  if (r.length === 0) throw new InvalidArgumentError(`${what}: length`, 'at least one page', 0);
  return r;
}

export function checkInstall(m: GuestMemoryImpl, what: string, offset: number, src: Uint8Array): void {
  checkBytes(`${what}: src`, src);
  resolveRange(m, what, offset, src.length);
}

/** Validates offsets (page-aligned, in range) and the source length; returns them as Float64Array. */
export function checkPages(
  m: GuestMemoryImpl,
  what: string,
  offsets: ArrayLike<number>,
  src: Uint8Array,
): Float64Array {
  checkBytes(`${what}: src`, src);
  if (typeof offsets !== 'object' || offsets === null || typeof offsets.length !== 'number') {
    throw new InvalidArgumentError(`${what}: offsets`, 'an array of page offsets', offsets);
  }
  const n = offsets.length;
  if (src.length < n * m.pageSize) {
    throw new InvalidArgumentError(
      `${what}: src`,
      `at least ${n} pages (${n * m.pageSize} bytes)`,
      `${src.length} bytes`,
    );
  }
  const out = new Float64Array(n);
  const ps = m.pageSize;
  for (let i = 0; i < n; i++) {
    const o = offsets[i];
    // inline checks: this runs once per page of every batch
    if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0 || o % ps !== 0) {
      throw new InvalidArgumentError(`${what}: offsets[${i}]`, `a non-negative multiple of ${ps}`, o);
    }
    if (o + ps > m.size) throw new OutOfRangeError(`${what}: offsets[${i}]`, o, ps, m.size);
    out[i] = o;
  }
  return out;
}

/** `waitFaults` arguments: a timeout in [0, 60 s] and a batch of 1..4096 faults. */
export function checkWait(timeoutMs: number, max: number): void {
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 60_000) {
    throw new InvalidArgumentError('waitFaults: timeoutMs', 'an integer in [0, 60000]', timeoutMs);
  }
  if (!Number.isInteger(max) || max < 1 || max > 4096) {
    throw new InvalidArgumentError('waitFaults: max', 'an integer in [1, 4096]', max);
  }
}
