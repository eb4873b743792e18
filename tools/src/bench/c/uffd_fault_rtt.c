// Reference for `pnpm bench native`: the userfaultfd fault round trip in plain C, with the same
// thread hand-off as the addon (the faulting thread sleeps in the kernel; a handler thread polls
// the userfaultfd, reads the fault and installs the page with UFFDIO_COPY, which wakes it).
// Also times UFFDIO_COPY of one 4 KiB page per call vs 64 pages per call (DONTWAKE + WAKE).
// usage: uffd_fault_rtt PAGES   -> prints one JSON object (latencies in nanoseconds)
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static int uffd;
static uint8_t *region;
static uint8_t src[64 * PAGE];
static size_t npages;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void *handler(void *arg) {
  (void)arg;
  for (size_t served = 0; served < npages;) {
    struct pollfd p = {uffd, POLLIN, 0};
    if (poll(&p, 1, -1) < 0) die("poll");
    struct uffd_msg msg;
    if (read(uffd, &msg, sizeof msg) != sizeof msg) continue;
    if (msg.event != UFFD_EVENT_PAGEFAULT) continue;
    struct uffdio_copy c = {.dst = msg.arg.pagefault.address & ~(PAGE - 1), .src = (uint64_t)src, .len = PAGE, .mode = 0};
    if (ioctl(uffd, UFFDIO_COPY, &c) != 0) die("UFFDIO_COPY");
    served++;
  }
  return NULL;
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void reg(size_t len) {
  struct uffdio_register r = {.range = {(uint64_t)region, len}, .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (ioctl(uffd, UFFDIO_REGISTER, &r) != 0) die("UFFDIO_REGISTER");
}

int main(int argc, char **argv) {
  npages = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
  const size_t len = npages * PAGE;
  memset(src, 0x5a, sizeof src);
  uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (uffd < 0) die("userfaultfd");
  struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_THREAD_ID};
  if (ioctl(uffd, UFFDIO_API, &api) != 0) die("UFFDIO_API");
  region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) die("mmap");
  reg(len);

  // 1. fault round trip, as seen by the faulting thread
  pthread_t th;
  pthread_create(&th, NULL, handler, NULL);
  uint64_t *lat = calloc(npages, sizeof *lat);
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < npages; i++) {
    uint64_t t0 = now_ns();
    sink += region[i * PAGE];
    lat[i] = now_ns() - t0;
  }
  pthread_join(th, NULL);
  qsort(lat, npages, sizeof *lat, cmp);
  const uint64_t p50 = lat[npages / 2], p99 = lat[(npages * 99) / 100];

  // 2. UFFDIO_COPY: one page per call vs 64 pages per call with DONTWAKE + one WAKE
  if (madvise(region, len, MADV_DONTNEED) != 0) die("madvise");
  uint64_t t0 = now_ns();
  for (size_t i = 0; i < npages; i++) {
    struct uffdio_copy c = {.dst = (uint64_t)region + i * PAGE, .src = (uint64_t)src, .len = PAGE, .mode = 0};
    if (ioctl(uffd, UFFDIO_COPY, &c) != 0) die("UFFDIO_COPY single");
  }
  const double single = (double)(now_ns() - t0) / npages;
  if (madvise(region, len, MADV_DONTNEED) != 0) die("madvise");
  t0 = now_ns();
  for (size_t i = 0; i + 64 <= npages; i += 64) {
    struct uffdio_copy c = {.dst = (uint64_t)region + i * PAGE, .src = (uint64_t)src, .len = 64 * PAGE, .mode = UFFDIO_COPY_MODE_DONTWAKE};
    if (ioctl(uffd, UFFDIO_COPY, &c) != 0) die("UFFDIO_COPY batch");
    struct uffdio_range w = {(uint64_t)region + i * PAGE, 64 * PAGE};
    if (ioctl(uffd, UFFDIO_WAKE, &w) != 0) die("UFFDIO_WAKE");
  }
  const double batched = (double)(now_ns() - t0) / (double)(npages - npages % 64);
  printf("{\"pages\":%zu,\"rttP50Ns\":%llu,\"rttP99Ns\":%llu,\"copySingleNsPerPage\":%.1f,\"copyBatchedNsPerPage\":%.1f,\"sink\":%u}\n",
         npages, (unsigned long long)p50, (unsigned long long)p99, single, batched, (unsigned)sink);
  return 0;
}
