#include "sys_error.h"

#include <cstring>

namespace e2k {

void ThrowErrno(const char* syscall, const std::string& detail) {
  const int err = errno;
  std::string msg = std::string(syscall) + " failed: " + std::strerror(err);
  if (!detail.empty()) msg += " (" + detail + ")";
  throw SysError(err, syscall, msg);
}

void ThrowInvalid(const std::string& what) { throw SysError(EINVAL, "argument", what); }

}  // namespace e2k
