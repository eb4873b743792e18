// The fault thread of one userfaultfd: it polls the descriptor, reads uffd_msg batches, resolves
// each faulting address to (region id, page offset) and hands the batch to a sink (the binding's
// thread-safe function). A stop eventfd ends it; it never closes the userfaultfd itself.
// ReadFaults is the same wait-and-read for a JS thread that handles faults synchronously.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace e2k {

struct FaultRecord {
  uint32_t region_id;  // 0 if the address is in no known region
  uint64_t page_offset;
  uint64_t address;
  uint64_t flags;
  uint32_t tid;
  uint64_t timestamp_ns;  // CLOCK_MONOTONIC when read
};

using FaultSink = std::function<void(std::vector<FaultRecord>&&)>;

class FaultThread {
 public:
  FaultThread(int uffd, FaultSink sink);
  ~FaultThread();  // Stop()
  void Stop();

 private:
  void Run();
  int uffd_;
  int stop_fd_;
  FaultSink sink_;
  std::thread thread_;
};

uint64_t MonotonicNs();

enum class ReadStatus : int { kRead = 0, kTimeout = 1, kClosed = 2 };

// One wait-and-read of a userfaultfd, shared by the fault thread and the synchronous `readFaults`:
// polls `uffd` (and `stop_fd` when >= 0) for up to `timeout_ms` (-1: no limit), reads at most
// `max` messages and appends the page faults among them to `out`, stamped when read. kClosed: the
// descriptor is unusable or `stop_fd` fired.
ReadStatus ReadFaults(int uffd, int stop_fd, int timeout_ms, size_t max, std::vector<FaultRecord>* out);

}  // namespace e2k
