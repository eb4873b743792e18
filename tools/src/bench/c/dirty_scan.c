// Reference for `pnpm bench native`: kernel dirty tracking in plain C. A populated region is
// registered with a UFFD_FEATURE_WP_ASYNC userfaultfd and write-protected; every 16th page is
// written; PAGEMAP_SCAN (PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN) collects
// and re-protects them into a bitmap. The PAGEMAP_SCAN ABI is defined here because Debian 12's
// headers lack it.
// usage: dirty_scan MIB REPS   -> prints one JSON object (collection time per run in ns)
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct page_region { uint64_t start, end, categories; };
struct pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
_Static_assert(sizeof(struct pm_scan_arg) == 96, "pm_scan_arg");
#define PAGEMAP_SCAN_IOCTL _IOWR('f', 16, struct pm_scan_arg)
#define PM_WP_MATCHING (1 << 0)
#define PM_CHECK_WPASYNC (1 << 1)
#define IS_WRITTEN (1 << 1)
#define F_WP_UNPOPULATED (1ULL << 13)
#define F_WP_ASYNC (1ULL << 15)
#define PAGE 4096UL

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  const size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
  const int reps = argc > 2 ? atoi(argv[2]) : 10;
  const size_t len = mib << 20, pages = len / PAGE;
  uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  for (size_t i = 0; i < pages; i++) mem[i * PAGE] = 1;  // populate
  int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (uffd < 0) die("userfaultfd");
  struct uffdio_api api = {.api = UFFD_API, .features = F_WP_ASYNC | F_WP_UNPOPULATED};
  if (ioctl(uffd, UFFDIO_API, &api) != 0) die("UFFDIO_API");
  struct uffdio_register r = {.range = {(uint64_t)mem, len}, .mode = UFFDIO_REGISTER_MODE_WP};
  if (ioctl(uffd, UFFDIO_REGISTER, &r) != 0) die("UFFDIO_REGISTER");
  struct uffdio_writeprotect wp = {.range = {(uint64_t)mem, len}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
  if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0) die("UFFDIO_WRITEPROTECT");
  int pm = open("/proc/self/pagemap", O_RDONLY);
  if (pm < 0) die("open pagemap");
  uint32_t *bitmap = calloc(pages / 32 + 1, 4);
  static struct page_region vec[512];
  uint64_t total = 0, best = ~0ULL;
  size_t dirty = 0;
  for (int rep = 0; rep < reps; rep++) {
    for (size_t i = 0; i < pages; i += 16) mem[i * PAGE + 8] = (uint8_t)rep;
    uint64_t t0 = now_ns();
    memset(bitmap, 0, (pages / 32 + 1) * 4);
    struct pm_scan_arg a = {.size = sizeof a, .flags = PM_WP_MATCHING | PM_CHECK_WPASYNC, .start = (uint64_t)mem,
                            .end = (uint64_t)mem + len, .vec = (uint64_t)vec, .vec_len = 512,
                            .category_mask = IS_WRITTEN, .return_mask = IS_WRITTEN};
    dirty = 0;
    for (;;) {
      int n = ioctl(pm, PAGEMAP_SCAN_IOCTL, &a);
      if (n < 0) die("PAGEMAP_SCAN");
      for (int k = 0; k < n; k++)
        for (uint64_t p = (vec[k].start - (uint64_t)mem) / PAGE; p < (vec[k].end - (uint64_t)mem) / PAGE; p++) {
          bitmap[p >> 5] |= 1u << (p & 31);
          dirty++;
        }
      if (a.walk_end >= a.end) break;
      a.start = a.walk_end;
    }
    uint64_t dt = now_ns() - t0;
    total += dt;
    if (dt < best) best = dt;
  }
  printf("{\"mib\":%zu,\"dirtyPages\":%zu,\"meanNs\":%llu,\"bestNs\":%llu}\n", mib, dirty,
         (unsigned long long)(total / reps), (unsigned long long)best);
  return 0;
}
