import type { NativeAddon, RawFault, RawUffd } from './addon.js';
import { BusyError, fromNative, InvalidArgumentError } from './errors.js';
import type { GuestMemoryImpl } from './guest-memory.js';
import { requireAddon } from './loader.js';
import type { FaultEvent, GuestMemory, InstallOptions, RegisterOptions, Userfault } from './types.js';
import { checkInstall, checkPages, checkWait, memImpl, resolveRange } from './userfault-args.js';

/** UFFD_FEATURE_* names, for reports. */
export const UFFD_FEATURES: Readonly<Record<string, number>> = {
  PAGEFAULT_FLAG_WP: 1 << 0,
  EVENT_FORK: 1 << 1,
  EVENT_REMAP: 1 << 2,
  EVENT_REMOVE: 1 << 3,
  MISSING_HUGETLBFS: 1 << 4,
  MISSING_SHMEM: 1 << 5,
  EVENT_UNMAP: 1 << 6,
  SIGBUS: 1 << 7,
  THREAD_ID: 1 << 8,
  MINOR_HUGETLBFS: 1 << 9,
  MINOR_SHMEM: 1 << 10,
  EXACT_ADDRESS: 1 << 11,
  WP_HUGETLBFS_SHMEM: 1 << 12,
  WP_UNPOPULATED: 1 << 13,
  POISON: 1 << 14,
  WP_ASYNC: 1 << 15,
  MOVE: 1 << 16,
};

export function featureNames(bits: number): string[] {
  return Object.entries(UFFD_FEATURES)
    .filter(([, b]) => (bits & b) !== 0)
    .map(([n]) => n);
}

/** What postcopy asks for: thread ids for blocktime, and MISSING faults on shmem and hugetlbfs. */
const WANTED =
  UFFD_FEATURES.THREAD_ID! |
  UFFD_FEATURES.MISSING_HUGETLBFS! |
  UFFD_FEATURES.MISSING_SHMEM! |
  UFFD_FEATURES.PAGEFAULT_FLAG_WP! |
  UFFD_FEATURES.WP_HUGETLBFS_SHMEM!;

/** A real userfaultfd with a fault thread in the addon. */
export class NativeUserfault implements Userfault {
  readonly backend = 'uffd' as const;
  readonly features: readonly string[];
  readonly source: 'syscall' | '/dev/userfaultfd';
  private readonly raw: RawUffd;
  private handler: ((events: FaultEvent[]) => void) | undefined;
  private closed = false;
  /** The addon's fault thread reads the descriptor from the first handler on. */
  private threaded = false;
  /** `waitFaults`' landing area (6 doubles per fault), reused. */
  private faultSlots = new Float64Array(64 * 6);
  /** Faults the fault thread read while no handler was set. */
  private readonly pending: FaultEvent[] = [];

  constructor(addon: NativeAddon, onFaults?: (events: FaultEvent[]) => void) {
    try {
      this.raw = new addon.Uffd(WANTED);
    } catch (err) {
      throw fromNative(err, 'create userfaultfd');
    }
    this.features = featureNames(this.raw.features());
    this.source = this.raw.source();
    this.setFaultHandler(onFaults);
  }

  setFaultHandler(onFaults: ((events: FaultEvent[]) => void) | undefined): void {
    this.live();
    this.handler = onFaults;
    if (onFaults && !this.threaded) {
      this.raw.startFaultThread((events: RawFault[]) => {
        // Faults read while no handler is set wait for the next one (a vCPU sleeps on each).
        if (this.handler) this.handler(events);
        else this.pending.push(...events);
      });
      this.threaded = true;
    }
    if (onFaults && this.pending.length > 0) {
      const held = this.pending.splice(0);
      queueMicrotask(() => (this.handler ?? ((evs: FaultEvent[]) => this.pending.push(...evs)))(held));
    }
  }

