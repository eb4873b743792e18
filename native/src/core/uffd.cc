#include "uffd.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <string>

#include "kernel_abi.h"
#include "region.h"
#include "sys_error.h"

namespace e2k {

namespace {
std::mutex g_live_mu;
std::set<Uffd*>* g_live = new std::set<Uffd*>();  // never destroyed: read at exit
}  // namespace

int OpenUserfaultfd(int flags, UffdSource* source, int* syscall_errno, int* device_errno) {
  *syscall_errno = 0;
  *device_errno = 0;
  // SAFETY: userfaultfd(2) only takes flags; it returns a new descriptor or -1.
  int fd = static_cast<int>(syscall(SYS_userfaultfd, flags));
  if (fd >= 0) {
    *source = UffdSource::kSyscall;
    return fd;
  }
  *syscall_errno = errno;
  const int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0) {
    *device_errno = errno;
    return -*syscall_errno;
  }
  // SAFETY: USERFAULTFD_IOC_NEW takes the new descriptor's flags by value.
  fd = ioctl(dev, kUserfaultfdIocNew, flags);
  const int err = errno;
  close(dev);
  if (fd < 0) {
    *device_errno = err;
    return -err;
  }
  *source = UffdSource::kDevice;
  return fd;
}

Uffd::Uffd(uint64_t wanted) {
  int sys_err = 0, dev_err = 0;
  fd_ = OpenUserfaultfd(O_CLOEXEC | O_NONBLOCK, &source_, &sys_err, &dev_err);
  if (fd_ < 0) {
    errno = dev_err ? dev_err : sys_err;
    ThrowErrno("userfaultfd", "syscall: " + std::to_string(sys_err) + ", /dev/userfaultfd: " + std::to_string(dev_err));
  }
  // Ask for nothing first to learn what the kernel offers, on a throwaway descriptor (the API
  // handshake can only be done once per descriptor).
  uint64_t offered = 0;
  {
    UffdSource s;
    int probe = OpenUserfaultfd(O_CLOEXEC, &s, &sys_err, &dev_err);
    if (probe >= 0) {
      uffdio_api api{};
      api.api = UFFD_API;
      // SAFETY: UFFDIO_API reads and writes the uffdio_api struct on our stack.
      if (ioctl(probe, UFFDIO_API, &api) == 0) offered = api.features;
      close(probe);
    }
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = wanted & offered;
  // SAFETY: as above, on our descriptor.
  if (ioctl(fd_, UFFDIO_API, &api) != 0) {
    const int err = errno;
    close(fd_);
    errno = err;
    ThrowErrno("ioctl(UFFDIO_API)");
  }
  // On return the kernel lists every feature it supports; the enabled ones are those we asked for.
  features_ = wanted & offered;
  std::lock_guard<std::mutex> lock(g_live_mu);
  g_live->insert(this);
}

Uffd::~Uffd() {
  {
    std::lock_guard<std::mutex> lock(g_live_mu);
    g_live->erase(this);
  }
  UnregisterAll();
  if (fd_ >= 0) close(fd_);
}

void Uffd::Register(uint32_t region_id, uint64_t start, uint64_t length, bool missing, bool wp) {
  uffdio_register reg{};
  reg.range.start = start;
  reg.range.len = length;
  reg.mode = (missing ? UFFDIO_REGISTER_MODE_MISSING : 0) | (wp ? UFFDIO_REGISTER_MODE_WP : 0);
  // SAFETY: the range lies inside a live region (checked by the caller through the registry).
  if (ioctl(fd_, UFFDIO_REGISTER, &reg) != 0) ThrowErrno("ioctl(UFFDIO_REGISTER)");
  std::lock_guard<std::mutex> lock(mu_);
  ranges_.push_back({region_id, start, length});
  RegionRegistry::Get().AddUffdRanges(region_id, 1);
}

void Uffd::Unregister(uint64_t start, uint64_t length) {
  uffdio_range range{start, length};
  // SAFETY: unregistering only changes the VMA's uffd context; it wakes blocked faults.
  if (ioctl(fd_, UFFDIO_UNREGISTER, &range) != 0) ThrowErrno("ioctl(UFFDIO_UNREGISTER)");
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = ranges_.begin(); it != ranges_.end();) {
    if (it->start >= start && it->start + it->length <= start + length) {
      RegionRegistry::Get().AddUffdRanges(it->region_id, -1);
      it = ranges_.erase(it);
    } else {
      ++it;
    }
  }
}

