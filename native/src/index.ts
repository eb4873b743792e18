/**
 * @e2k-migrate/native — guest RAM, userfaultfd demand paging, kernel dirty tracking and page
 * operations; the C++ addon when it is built and loadable, else the TypeScript fallback.
 */

export { createDirtyTracker } from './dirty-tracker.js';
export { type DoctorReport, doctorReport } from './doctor.js';
export {
  AlreadyPlacedError,
  BusyError,
  ClosedError,
  GoneError,
  InvalidArgumentError,
  NativeError,
  NativeLoadError,
  NativeUnavailableError,
  OutOfRangeError,
  RetryError,
  SyscallError,
  UnsupportedError,
} from './errors.js';
export { blockedInUserfault } from './exit-hooks.js';
export { gettid } from './gettid.js';
export {
  HUGE_PAGE_BYTES,
  HugePageError,
  type HugePagePool,
  type HugePageReservation,
  hugePagePool,
  type ReserveOptions,
  reserveHugePages,
} from './hugepages.js';
export { ADDON_PATH, type BackendInfo, backendInfo } from './loader.js';
export {
  attachGuestMemory,
  createGuestMemory,
  createGuestMemoryWith,
  HUGE_PAGE,
  SMALL_PAGE,
  VIEW_BYTES,
} from './memory.js';
export { hashBytes } from './page-hash.js';
export type {
  BackendName,
  DirtyTracker,
  DirtyTrackerOptions,
  FaultEvent,
  GuestMemory,
  InstallOptions,
  MemoryHandle,
  NativeErrorLike,
  RegionKind,
  RegionOptions,
  RegisterOptions,
  Userfault,
  UserfaultOptions,
} from './types.js';
export { createUserfault } from './userfault.js';
export { featureNames, UFFD_FEATURES } from './userfault-native.js';
