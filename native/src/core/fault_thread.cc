#include "fault_thread.h"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "region.h"
#include "sys_error.h"

namespace e2k {

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

FaultThread::FaultThread(int uffd, FaultSink sink) : uffd_(uffd), sink_(std::move(sink)) {
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) ThrowErrno("eventfd");
  thread_ = std::thread([this] { Run(); });
}

FaultThread::~FaultThread() { Stop(); }

void FaultThread::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  // SAFETY: writes 8 bytes from a local to our own eventfd.
  (void)!write(stop_fd_, &one, sizeof one);
  thread_.join();
  close(stop_fd_);
  stop_fd_ = -1;
}

void FaultThread::Run() {
  std::vector<FaultRecord> batch;
  for (;;) {
    batch.clear();
    if (ReadFaults(uffd_, stop_fd_, -1, 64, &batch) == ReadStatus::kClosed) return;
    if (!batch.empty()) sink_(std::move(batch));
  }
}

ReadStatus ReadFaults(int uffd, int stop_fd, int timeout_ms, size_t max, std::vector<FaultRecord>* out) {
  constexpr size_t kBatch = 64;
  uffd_msg msgs[kBatch];
  pollfd fds[2] = {{uffd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  const nfds_t nfds = stop_fd >= 0 ? 2 : 1;
  for (;;) {
    const int r = poll(fds, nfds, timeout_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ReadStatus::kClosed;
    }
    break;
  }
  if (nfds == 2 && fds[1].revents) return ReadStatus::kClosed;
  if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) return ReadStatus::kClosed;
  if (!(fds[0].revents & POLLIN)) return ReadStatus::kTimeout;
  const size_t want = max < kBatch ? (max == 0 ? 1 : max) : kBatch;
  // SAFETY: reads at most `want` whole uffd_msg records into our stack array of kBatch entries.
  const ssize_t n = read(uffd, msgs, want * sizeof(uffd_msg));
  if (n < 0) return (errno == EAGAIN || errno == EINTR) ? ReadStatus::kTimeout : ReadStatus::kClosed;
  const uint64_t now = MonotonicNs();
  for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); i++) {
    if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
    FaultRecord rec{};
    rec.address = msgs[i].arg.pagefault.address;
    rec.flags = msgs[i].arg.pagefault.flags;
    rec.tid = msgs[i].arg.pagefault.feat.ptid;
    rec.timestamp_ns = now;
    RegionHit hit;
    if (RegionRegistry::Get().Find(rec.address, &hit)) {
      rec.region_id = hit.id;
      rec.page_offset = hit.page_offset;
    }
    out->push_back(rec);
  }
  return ReadStatus::kRead;
}

}  // namespace e2k
