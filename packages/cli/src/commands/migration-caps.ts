import { Capabilities, type MigrationCapability } from '@e2k-migrate/migration';

/**
 * Parses `--caps a,b` against QEMU 7.2's capability list: an unknown name is a typed
 * E_UNKNOWN_CAPABILITY error listing every valid one; a known capability this command does not
 * implement is E_NOT_SUPPORTED listing the supported ones; conflicting ones are rejected as QEMU does.
 */
export function parseCapsOption(
  text: string | undefined,
  supported: readonly MigrationCapability[],
): MigrationCapability[] {
  const caps = new Capabilities(supported);
  const names = (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  caps.set(names.map((capability) => ({ capability, state: true })));
  return caps.enabled();
}

/** A rate line for progress output. */
export function rateLine(prefix: string, bytes: number, seconds: number, extra = ''): string {
  const mb = bytes / 1e6;
  return `${prefix}: ${mb.toFixed(1)} MB, ${(mb / Math.max(seconds, 1e-3)).toFixed(0)} MB/s${extra}`;
}

/** Calls `fn` at most every `ms` milliseconds (the last call is dropped; print the final line yourself). */
export function throttled<T extends unknown[]>(ms: number, fn: (...args: T) => void): (...args: T) => void {
  let last = 0;
  return (...args: T) => {
    const now = performance.now();
    if (now - last < ms) return;
    last = now;
    fn(...args);
  };
}
