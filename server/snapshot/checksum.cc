// The checksum of snapshot files (Checksum in snapshot_file.h).
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/bytes.h"
#include "server/snapshot/snapshot_file.h"

namespace rcptguard::snapshot {
namespace {

// XXH64 (xxHash specification, "XXH64 algorithm description").

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

inline uint64_t Round(uint64_t acc, uint64_t input) {
  acc += input * kPrime2;
  acc = std::rotl(acc, 31);
  return acc * kPrime1;
}
inline uint64_t MergeRound(uint64_t acc, uint64_t val) {
  acc ^= Round(0, val);
  return acc * kPrime1 + kPrime4;
}

// Consumes whole 32-byte stripes of [p, p + n); returns the bytes used.
inline size_t Stripes(uint64_t lanes[4], const unsigned char* p, size_t n) {
  uint64_t v0 = lanes[0], v1 = lanes[1], v2 = lanes[2], v3 = lanes[3];
  const size_t whole = n / 32 * 32;
  for (size_t i = 0; i < whole; i += 32) {
    v0 = Round(v0, LoadU64(reinterpret_cast<const char*>(p + i)));
    v1 = Round(v1, LoadU64(reinterpret_cast<const char*>(p + i + 8)));
    v2 = Round(v2, LoadU64(reinterpret_cast<const char*>(p + i + 16)));
    v3 = Round(v3, LoadU64(reinterpret_cast<const char*>(p + i + 24)));
  }
  lanes[0] = v0, lanes[1] = v1, lanes[2] = v2, lanes[3] = v3;
  return whole;
}

}  // namespace

Checksum::Checksum()
    : lanes_{kPrime1 + kPrime2, kPrime2, 0, 0 - kPrime1}, buffer_{} {}

void Checksum::Update(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  total_ += size;
  if (buffered_ > 0) {
    const size_t take = std::min(size, sizeof(buffer_) - buffered_);
    std::memcpy(buffer_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    size -= take;
    if (buffered_ < sizeof(buffer_)) return;
    Stripes(lanes_, buffer_, sizeof(buffer_));
    buffered_ = 0;
  }
  const size_t used = Stripes(lanes_, p, size);
  std::memcpy(buffer_, p + used, size - used);
  buffered_ = size - used;
}

uint64_t Checksum::Digest() const {
  uint64_t h;
  if (total_ >= 32) {
    h = std::rotl(lanes_[0], 1) + std::rotl(lanes_[1], 7) +
        std::rotl(lanes_[2], 12) + std::rotl(lanes_[3], 18);
    for (uint64_t lane : lanes_) h = MergeRound(h, lane);
  } else {
    h = kPrime5;  // seed 0
  }
  h += total_;
  const unsigned char* p = buffer_;
  size_t n = buffered_;
  for (; n >= 8; p += 8, n -= 8) {
    h ^= Round(0, LoadU64(reinterpret_cast<const char*>(p)));
    h = std::rotl(h, 27) * kPrime1 + kPrime4;
  }
  if (n >= 4) {
    h ^= uint64_t{LoadU32(reinterpret_cast<const char*>(p))} * kPrime1;
    h = std::rotl(h, 23) * kPrime2 + kPrime3;
    p += 4;
    n -= 4;
  }
  for (; n > 0; ++p, --n) {
    h ^= uint64_t{*p} * kPrime5;
    h = std::rotl(h, 11) * kPrime1;
  }
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

uint64_t ChecksumOf(std::string_view bytes) {
  Checksum sum;
  sum.Update(bytes);
  return sum.Digest();
}

}  // namespace rcptguard::snapshot
