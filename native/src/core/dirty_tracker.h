// Kernel dirty tracking of one region range: a userfaultfd with UFFD_FEATURE_WP_ASYNC (writes
// resolve in the kernel, no messages) plus the PAGEMAP_SCAN ioctl on /proc/self/pagemap, whose
// PM_SCAN_WP_MATCHING returns the written pages and write-protects them again in the same walk.
#pragma once

#include <cstdint>
#include <memory>

#include "uffd.h"

namespace e2k {

class DirtyTracker {
 public:
  // Registers [start, start+length) in WP mode and write-protects it (every page clean).
  DirtyTracker(uint32_t region_id, uint64_t start, uint64_t length, uint64_t page_size);
  ~DirtyTracker();
  // Scans [start, start+length) (inside the tracked range, whole pages): sets bit i of `bitmap`
  // (32-bit words, `words` of them, cleared first) for written page i and re-protects it.
  // Returns the number of dirty pages.
  uint64_t Collect(uint64_t start, uint64_t length, uint32_t* bitmap, uint64_t words);
  void Stop();

  // Whether this kernel supports the pair (for doctor): 0, or the errno of the failing step.
  static int Probe(bool* wp_async, bool* pagemap_scan);

 private:
  uint32_t region_id_;
  uint64_t start_;
  uint64_t length_;
  uint64_t page_size_;
  std::unique_ptr<Uffd> uffd_;
};

// The shared /proc/self/pagemap descriptor (opened once).
int PagemapFd();

}  // namespace e2k
