#include "dirty_tracker.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "kernel_abi.h"
#include "sys_error.h"

namespace e2k {

namespace {
constexpr size_t kSmallPageForProbe = 4096;
constexpr uint64_t kTrackFeatures =
    kUffdFeatureWpAsync | kUffdFeatureWpUnpopulated | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
}  // namespace

int PagemapFd() {
  static std::once_flag once;
  static int fd = -1;
  std::call_once(once, [] { fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC); });
  if (fd < 0) ThrowErrno("open(/proc/self/pagemap)");
  return fd;
}

DirtyTracker::DirtyTracker(uint32_t region_id, uint64_t start, uint64_t length, uint64_t page_size)
    : region_id_(region_id), start_(start), length_(length), page_size_(page_size) {
  uffd_ = std::make_unique<Uffd>(kTrackFeatures);
  if (!(uffd_->features() & kUffdFeatureWpAsync)) {
    throw SysError(EOPNOTSUPP, "ioctl(UFFDIO_API)", "the kernel does not offer UFFD_FEATURE_WP_ASYNC");
  }
  uffd_->Register(region_id, start, length, false, true);
  uffd_->WriteProtect(start, length, true);
}

DirtyTracker::~DirtyTracker() { Stop(); }

void DirtyTracker::Stop() {
  if (!uffd_) return;
  uffd_->UnregisterAll();
  uffd_.reset();
}

uint64_t DirtyTracker::Collect(uint64_t start, uint64_t length, uint32_t* bitmap, uint64_t words) {
  if (!uffd_) ThrowInvalid("dirty tracking is stopped");
  if (start < start_ || start + length > start_ + length_) ThrowInvalid("collect range outside the tracked range");
  const uint64_t pages = length / page_size_;
  if (words * 32 < pages) ThrowInvalid("bitmap too small");
  std::memset(bitmap, 0, words * sizeof(uint32_t));
  constexpr size_t kVec = 512;
  PageRegion vec[kVec];
  PmScanArg arg{};
  arg.size = sizeof arg;
  arg.flags = kPmScanWpMatching | kPmScanCheckWpAsync;
  arg.start = start;
  arg.end = start + length;
  arg.vec = reinterpret_cast<uint64_t>(vec);
  arg.vec_len = kVec;
  arg.category_mask = kPageIsWritten;
  arg.return_mask = kPageIsWritten;
  uint64_t dirty = 0;
  const int pm = PagemapFd();
  for (;;) {
    // SAFETY: the kernel writes at most vec_len page_region entries into our stack array and
    // updates arg.walk_end; [start, end) lies in a range registered WP_ASYNC on our uffd.
    const int n = ioctl(pm, kPagemapScan, &arg);
    if (n < 0) ThrowErrno("ioctl(PAGEMAP_SCAN)");
    for (int i = 0; i < n; i++) {
      const uint64_t first = (vec[i].start - start) / page_size_;
      const uint64_t last = (vec[i].end - start + page_size_ - 1) / page_size_;
      for (uint64_t p = first; p < last && p < pages; p++) {
        bitmap[p >> 5] |= 1u << (p & 31);
        dirty++;
      }
    }
    if (arg.walk_end >= arg.end || arg.walk_end == 0) break;
    arg.start = arg.walk_end;
  }
  return dirty;
}

int DirtyTracker::Probe(bool* wp_async, bool* pagemap_scan) {
  *wp_async = false;
  *pagemap_scan = false;
  const size_t len = 4 * kSmallPageForProbe;
  // SAFETY: a private scratch mapping used only by this probe and unmapped below.
  void* mem = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return errno;
  int result = 0;
  try {
    const uint64_t start = reinterpret_cast<uint64_t>(mem);
    DirtyTracker t(0, start, len, kSmallPageForProbe);
    *wp_async = true;
    static_cast<volatile uint8_t*>(mem)[kSmallPageForProbe] = 1;  // dirty page 1
    uint32_t bm[1];
    t.Collect(start, len, bm, 1);
    *pagemap_scan = bm[0] == 2u;
    if (!*pagemap_scan) result = EPROTO;
  } catch (const SysError& e) {
    result = e.err();
  }
  munmap(mem, len);
  return result;
}

}  // namespace e2k
