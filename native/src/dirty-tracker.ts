import type { RawDirtyTracker } from './addon.js';
import { FLAG_DIRTY, FLAGS, setBits, setFlag, takeBits } from './control.js';
import { fromNative, InvalidArgumentError, NativeError, UnsupportedError } from './errors.js';
import type { GuestMemoryImpl } from './guest-memory.js';
import { nativeAddon } from './loader.js';
import type { DirtyTracker, DirtyTrackerOptions, GuestMemory } from './types.js';
import { checkRange } from './validate.js';

/**
 * Dirty tracking over a whole region. `kernel`: the addon's WP_ASYNC userfaultfd + PAGEMAP_SCAN
 * (writes by any thread, through any view, are seen; collect re-protects in the same page walk).
 * `software`: the memory API's shared dirty bitmap (only writes through the memory API are seen);
 * collect swaps bits out with Atomics.
 */
export function createDirtyTracker(mem: GuestMemory, opts: DirtyTrackerOptions = {}): DirtyTracker {
  const m = asImpl(mem);
  const mode = opts.mode ?? 'auto';
  if (mode !== 'auto' && mode !== 'kernel' && mode !== 'software') {
    throw new InvalidArgumentError('mode', 'auto, kernel or software', mode);
  }
  if (mode === 'software') return new SoftwareDirtyTracker(m);
  if (m.backend !== 'native' || !nativeAddon()) {
    if (mode === 'kernel')
      throw new UnsupportedError('kernel dirty tracking needs the native backend and a native region');
    return new SoftwareDirtyTracker(m);
  }
  if (mode === 'kernel') return new KernelDirtyTracker(m);
  const caps = kernelTrackingWorks();
  return caps ? new KernelDirtyTracker(m) : new SoftwareDirtyTracker(m);
}

let probed: boolean | undefined;
function kernelTrackingWorks(): boolean {
  if (probed === undefined) {
    const p = nativeAddon()?.probe();
    probed = !!p && p.wpAsync && p.pagemapScan;
  }
  return probed;
}

function asImpl(mem: GuestMemory): GuestMemoryImpl {
  if (typeof mem !== 'object' || mem === null || typeof (mem as GuestMemoryImpl).controlViews !== 'function') {
    throw new InvalidArgumentError('mem', 'a GuestMemory from createGuestMemory/attachGuestMemory', mem);
  }
  return mem as GuestMemoryImpl;
}

abstract class BaseTracker implements DirtyTracker {
  abstract readonly mode: 'kernel' | 'software';
  protected on = false;
  protected readonly mem: GuestMemoryImpl;
  constructor(mem: GuestMemoryImpl) {
    this.mem = mem;
  }
  get tracking(): boolean {
    return this.on;
  }
  abstract start(): void;
  abstract stop(): void;
  protected abstract take(offset: number, length: number, out: Uint32Array): void;

  collect(offset = 0, length?: number, out?: Uint32Array): Uint32Array {
    this.mem.checkLive('collect');
    if (!this.on) throw new NativeError('E_NOT_TRACKING', 'collect: dirty tracking is not started');
    const len = length ?? this.mem.size - offset;
    const r = checkRange('collect', offset, len, this.mem.size, this.mem.pageSize);
    const words = Math.ceil(r.length / this.mem.pageSize / 32);
    if (out !== undefined && (!(out instanceof Uint32Array) || out.length < words)) {
      throw new InvalidArgumentError('collect: out', `a Uint32Array of at least ${words} words`, out);
    }
    const bm = out ?? new Uint32Array(words);
    bm.fill(0);
    if (r.length > 0) this.take(r.offset, r.length, bm);
    return bm;
  }
}

class KernelDirtyTracker extends BaseTracker {
  readonly mode = 'kernel' as const;
  private raw: RawDirtyTracker | undefined;

  start(): void {
    this.mem.checkLive('start');
    if (this.raw) this.raw.stop();
    const addon = nativeAddon();
    if (!addon) throw new UnsupportedError('kernel dirty tracking needs the native backend');
    try {
      this.raw = new addon.DirtyTracker(this.mem.handle.id, 0, this.mem.size);
    } catch (err) {
      throw fromNative(err, 'start kernel dirty tracking (UFFD_FEATURE_WP_ASYNC)');
    }
    this.on = true;
  }
  stop(): void {
    this.raw?.stop();
    this.raw = undefined;
    this.on = false;
  }
  protected take(offset: number, length: number, out: Uint32Array): void {
    try {
      (this.raw as RawDirtyTracker).collect(offset, length, out);
    } catch (err) {
      throw fromNative(err, 'collect (PAGEMAP_SCAN)');
    }
  }
}

class SoftwareDirtyTracker extends BaseTracker {
  readonly mode = 'software' as const;

  start(): void {
    this.mem.checkLive('start');
    const { dirty } = this.mem.controlViews();
    setBits(dirty, 0, this.mem.pageCount, false);
    setFlag(this.mem.controlViews().ctl, FLAG_DIRTY, true);
    this.on = true;
  }
  stop(): void {
    if (!this.mem.closed) setFlag(this.mem.controlViews().ctl, FLAG_DIRTY, false);
    this.on = false;
  }
  protected take(offset: number, length: number, out: Uint32Array): void {
    const { dirty, ctl } = this.mem.controlViews();
    if ((Atomics.load(ctl, FLAGS) & FLAG_DIRTY) === 0) {
      throw new NativeError('E_NOT_TRACKING', 'collect: software dirty marking was switched off');
    }
    takeBits(dirty, offset / this.mem.pageSize, length / this.mem.pageSize, out);
  }
}
