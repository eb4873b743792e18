#include "page_ops.h"

#include <cstring>

namespace e2k {

bool IsZero(const uint8_t* p, uint64_t len) {
  // 64 bytes per step, OR-reduced; the compiler vectorizes the inner loop.
  for (uint64_t off = 0; off < len; off += 256) {
    uint64_t acc = 0;
    const uint64_t end = off + 256 <= len ? off + 256 : len;
    for (uint64_t i = off; i < end; i += 8) {
      uint64_t w;
      // SAFETY: i + 8 <= len; memcpy avoids alignment assumptions.
      std::memcpy(&w, p + i, 8);
      acc |= w;
    }
    if (acc != 0) return false;
  }
  return true;
}

uint64_t ZeroPageBitmap(const uint8_t* base, uint64_t pages, uint64_t page_size, uint32_t* bitmap) {
  std::memset(bitmap, 0, ((pages + 31) / 32) * sizeof(uint32_t));
  uint64_t zero = 0;
  for (uint64_t i = 0; i < pages; i++) {
    // SAFETY: the caller checked that pages * page_size bytes from base are inside a live region.
    if (IsZero(base + i * page_size, page_size)) {
      bitmap[i >> 5] |= 1u << (i & 31);
      zero++;
    }
  }
  return zero;
}

namespace {
constexpr uint32_t kC1 = 0xcc9e2d51u;
constexpr uint32_t kC2 = 0x1b873593u;
inline uint32_t Rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
inline uint32_t Round(uint32_t h, uint32_t k) {
  k *= kC1;
  k = Rotl(k, 15);
  k *= kC2;
  h ^= k;
  h = Rotl(h, 13);
  return h * 5 + 0xe6546b64u;
}
inline uint32_t Fmix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}
}  // namespace

uint64_t PageHash(const uint8_t* p, uint64_t len) {
  uint32_t h1 = 0x243f6a88u;
  uint32_t h2 = 0x85a308d3u;
  const uint64_t whole = len & ~static_cast<uint64_t>(7);
  for (uint64_t i = 0; i < whole; i += 8) {
    uint32_t a, b;
    // SAFETY: i + 8 <= len.
    std::memcpy(&a, p + i, 4);
    std::memcpy(&b, p + i + 4, 4);
    h1 = Round(h1, a);
    h2 = Round(h2, b);
  }
  if (whole < len) {
    uint8_t tail[8] = {0};
    std::memcpy(tail, p + whole, len - whole);
    uint32_t a, b;
    std::memcpy(&a, tail, 4);
    std::memcpy(&b, tail + 4, 4);
    h1 = Round(h1, a);
    h2 = Round(h2, b);
  }
  h1 ^= static_cast<uint32_t>(len);
  h2 ^= static_cast<uint32_t>(len >> 32);
  h1 += h2;
  h2 += h1;
  h1 = Fmix(h1);
  h2 = Fmix(h2);
  h1 += h2;
  h2 += h1;
  return (static_cast<uint64_t>(h2) << 32) | h1;
}

}  // namespace e2k
