// The fault thread of one userfaultfd: it polls the descriptor, reads uffd_msg batches, resolves
// each faulting address to (region id, page offset) and hands the batch to a sink (the binding's
// thread-safe function). A stop eventfd ends it; it never closes the userfaultfd itself.
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

}  // namespace e2k
