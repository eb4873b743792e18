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
  constexpr int kBatch = 64;
  uffd_msg msgs[kBatch];
  for (;;) {
    pollfd fds[2] = {{uffd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    // SAFETY: reads whole uffd_msg records into our stack array of kBatch entries.
    const ssize_t n = read(uffd_, msgs, sizeof msgs);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return;
    }
    const uint64_t now = MonotonicNs();
    std::vector<FaultRecord> batch;
    batch.reserve(static_cast<size_t>(n) / sizeof(uffd_msg));
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
      batch.push_back(rec);
    }
    if (!batch.empty()) sink_(std::move(batch));
  }
}

}  // namespace e2k
