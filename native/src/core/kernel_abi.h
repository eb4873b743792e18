// Kernel ABI used by the addon that Debian 12's linux-libc-dev (6.1) lacks: UFFD_FEATURE_WP_ASYNC
// and friends (Linux 6.4+/6.7+) and the PAGEMAP_SCAN ioctl (Linux 6.7+). Values are the kernel's
// uapi ones (include/uapi/linux/userfaultfd.h, include/uapi/linux/fs.h); struct layouts and
// ioctl numbers are pinned with static_asserts so a typo cannot compile.
#pragma once

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>

namespace e2k {

// --- userfaultfd features newer than the 6.1 headers -------------------------------------------
constexpr uint64_t kUffdFeatureWpUnpopulated = 1ULL << 13;
constexpr uint64_t kUffdFeaturePoison = 1ULL << 14;
constexpr uint64_t kUffdFeatureWpAsync = 1ULL << 15;
constexpr uint64_t kUffdFeatureMove = 1ULL << 16;

// /dev/userfaultfd (Linux 6.1+): USERFAULTFD_IOC_NEW returns a new userfaultfd.
constexpr unsigned long kUserfaultfdIocNew = _IO(0xAA, 0x00);
static_assert(kUserfaultfdIocNew == 0xAA00, "USERFAULTFD_IOC_NEW");
#ifdef USERFAULTFD_IOC_NEW
static_assert(kUserfaultfdIocNew == USERFAULTFD_IOC_NEW, "USERFAULTFD_IOC_NEW mismatch");
#endif

// The 6.1 header ioctl numbers we rely on, checked against their encoded values.
static_assert(UFFDIO_API == 0xC018AA3F, "UFFDIO_API");
static_assert(UFFDIO_REGISTER == 0xC020AA00, "UFFDIO_REGISTER");
static_assert(UFFDIO_UNREGISTER == 0x8010AA01, "UFFDIO_UNREGISTER");
static_assert(UFFDIO_WAKE == 0x8010AA02, "UFFDIO_WAKE");
static_assert(UFFDIO_COPY == 0xC028AA03, "UFFDIO_COPY");
static_assert(UFFDIO_ZEROPAGE == 0xC020AA04, "UFFDIO_ZEROPAGE");
static_assert(UFFDIO_WRITEPROTECT == 0xC018AA06, "UFFDIO_WRITEPROTECT");
static_assert(sizeof(uffd_msg) == 32, "struct uffd_msg");
static_assert(sizeof(uffdio_api) == 24, "struct uffdio_api");
static_assert(sizeof(uffdio_register) == 32, "struct uffdio_register");
static_assert(sizeof(uffdio_copy) == 40, "struct uffdio_copy");
static_assert(sizeof(uffdio_zeropage) == 32, "struct uffdio_zeropage");
static_assert(sizeof(uffdio_writeprotect) == 24, "struct uffdio_writeprotect");

// --- PAGEMAP_SCAN (fs/proc/task_mmu.c, Linux 6.7+) ----------------------------------------------
constexpr uint64_t kPageIsWpAllowed = 1ULL << 0;
constexpr uint64_t kPageIsWritten = 1ULL << 1;
constexpr uint64_t kPageIsFile = 1ULL << 2;
constexpr uint64_t kPageIsPresent = 1ULL << 3;
constexpr uint64_t kPageIsSwapped = 1ULL << 4;
constexpr uint64_t kPageIsPfnZero = 1ULL << 5;
constexpr uint64_t kPageIsHuge = 1ULL << 6;

constexpr uint64_t kPmScanWpMatching = 1ULL << 0;
constexpr uint64_t kPmScanCheckWpAsync = 1ULL << 1;

struct PageRegion {
  uint64_t start;
  uint64_t end;  // exclusive
  uint64_t categories;
};

struct PmScanArg {
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};

static_assert(sizeof(PageRegion) == 24, "struct page_region");
static_assert(sizeof(PmScanArg) == 96, "struct pm_scan_arg");
static_assert(offsetof(PmScanArg, walk_end) == 32, "pm_scan_arg.walk_end");
static_assert(offsetof(PmScanArg, return_mask) == 88, "pm_scan_arg.return_mask");

constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
static_assert(kPagemapScan == 0xC0606610, "PAGEMAP_SCAN");
#ifdef PAGEMAP_SCAN
static_assert(kPagemapScan == PAGEMAP_SCAN, "PAGEMAP_SCAN mismatch");
#endif

}  // namespace e2k