  waitFaults(timeoutMs: number, max = 64): FaultEvent[] {
    this.live();
    checkWait(timeoutMs, max);
    if (this.threaded)
      throw new BusyError('waitFaults: a fault handler was set, and its fault thread reads the faults');
    if (this.faultSlots.length < max * 6) this.faultSlots = new Float64Array(max * 6);
    const slots = this.faultSlots.length === max * 6 ? this.faultSlots : this.faultSlots.subarray(0, max * 6);
    const n = this.call('waitFaults', () => this.raw.readFaults(timeoutMs, slots));
    const events: FaultEvent[] = new Array(n);
    for (let i = 0, o = 0; i < n; i++, o += 6) {
      events[i] = {
        regionId: slots[o] as number,
        offset: slots[o + 1] as number,
        address: slots[o + 2] as number,
        flags: slots[o + 3] as number,
        tid: slots[o + 4] as number,
        timestampNs: BigInt(slots[o + 5] as number),
      };
    }
    return events;
  }

  register(mem: GuestMemory, opts: RegisterOptions = {}): void {
    this.live();
    const m = this.nativeMem(mem, 'register');
    const r = resolveRange(m, 'register', opts.offset, opts.length);
    const missing = opts.missing ?? true;
    const wp = opts.wp ?? false;
    if (!missing && !wp) throw new InvalidArgumentError('register: modes', 'missing and/or wp', 'neither');
    this.call('register', () => this.raw.register(m.handle.id, r.offset, r.length, missing, wp));
  }

  unregister(mem: GuestMemory, offset?: number, length?: number): void {
    this.live();
    const m = this.nativeMem(mem, 'unregister');
    const r = resolveRange(m, 'unregister', offset, length);
    this.call('unregister', () => this.raw.unregister(m.handle.id, r.offset, r.length));
  }

  copy(mem: GuestMemory, offset: number, src: Uint8Array, opts: InstallOptions = {}): number {
    this.live();
    const m = this.nativeMem(mem, 'copy');
    checkInstall(m, 'copy', offset, src);
    try {
      return this.raw.copy(m.handle.id, offset, src, opts.wake ?? true);
    } catch (err) {
      throw fromNative(err, 'copy');
    }
  }

  copyPages(mem: GuestMemory, offsets: ArrayLike<number>, src: Uint8Array, opts: InstallOptions = {}): number {
    this.live();
    const m = this.nativeMem(mem, 'copyPages');
    const offs = checkPages(m, 'copyPages', offsets, src);
    try {
      return this.raw.copyPages(m.handle.id, offs, src, m.pageSize, opts.wake ?? true)[0];
    } catch (err) {
      throw fromNative(err, 'copyPages');
    }
  }

  zeroPage(mem: GuestMemory, offset: number, length: number, opts: InstallOptions = {}): number {
    this.live();
    const m = this.nativeMem(mem, 'zeroPage');
    const r = resolveRange(m, 'zeroPage', offset, length);
    return this.call('zeroPage', () =>
      this.raw.zeroPage(m.handle.id, r.offset, r.length, opts.wake ?? true, m.kind === 'hugetlb'),
    );
  }

  wake(mem: GuestMemory, offset: number, length: number): void {
    this.live();
    const m = this.nativeMem(mem, 'wake');
    const r = resolveRange(m, 'wake', offset, length);
    try {
      this.raw.wake(m.handle.id, r.offset, r.length);
    } catch (err) {
      throw fromNative(err, 'wake');
    }
  }

  discard(mem: GuestMemory, offset: number, length: number): void {
    const m = this.nativeMem(mem, 'discard');
    const r = resolveRange(m, 'discard', offset, length);
    discardNative(m, r.offset, r.length);
  }

  close(): void {
    if (this.closed) return;
    this.call('close', () => this.raw.close());
    this.closed = true;
  }

  private live(): void {
    if (this.closed) throw new InvalidArgumentError('userfault', 'an open userfaultfd', 'closed');
  }

  private nativeMem(mem: GuestMemory, what: string): GuestMemoryImpl {
    const m = memImpl(mem, what);
    if (m.backend !== 'native') throw new InvalidArgumentError(`${what}: mem`, 'a native region', 'a fallback region');
    m.checkLive(what);
    return m;
  }

  private call<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw fromNative(err, what);
    }
  }
}

/** MADV_DONTNEED (anonymous) or fallocate(PUNCH_HOLE) (memfd, hugetlb), through the addon. */
export function discardNative(m: GuestMemoryImpl, offset: number, length: number): void {
  const addon = requireAddon('discard');
  try {
    addon.discard(m.handle.id, offset, length);
  } catch (err) {
    throw fromNative(err, 'discard');
  }
}
