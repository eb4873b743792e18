// SysError: a failed system call (errno + call name) or an invalid argument caught in the core.
// The binding turns it into a JS error carrying `errno` and `syscall`; the TypeScript layer maps
// errno to the package's typed errors.
#pragma once

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace e2k {

class SysError : public std::runtime_error {
 public:
  SysError(int err, const char* syscall, const std::string& what, int64_t progress = -1)
      : std::runtime_error(what), err_(err), syscall_(syscall), progress_(progress) {}
  int err() const { return err_; }
  const char* syscall() const { return syscall_; }
  // Bytes done before the failure (UFFDIO_COPY / ZEROPAGE), or -1.
  int64_t progress() const { return progress_; }

 private:
  int err_;
  const char* syscall_;
  int64_t progress_;
};

// Throws SysError for the current errno.
[[noreturn]] void ThrowErrno(const char* syscall, const std::string& detail = "");

// Throws SysError(EINVAL) naming the argument problem (a core-level double check of what the
// TypeScript layer already validated).
[[noreturn]] void ThrowInvalid(const std::string& what);

}  // namespace e2k
