/**
 * Public interfaces of `@e2k-migrate/native`. This file is the stable contract that the E2K machine
 * (vCPU workers), the precopy source and the postcopy destination code against; both backends
 * (the C++ addon and the TypeScript fallback) implement it and pass the same contract tests.
 */

/** Which implementation is in use: the N-API addon, or the pure TypeScript fallback. */
export type BackendName = 'native' | 'fallback';

/**
 * What backs a guest RAM region.
 * - `anonymous`: private anonymous `mmap` (4 KiB pages).
 * - `memfd`: a `memfd_create` file mapped `MAP_SHARED` (4 KiB pages; discard punches holes).
 * - `hugetlb`: a hugetlb memfd of 2 MiB pages (needs reserved huge pages).
 * The fallback backs every kind with SharedArrayBuffers and keeps the page size of the kind.
 */
export type RegionKind = 'anonymous' | 'memfd' | 'hugetlb';

/** Options of {@link createGuestMemory}. */
export interface RegionOptions {
  /** Bytes; a positive multiple of the page size (4 KiB, or 2 MiB for `hugetlb`). */
  size: number;
  /** Default `anonymous`. */
  kind?: RegionKind;
  /** A label shown in `/proc/self/maps` for memfd kinds and in errors. */
  name?: string;
}

/**
 * A small structured-clonable description of a region: post it to a worker, which calls
 * `attachGuestMemory(handle)` to map the same memory (by id through the addon, never by copying).
 * `control` is shared (control words, software dirty bitmap, received bitmap, fault request ring).
 */
export interface MemoryHandle {
  readonly backend: BackendName;
  /** Process-wide region id (native: the addon's registry id; fallback: a counter). */
  readonly id: number;
  readonly kind: RegionKind;
  readonly name: string;
  /** Bytes. */
  readonly size: number;
  /** 4096, or 2 MiB for hugetlb. */
  readonly pageSize: number;
  /** Bytes per view (1 GiB): typed arrays stop at 4 GiB on Node 20, so a region is split into views. */
  readonly viewBytes: number;
  readonly control: SharedArrayBuffer;
  /** Fallback only: the guest RAM itself, one SharedArrayBuffer per view. */
  readonly buffers?: readonly SharedArrayBuffer[];
}

/**
 * A guest RAM region as seen from one thread. Every guest load and store goes through it.
 *
 * Addresses are byte offsets inside the region (guest-physical addresses once the machine maps
 * the region). Values are little-endian; 64-bit values are bigints. An access outside the region,
 * or after `close()` in any thread, throws a {@link NativeErrorLike} (`E_OUT_OF_RANGE`, `E_CLOSED`).
 *
 * Runtime modes are shared control words (switched without restarting workers):
 * - software dirty marking: each store sets the page's bit in a shared bitmap (Atomics), used by
 *   the software dirty tracker (kernel tracking needs no marking);
 * - cooperative demand paging: an access to a page whose received bit is clear posts a request
 *   and `Atomics.wait`s until the page is installed (the fallback's postcopy; with userfaultfd the
 *   kernel blocks the thread instead and the mode stays off).
 */
export interface GuestMemory {
  readonly handle: MemoryHandle;
  readonly backend: BackendName;
  readonly kind: RegionKind;
  readonly size: number;
  readonly pageSize: number;
  readonly pageCount: number;
  /** True once `close()` was called in any thread. */
  readonly closed: boolean;

  load8(addr: number): number;
  load16(addr: number): number;
  load32(addr: number): number;
  load64(addr: number): bigint;
  store8(addr: number, value: number): void;
  store16(addr: number, value: number): void;
  store32(addr: number, value: number): void;
  store64(addr: number, value: bigint): void;
  /** Copies `dst.length` bytes at `addr` into `dst` (mode-aware: waits for missing pages). */
  readBytes(addr: number, dst: Uint8Array): void;
  /** Copies `src` to `addr` (mode-aware: marks pages dirty, waits for missing pages). */
  writeBytes(addr: number, src: Uint8Array): void;

  /**
   * A zero-copy view of `count` whole pages from page `page`. Raw: accesses through it bypass the
   * modes (no dirty marking, no cooperative wait). Throws `E_INVALID_ARGUMENT` if the pages span
   * two views (only possible for regions over 1 GiB and ranges crossing a 1 GiB boundary).
   */
  pageView(page: number, count?: number): Uint8Array;
  /** The raw views, in order; view `i` covers bytes `[i*viewBytes, min(size,(i+1)*viewBytes))`. */
  views(): readonly Uint8Array[];

  /**
   * Zero-page detection over `[offset, offset+length)` (whole pages): bit `i` of the result (word
   * `i>>5`, bit `i&31`) is set when page `offset/pageSize + i` is all zero. One call, many pages.
   */
  zeroPages(offset: number, length: number): Uint32Array;
  /** The 64-bit page hash of `[offset, offset+length)` (see {@link hashBytes}); for verification. */
  hash(offset: number, length: number): bigint;

  /** Switches software dirty marking for every thread of this region. */
  setDirtyMarking(on: boolean): void;
  /** Switches cooperative demand paging for every thread of this region. */
  setDemandPaging(on: boolean): void;

  /**
   * Closes the region in every thread: accesses throw `E_CLOSED` at once; each thread's views are
   * detached (in that thread, when its event loop next runs) and the memory is unmapped once all
   * are detached. Throws `E_BUSY` while a userfaultfd range is registered on it. Idempotent.
   */
  close(): void;
  /** Releases this thread's views without closing the region (e.g. before a worker exits). */
  detach(): void;
}

