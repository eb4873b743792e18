import { nativeAddon, requireAddon } from './loader.js';
import type { Userfault, UserfaultOptions } from './types.js';
import { CooperativeUserfault } from './userfault-cooperative.js';
import { NativeUserfault } from './userfault-native.js';

/**
 * Demand paging for a postcopy destination: a userfaultfd (syscall first, /dev/userfaultfd
 * second) with the addon's fault thread, or, without the addon, the cooperative fallback. The
 * result's `backend` says which (`uffd` or `cooperative`); never pass one off as the other.
 * `mode: 'cooperative'` forces the fallback (e.g. for a fallback region in a native process).
 */
export function createUserfault(opts: UserfaultOptions & { mode?: 'auto' | 'uffd' | 'cooperative' } = {}): Userfault {
  const addon = nativeAddon();
  const mode = opts.mode ?? 'auto';
  if (mode === 'cooperative' || (mode === 'auto' && !addon)) return new CooperativeUserfault(opts.onFaults);
  return new NativeUserfault(addon ?? requireAddon('a userfaultfd (mode: uffd)'), opts.onFaults);
}
