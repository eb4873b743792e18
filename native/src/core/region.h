// Guest RAM regions: mmap'ed memory (anonymous, memfd, hugetlb memfd) in a process-wide registry
// keyed by id, so every thread maps the same memory by id. A region is unmapped only when it was
// closed AND every attachment (one per thread that holds views) was released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace e2k {

enum class RegionKind : int { kAnonymous = 0, kMemfd = 1, kHugetlb = 2 };

constexpr size_t kSmallPage = 4096;
constexpr size_t kHugePage = 2u << 20;

struct Region {
  uint32_t id = 0;
  RegionKind kind = RegionKind::kAnonymous;
  std::string name;
  uint8_t* base = nullptr;
  size_t size = 0;
  size_t page_size = kSmallPage;
  int fd = -1;  // memfd / hugetlb memfd; -1 for anonymous
  bool closed = false;
  int attachments = 0;
  int uffd_ranges = 0;  // ranges registered with a userfaultfd (close refuses while > 0)
};

// Where an address falls: region id, offset rounded down to the region's page.
struct RegionHit {
  uint32_t id = 0;
  uint64_t page_offset = 0;
};

class RegionRegistry {
 public:
  static RegionRegistry& Get();

  // Creates and maps a region; returns its id. size must be a multiple of the page size.
  uint32_t Create(RegionKind kind, size_t size, const std::string& name);
  // A snapshot of a live region (throws ENOENT if unknown, ESHUTDOWN-like EBADF if closed and
  // `allow_closed` is false).
  Region Info(uint32_t id, bool allow_closed = false);
  // Checked pointer to [offset, offset+length) of a live region.
  uint8_t* Range(uint32_t id, uint64_t offset, uint64_t length);
  void Acquire(uint32_t id);
  // Drops one attachment; unmaps when the region is closed and this was the last one.
  void Release(uint32_t id);
  // Marks the region closed (EBUSY while uffd ranges are registered). Unmaps if unattached.
  void Close(uint32_t id);
  void AddUffdRanges(uint32_t id, int delta);
  bool Find(uint64_t address, RegionHit* hit);
  std::vector<uint32_t> Ids();

 private:
  void UnmapLocked(std::unordered_map<uint32_t, Region>::iterator it);
  std::mutex mu_;
  std::unordered_map<uint32_t, Region> regions_;
  uint32_t next_id_ = 1;
};

}  // namespace e2k
