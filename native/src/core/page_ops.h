// Page operations over raw memory: zero-page detection for many pages in one call, and the
// 64-bit page hash (identical to hashBytes() in src/page-hash.ts; the differential test checks it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace e2k {

// Sets bit i of `bitmap` (cleared first; ceil(pages/32) words) when page i of `base` is all zero.
// Returns the number of zero pages.
uint64_t ZeroPageBitmap(const uint8_t* base, uint64_t pages, uint64_t page_size, uint32_t* bitmap);

// True when `len` bytes at `p` are all zero (len a multiple of 64).
bool IsZero(const uint8_t* p, uint64_t len);

// e2k page hash, 64-bit: two MurmurHash3-style 32-bit lanes over little-endian 32-bit words
// (even words to lane 1, odd words to lane 2, input zero-padded to 8 bytes), mixed with the
// length and finalized with fmix32 cross-mixing. Not cryptographic: for verification only.
uint64_t PageHash(const uint8_t* p, uint64_t len);

}  // namespace e2k