/** Dirty-page tracking over one region; bitmaps use bit `i` = page `offset/pageSize + i`. */
export interface DirtyTracker {
  /** `kernel`: UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN. `software`: the shared bitmap marked by stores. */
  readonly mode: 'kernel' | 'software';
  readonly tracking: boolean;
  /** Starts tracking: every page is clean (write-protected) from now on. */
  start(): void;
  /**
   * Returns the pages written since `start()` or the previous collection of the same pages, and
   * re-protects them atomically (no write is lost between the scan and the re-protection).
   * Default range: the whole region. `out` (cleared first) avoids an allocation.
   */
  collect(offset?: number, length?: number, out?: Uint32Array): Uint32Array;
  /** Stops tracking (unregisters write protection / switches marking off). */
  stop(): void;
}

/** Options of {@link createDirtyTracker}. */
export interface DirtyTrackerOptions {
  /** `auto` (default): kernel when WP_ASYNC and PAGEMAP_SCAN work, else software. */
  mode?: 'auto' | 'kernel' | 'software';
}

/** One missing-page fault, as the fault thread read it. */
export interface FaultEvent {
  /** Region id and byte offset of the faulting address, rounded down to the region's page. */
  readonly regionId: number;
  readonly offset: number;
  /** Host virtual address of the fault (native), or the same offset (fallback). */
  readonly address: number;
  /** UFFD_PAGEFAULT_FLAG_* bits (1 = write, 2 = wp, 4 = minor). */
  readonly flags: number;
  /** Kernel thread id of the faulting thread (UFFD_FEATURE_THREAD_ID, or gettid in the fallback). */
  readonly tid: number;
  /** CLOCK_MONOTONIC nanoseconds when the fault was read. */
  readonly timestampNs: bigint;
}

/** Options of {@link createUserfault}. */
export interface UserfaultOptions {
  /** Called on the creating thread with batches of faults. */
  onFaults?: (events: FaultEvent[]) => void;
}

/** Registration modes. */
export interface RegisterOptions {
  /** Default: the whole region. */
  offset?: number;
  length?: number;
  /** Default true. */
  missing?: boolean;
  /** Default false. */
  wp?: boolean;
}

/** Install options. */
export interface InstallOptions {
  /** Default true. `false` = UFFDIO_COPY_MODE_DONTWAKE: call `wake()` for the range afterwards. */
  wake?: boolean;
}

/**
 * Demand paging for a postcopy destination. Native: a userfaultfd with a fault thread. Fallback:
 * cooperative paging through the memory API's received bitmap (reported as `cooperative`, never
 * as uffd).
 */
export interface Userfault {
  readonly backend: 'uffd' | 'cooperative';
  /** Feature names the kernel granted (e.g. `THREAD_ID`, `MISSING_HUGETLBFS`); empty in the fallback. */
  readonly features: readonly string[];
  /** How the descriptor was obtained: `syscall`, `/dev/userfaultfd`, or `none` (fallback). */
  readonly source: 'syscall' | '/dev/userfaultfd' | 'none';
  register(mem: GuestMemory, opts?: RegisterOptions): void;
  /** Unregisters (default: every range of `mem`); wakes blocked threads, which then see zero pages. */
  unregister(mem: GuestMemory, offset?: number, length?: number): void;
  /** Sets (or clears) the fault handler; faults that arrive while none is set wait for the next one. */
  setFaultHandler(onFaults: ((events: FaultEvent[]) => void) | undefined): void;
  /**
   * Synchronous delivery, for a handler that owns its thread (QEMU's fault-thread model): blocks
   * the calling thread up to `timeoutMs` for faults and returns at most `max` (none on timeout).
   * One hand-off fewer than a fault handler (no wake-up of the event loop). `E_BUSY` while a fault
   * handler is set: two readers would split the faults between them.
   */
  waitFaults(timeoutMs: number, max?: number): FaultEvent[];
  /** UFFDIO_COPY of `src` (whole pages) at `offset`; returns bytes copied. */
  copy(mem: GuestMemory, offset: number, src: Uint8Array, opts?: InstallOptions): number;
  /**
   * Many pages in one call: page `i` of `src` goes to `offsets[i]`; contiguous runs become one
   * UFFDIO_COPY each. Returns bytes copied. With `wake: false`, wake the faulting ranges yourself.
   */
  copyPages(mem: GuestMemory, offsets: ArrayLike<number>, src: Uint8Array, opts?: InstallOptions): number;
  /** UFFDIO_ZEROPAGE (on hugetlb: a copy from a zero huge page). Returns bytes placed. */
  zeroPage(mem: GuestMemory, offset: number, length: number, opts?: InstallOptions): number;
  /** UFFDIO_WAKE of the range. */
  wake(mem: GuestMemory, offset: number, length: number): void;
  /**
   * Drops pages so the next access faults again: MADV_DONTNEED (anonymous), fallocate
   * PUNCH_HOLE (memfd, hugetlb); the fallback zeroes them and clears their received bits.
   */
  discard(mem: GuestMemory, offset: number, length: number): void;
  /** Closes the descriptor; `E_BUSY` while any range is registered (never close mid-migration). */
  close(): void;
}

/** The subset of NativeError a consumer branches on (see errors.ts for the classes). */
export interface NativeErrorLike extends Error {
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;
}
