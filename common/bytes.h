// Unaligned loads of fixed-width integers from byte buffers.
//
//   uint64_t word = LoadU64(p);       // native byte order
//   uint64_t block = LoadU64Le(p);    // little-endian, whatever the CPU
//
// memcpy into a local is how C++ spells an unaligned load; compilers turn
// it into one load instruction.
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_COMMON_BYTES_H_
#define RCPTGUARD_COMMON_BYTES_H_

#include <bit>
#include <cstdint>
#include <cstring>

namespace rcptguard {

inline uint32_t LoadU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline uint64_t LoadU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline uint64_t LoadU64Le(const char* p) {
  uint64_t v = LoadU64(p);
  if constexpr (std::endian::native == std::endian::big) {
    v = __builtin_bswap64(v);
  }
  return v;
}

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_BYTES_H_
