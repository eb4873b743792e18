#include "probe.h"

#include <fcntl.h>
#include <linux/memfd.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "dirty_tracker.h"
#include "kernel_abi.h"
#include "uffd.h"

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

namespace e2k {

uint32_t ThreadId() { return static_cast<uint32_t>(syscall(SYS_gettid)); }

namespace {
int ProbeHugetlbMemfd() {
  const int fd = memfd_create("e2k-probe", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
  if (fd < 0) return errno;
  int err = 0;
  if (ftruncate(fd, 2 << 20) != 0) {
    err = errno;
  } else {
    // SAFETY: a scratch mapping of our own memfd, unmapped below.
    void* p = mmap(nullptr, 2 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
      err = errno;
    } else {
      munmap(p, 2 << 20);
    }
  }
  close(fd);
  return err;
}
}  // namespace

ProbeResult Probe() {
  ProbeResult r{};
  UffdSource source;
  int fd = OpenUserfaultfd(O_CLOEXEC, &source, &r.uffd_syscall_errno, &r.uffd_device_errno);
  if (fd >= 0) {
    if (source == UffdSource::kSyscall) {
      // Also try the device path for the report.
      int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
      if (dev < 0) {
        r.uffd_device_errno = errno;
      } else {
        // SAFETY: USERFAULTFD_IOC_NEW takes flags by value and returns a descriptor.
        int other = ioctl(dev, kUserfaultfdIocNew, O_CLOEXEC);
        if (other < 0) r.uffd_device_errno = errno;
        else close(other);
        close(dev);
      }
    }
    uffdio_api api{};
    api.api = UFFD_API;
    // SAFETY: UFFDIO_API on our fresh descriptor, struct on our stack.
    if (ioctl(fd, UFFDIO_API, &api) == 0) {
      r.uffd_features = api.features;
      r.uffd_ioctls = api.ioctls;
    }
    close(fd);
  }
  r.dirty_errno = DirtyTracker::Probe(&r.wp_async, &r.pagemap_scan);
  r.hugetlb_memfd_errno = ProbeHugetlbMemfd();
  return r;
}

}  // namespace e2k
