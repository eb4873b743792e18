/** The raw surface of build/Release/e2k_native.node (src/binding.cc). Only loader users see it. */
export interface RawUffd {
  features(): number;
  source(): 'syscall' | '/dev/userfaultfd';
  register(id: number, offset: number, length: number, missing: boolean, wp: boolean): void;
  unregister(id: number, offset: number, length: number): void;
  startFaultThread(cb: (events: RawFault[]) => void): void;
  /** Fault i fills out[6i..6i+5] = regionId, offset, address, flags, tid, timestampNs; returns the count. */
  readFaults(timeoutMs: number, out: Float64Array): number;
  copy(id: number, offset: number, src: Uint8Array, wake: boolean): number;
  copyPages(id: number, offsets: Float64Array, src: Uint8Array, pageSize: number, wake: boolean): [number, number];
  zeroPage(id: number, offset: number, length: number, wake: boolean, hugetlb: boolean): number;
  wake(id: number, offset: number, length: number): void;
  close(): void;
}

export interface RawFault {
  regionId: number;
  offset: number;
  address: number;
  flags: number;
  tid: number;
  timestampNs: bigint;
}

export interface RawDirtyTracker {
  collect(offset: number, length: number, out: Uint32Array): number;
  stop(): void;
}

export interface RawProbe {
  uffdSyscallErrno: number;
  uffdDeviceErrno: number;
  uffdFeatures: number;
  uffdIoctls: number;
  wpAsync: boolean;
  pagemapScan: boolean;
  dirtyErrno: number;
  hugetlbMemfdErrno: number;
}

export interface NativeAddon {
  abiVersion: number;
  viewBytes: number;
  /** kind: 0 anonymous, 1 memfd, 2 hugetlb. */
  createRegion(kind: number, size: number, name: string): number;
  attach(id: number): ArrayBuffer[];
  detach(id: number): void;
  closeRegion(id: number): void;
  regionBase(id: number): number;
  discard(id: number, offset: number, length: number): void;
  zeroBitmap(id: number, offset: number, length: number, out: Uint32Array): number;
  hashRange(id: number, offset: number, length: number): bigint;
  hashBytes(bytes: Uint8Array): bigint;
  gettid(): number;
  recordThread(threadId: number): void;
  tidOfThread(threadId: number): number;
  unregisterAll(): number;
  probe(): RawProbe;
  Uffd: new (features: number) => RawUffd;
  DirtyTracker: new (id: number, offset: number, length: number) => RawDirtyTracker;
}

/** The binding's contract version; must equal kAbiVersion in binding.cc. */
export const ADDON_ABI_VERSION = 4;
