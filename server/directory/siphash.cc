#include "server/directory/siphash.h"

#include <sys/random.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rcptguard::directory {
namespace {

inline uint64_t Load64Le(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) {
    v = __builtin_bswap64(v);
  }
  return v;
}

// One SipRound over the state v[0..3].
inline void SipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = std::rotl(v1, 13);
  v1 ^= v0;
  v0 = std::rotl(v0, 32);
  v2 += v3;
  v3 = std::rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = std::rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = std::rotl(v1, 17);
  v1 ^= v2;
  v2 = std::rotl(v2, 32);
}

}  // namespace

absl::StatusOr<SipKey> SipKey::FromBytes(std::string_view sixteen_bytes) {
  if (sixteen_bytes.size() != 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SipHash key must be 16 bytes, got ", sixteen_bytes.size()));
  }
  SipKey key;
  key.k0 = Load64Le(sixteen_bytes.data());
  key.k1 = Load64Le(sixteen_bytes.data() + 8);
  return key;
}

SipKey SipKey::Random() {
  uint64_t words[2] = {0, 0};
  char* p = reinterpret_cast<char*>(words);
  size_t filled = 0;
  while (filled < sizeof(words)) {
    ssize_t n = getrandom(p + filled, sizeof(words) - filled, 0);
    if (n > 0) {
      filled += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // No getrandom (old kernel, seccomp): fall back below.
    }
  }
  if (filled < sizeof(words)) {
    std::random_device rd;
    for (uint64_t& w : words) {
      w = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }
  }
  return SipKey{words[0], words[1]};
}

uint64_t SipKey::Id() const { return SipHash24(*this, "rcptguard key id"); }

uint64_t SipHash24(const SipKey& key, std::string_view data) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ key.k0;
  uint64_t v1 = 0x646f72616e646f6dULL ^ key.k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ key.k0;
  uint64_t v3 = 0x7465646279746573ULL ^ key.k1;

  const char* p = data.data();
  const size_t len = data.size();
  const char* const end = p + (len & ~size_t{7});
  for (; p != end; p += 8) {
    const uint64_t m = Load64Le(p);
    v3 ^= m;
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    v0 ^= m;
  }

  // Last block: the remaining 0..7 bytes, little-endian, with the message
  // length (mod 256) in the top byte.
  uint64_t b = static_cast<uint64_t>(len) << 56;
  const size_t left = len & 7;
  for (size_t i = 0; i < left; ++i) {
    b |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  v3 ^= b;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  v0 ^= b;

  v2 ^= 0xff;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace rcptguard::directory
