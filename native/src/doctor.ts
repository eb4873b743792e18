import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { constants as osConstants, release, version } from 'node:os';
import { type BackendInfo, backendInfo, buildStatus, nativeAddon } from './loader.js';
import { featureNames } from './userfault-native.js';

/** What `e2k-migrate doctor` prints: the backend and every kernel capability the project uses. */
export interface DoctorReport {
  backend: BackendInfo & { build?: { ok: boolean; reason: string; at?: string } };
  kernel: { release: string; version: string };
  userfaultfd: {
    /** `ok` or the errno name of the userfaultfd(2) syscall; `unknown` without the addon. */
    syscall: string;
    /** `ok` or the errno name of /dev/userfaultfd + USERFAULTFD_IOC_NEW; `unknown` without the addon. */
    device: string;
    devicePresent: boolean;
    /** vm.unprivileged_userfaultfd (0: only privileged processes may use the syscall). */
    unprivileged: number | null;
    features: string[];
  };
  /** UFFD_FEATURE_WP_ASYNC works (null: unknown without the addon). */
  wpAsync: boolean | null;
  /** The PAGEMAP_SCAN ioctl works (null: unknown without the addon). */
  pagemapScan: boolean | null;
  /** What createDirtyTracker(mode: auto) will use. */
  dirtyTracking: 'kernel' | 'software';
  /** What createUserfault() will use. */
  demandPaging: 'uffd' | 'cooperative';
  hugepages: {
    pageSizeKiB: number | null;
    total: number | null;
    free: number | null;
    reserved: number | null;
    surplus: number | null;
    /** /proc/sys/vm/nr_hugepages. */
    nrHugepages: number | null;
    /** Whether this process may change nr_hugepages (writable). */
    reservable: boolean;
    /** `ok` or the errno name of creating + faulting a 2 MiB hugetlb memfd; `unknown` without the addon. */
    hugetlbMemfd: string;
  };
  hugetlbfs: { mounted: boolean; mountpoints: string[] };
}

function errnoName(n: number): string {
  if (n === 0) return 'ok';
  for (const [name, v] of Object.entries(osConstants.errno)) if (v === n) return name;
  return `errno ${n}`;
}

function readNumber(path: string): number | null {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

function meminfo(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
      const m = /^(\w+):\s+(\d+)/.exec(line);
      if (m) out.set(m[1] as string, Number(m[2]));
    }
  } catch {
    // not Linux
  }
  return out;
}

/** Probes the backend and the kernel (creates and removes a few scratch mappings). */
export function doctorReport(): DoctorReport {
  const info = backendInfo();
  const build = buildStatus();
  const addon = nativeAddon();
  const probe = addon?.probe();
  const mi = meminfo();
  let reservable = false;
  try {
    accessSync('/proc/sys/vm/nr_hugepages', constants.W_OK);
    reservable = true;
  } catch {
    reservable = false;
  }
  const mounts = existsSync('/proc/mounts') ? readFileSync('/proc/mounts', 'utf8').split('\n') : [];
  const hugetlbfs = mounts.filter((l) => l.split(' ')[2] === 'hugetlbfs').map((l) => l.split(' ')[1] as string);
  const kernelDirty = !!probe && probe.wpAsync && probe.pagemapScan;
  return {
    backend: { ...info, ...(build ? { build: { ok: build.ok, reason: build.reason, at: build.at } } : {}) },
    kernel: { release: release(), version: version() },
    userfaultfd: {
      syscall: probe ? errnoName(probe.uffdSyscallErrno) : 'unknown',
      device: probe ? errnoName(probe.uffdDeviceErrno) : 'unknown',
      devicePresent: existsSync('/dev/userfaultfd'),
      unprivileged: readNumber('/proc/sys/vm/unprivileged_userfaultfd'),
      features: probe ? featureNames(probe.uffdFeatures) : [],
    },
    wpAsync: probe ? probe.wpAsync : null,
    pagemapScan: probe ? probe.pagemapScan : null,
    dirtyTracking: kernelDirty ? 'kernel' : 'software',
    demandPaging: probe && (probe.uffdSyscallErrno === 0 || probe.uffdDeviceErrno === 0) ? 'uffd' : 'cooperative',
    hugepages: {
      pageSizeKiB: mi.get('Hugepagesize') ?? null,
      total: mi.get('HugePages_Total') ?? null,
      free: mi.get('HugePages_Free') ?? null,
      reserved: mi.get('HugePages_Rsvd') ?? null,
      surplus: mi.get('HugePages_Surp') ?? null,
      nrHugepages: readNumber('/proc/sys/vm/nr_hugepages'),
      reservable,
      hugetlbMemfd: probe ? errnoName(probe.hugetlbMemfdErrno) : 'unknown',
    },
    hugetlbfs: { mounted: hugetlbfs.length > 0, mountpoints: hugetlbfs },
  };
}
