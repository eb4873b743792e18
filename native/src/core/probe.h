// Capability probes for `e2k-migrate doctor`: how a userfaultfd can be opened, which features the
// kernel offers, and whether WP_ASYNC + PAGEMAP_SCAN and hugetlb memfds work here.
#pragma once

#include <cstdint>

namespace e2k {

struct ProbeResult {
  int uffd_syscall_errno;   // 0 = the userfaultfd syscall works
  int uffd_device_errno;    // 0 = /dev/userfaultfd + USERFAULTFD_IOC_NEW works
  uint64_t uffd_features;   // UFFDIO_API features offered (0 if no descriptor)
  uint64_t uffd_ioctls;     // UFFDIO_API ioctls bitmask
  bool wp_async;            // UFFD_FEATURE_WP_ASYNC registered and protected a range
  bool pagemap_scan;        // PAGEMAP_SCAN found exactly the written page
  int dirty_errno;          // errno of the failing dirty-tracking step, 0 if both work
  int hugetlb_memfd_errno;  // 0 = a 2 MiB hugetlb memfd could be created, sized and faulted
};

ProbeResult Probe();

// gettid(2) of the calling thread.
uint32_t ThreadId();

}  // namespace e2k
