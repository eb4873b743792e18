// A userfaultfd: creation (syscall, then /dev/userfaultfd), the API handshake, range registration
// and the page-installing ioctls. The fault thread lives in fault_thread.h.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace e2k {

enum class UffdSource : int { kSyscall = 0, kDevice = 1 };

struct UffdRange {
  uint32_t region_id;
  uint64_t start;  // host address
  uint64_t length;
};

class Uffd {
 public:
  // Opens a userfaultfd (O_CLOEXEC | O_NONBLOCK) and performs UFFDIO_API with `wanted` features,
  // keeping only those the kernel offers. Throws SysError.
  explicit Uffd(uint64_t wanted);
  ~Uffd();
  Uffd(const Uffd&) = delete;
  Uffd& operator=(const Uffd&) = delete;

  int fd() const { return fd_; }
  UffdSource source() const { return source_; }
  uint64_t features() const { return features_; }

  // UFFDIO_REGISTER of [start, start+length) with MODE_MISSING and/or MODE_WP.
  void Register(uint32_t region_id, uint64_t start, uint64_t length, bool missing, bool wp);
  void Unregister(uint64_t start, uint64_t length);
  // Unregisters every range (exit hooks); returns how many. Never closes the descriptor.
  int UnregisterAll();
  bool HasRanges();
  // UFFDIO_COPY; returns bytes copied; throws SysError (EEXIST, EAGAIN with partial count...).
  int64_t Copy(uint64_t dst, const uint8_t* src, uint64_t length, bool wake);
  int64_t ZeroPage(uint64_t dst, uint64_t length, bool wake);
  void Wake(uint64_t start, uint64_t length);
  void WriteProtect(uint64_t start, uint64_t length, bool protect);

  // Process-wide list of live userfaultfds, for the exit hooks.
  static int UnregisterEverywhere();

 private:
  int fd_ = -1;
  UffdSource source_ = UffdSource::kSyscall;
  uint64_t features_ = 0;
  std::mutex mu_;
  std::vector<UffdRange> ranges_;
};

// Opens a raw userfaultfd for probing (doctor): returns fd or -errno; `source` says how.
int OpenUserfaultfd(int flags, UffdSource* source, int* syscall_errno, int* device_errno);

}  // namespace e2k
