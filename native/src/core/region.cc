#include "region.h"

#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "sys_error.h"

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

namespace e2k {

RegionRegistry& RegionRegistry::Get() {
  static RegionRegistry* registry = new RegionRegistry();  // never destroyed: used at exit
  return *registry;
}

uint32_t RegionRegistry::Create(RegionKind kind, size_t size, const std::string& name) {
  const size_t page = kind == RegionKind::kHugetlb ? kHugePage : kSmallPage;
  if (size == 0 || size % page != 0) ThrowInvalid("region size must be a positive multiple of the page size");
  int fd = -1;
  void* base = MAP_FAILED;
  if (kind == RegionKind::kAnonymous) {
    // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
    base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) ThrowErrno("mmap", "anonymous " + std::to_string(size) + " bytes");
  } else {
    const unsigned flags = MFD_CLOEXEC | (kind == RegionKind::kHugetlb ? MFD_HUGETLB | MFD_HUGE_2MB : 0u);
    fd = memfd_create(name.empty() ? "e2k-guest-ram" : name.c_str(), flags);
    if (fd < 0) ThrowErrno("memfd_create", kind == RegionKind::kHugetlb ? "MFD_HUGETLB|MFD_HUGE_2MB" : "");
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      const int err = errno;
      close(fd);
      errno = err;
      ThrowErrno("ftruncate", std::to_string(size) + " bytes");
    }
    // SAFETY: maps the whole memfd we just sized; MAP_SHARED so discards (PUNCH_HOLE) apply.
    base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
      const int err = errno;
      close(fd);
      errno = err;
      ThrowErrno("mmap", "memfd " + std::to_string(size) + " bytes");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  Region r;
  r.id = next_id_++;
  r.kind = kind;
  r.name = name;
  r.base = static_cast<uint8_t*>(base);
  r.size = size;
  r.page_size = page;
  r.fd = fd;
  regions_.emplace(r.id, r);
  return r.id;
}

Region RegionRegistry::Info(uint32_t id, bool allow_closed) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regions_.find(id);
  if (it == regions_.end()) throw SysError(ENOENT, "region", "no region with id " + std::to_string(id));
  if (it->second.closed && !allow_closed) throw SysError(EBADF, "region", "region " + std::to_string(id) + " is closed");
  return it->second;
}

uint8_t* RegionRegistry::Range(uint32_t id, uint64_t offset, uint64_t length) {
  Region r = Info(id);
  if (offset > r.size || length > r.size - offset) {
    ThrowInvalid("range [" + std::to_string(offset) + ", +" + std::to_string(length) + ") outside region of " +
                 std::to_string(r.size) + " bytes");
  }
  return r.base + offset;
}

void RegionRegistry::Acquire(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regions_.find(id);
  if (it == regions_.end()) throw SysError(ENOENT, "region", "no region with id " + std::to_string(id));
  if (it->second.closed) throw SysError(EBADF, "region", "region " + std::to_string(id) + " is closed");
  it->second.attachments++;
}

void RegionRegistry::Release(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regions_.find(id);
  if (it == regions_.end()) return;
  if (it->second.attachments > 0) it->second.attachments--;
  if (it->second.closed && it->second.attachments == 0) UnmapLocked(it);
}

void RegionRegistry::Close(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regions_.find(id);
  if (it == regions_.end() || it->second.closed) return;
  if (it->second.uffd_ranges > 0) {
    throw SysError(EBUSY, "close", "region " + std::to_string(id) + " has userfaultfd ranges registered");
  }
  it->second.closed = true;
  if (it->second.attachments == 0) UnmapLocked(it);
}

void RegionRegistry::AddUffdRanges(uint32_t id, int delta) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regions_.find(id);
  if (it != regions_.end()) it->second.uffd_ranges += delta;
}

bool RegionRegistry::Find(uint64_t address, RegionHit* hit) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, r] : regions_) {
    const uint64_t base = reinterpret_cast<uint64_t>(r.base);
    if (address >= base && address < base + r.size) {
      hit->id = id;
      hit->page_offset = (address - base) & ~static_cast<uint64_t>(r.page_size - 1);
      return true;
    }
  }
  return false;
}

std::vector<uint32_t> RegionRegistry::Ids() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint32_t> ids;
  for (auto& [id, r] : regions_) ids.push_back(id);
  return ids;
}

void RegionRegistry::UnmapLocked(std::unordered_map<uint32_t, Region>::iterator it) {
  // SAFETY: no thread holds views any more (attachments == 0) and the region is closed, so no
  // JavaScript object can reach this memory.
  munmap(it->second.base, it->second.size);
  if (it->second.fd >= 0) close(it->second.fd);
  regions_.erase(it);
}

}  // namespace e2k
