import { ClosedError, InvalidArgumentError, OutOfRangeError } from './errors.js';

/** Checks that `v` is a non-negative safe integer. */
export function checkUint(argument: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidArgumentError(argument, 'a non-negative safe integer', v);
  }
  return v;
}

/** Checks `[offset, offset+length)` is inside `size` and aligned to `align` (offset and length). */
export function checkRange(
  what: string,
  offset: unknown,
  length: unknown,
  size: number,
  align: number,
): { offset: number; length: number } {
  const o = checkUint(`${what}: offset`, offset);
  const l = checkUint(`${what}: length`, length);
  if (align > 1 && o % align !== 0) throw new InvalidArgumentError(`${what}: offset`, `a multiple of ${align}`, o);
  if (align > 1 && l % align !== 0) throw new InvalidArgumentError(`${what}: length`, `a multiple of ${align}`, l);
  if (o > size || l > size - o) throw new OutOfRangeError(what, o, l, size);
  return { offset: o, length: l };
}

export function checkBytes(argument: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new InvalidArgumentError(argument, 'a Uint8Array', v);
  return v;
}

export function checkOpen(what: string, closed: boolean): void {
  if (closed) throw new ClosedError(what);
}