int Uffd::UnregisterAll() {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& r : ranges_) {
    uffdio_range range{r.start, r.length};
    // SAFETY: as in Unregister; errors are ignored (the range may already be gone).
    if (ioctl(fd_, UFFDIO_UNREGISTER, &range) == 0) n++;
    RegionRegistry::Get().AddUffdRanges(r.region_id, -1);
  }
  ranges_.clear();
  return n;
}

bool Uffd::HasRanges() {
  std::lock_guard<std::mutex> lock(mu_);
  return !ranges_.empty();
}

int64_t Uffd::Copy(uint64_t dst, const uint8_t* src, uint64_t length, bool wake) {
  int64_t done = 0;
  while (static_cast<uint64_t>(done) < length) {
    uffdio_copy c{};
    c.dst = dst + done;
    c.src = reinterpret_cast<uint64_t>(src + done);
    c.len = length - done;
    c.mode = wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE;
    // SAFETY: src points to `length` readable bytes owned by the caller for the whole call; dst
    // is inside a registered range (checked by the caller).
    const int rc = ioctl(fd_, UFFDIO_COPY, &c);
    if (rc == 0) return done + c.copy;
    if (c.copy > 0) done += c.copy;  // partial progress: retry the rest (EAGAIN) or report
    const int err = errno;
    if (err == EAGAIN && c.copy > 0) continue;
    errno = err;
    throw SysError(err, "ioctl(UFFDIO_COPY)", "UFFDIO_COPY failed after " + std::to_string(done) + " bytes: errno " + std::to_string(err), done);
  }
  return done;
}

int64_t Uffd::ZeroPage(uint64_t dst, uint64_t length, bool wake) {
  uffdio_zeropage z{};
  z.range.start = dst;
  z.range.len = length;
  z.mode = wake ? 0 : UFFDIO_ZEROPAGE_MODE_DONTWAKE;
  // SAFETY: dst is inside a registered range (checked by the caller).
  if (ioctl(fd_, UFFDIO_ZEROPAGE, &z) != 0) {
    const int err = errno;
    throw SysError(err, "ioctl(UFFDIO_ZEROPAGE)", "UFFDIO_ZEROPAGE failed: errno " + std::to_string(err),
                   z.zeropage > 0 ? z.zeropage : 0);
  }
  return z.zeropage;
}

void Uffd::Wake(uint64_t start, uint64_t length) {
  uffdio_range range{start, length};
  // SAFETY: waking a range only resumes threads blocked on it.
  if (ioctl(fd_, UFFDIO_WAKE, &range) != 0) ThrowErrno("ioctl(UFFDIO_WAKE)");
}

void Uffd::WriteProtect(uint64_t start, uint64_t length, bool protect) {
  uffdio_writeprotect wp{};
  wp.range.start = start;
  wp.range.len = length;
  wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  // SAFETY: the range is registered in WP mode on this descriptor.
  if (ioctl(fd_, UFFDIO_WRITEPROTECT, &wp) != 0) ThrowErrno("ioctl(UFFDIO_WRITEPROTECT)");
}

int Uffd::UnregisterEverywhere() {
  std::lock_guard<std::mutex> lock(g_live_mu);
  int n = 0;
  for (Uffd* u : *g_live) n += u->UnregisterAll();
  return n;
}

}  // namespace e2k
