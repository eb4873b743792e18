import { readlinkSync } from 'node:fs';
import { nativeAddon } from './loader.js';

/**
 * The calling thread's kernel thread id (gettid), from any thread. Native: the addon's gettid(2).
 * Fallback: parsed from the `/proc/thread-self` link (`PID/task/TID`); -1 where /proc is missing.
 */
export function gettid(): number {
  const addon = nativeAddon();
  if (addon) return addon.gettid();
  try {
    const link = readlinkSync('/proc/thread-self');
    const tid = Number(link.slice(link.lastIndexOf('/') + 1));
    return Number.isSafeInteger(tid) ? tid : -1;
  } catch {
    return -1;
  }
}
