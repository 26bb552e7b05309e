#include "server/directory/siphash.h"

#include <sys/random.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <random>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/bytes.h"

namespace rcptguard::directory {
namespace {

// One SipRound over the state v[0..3]. Forced inline: the hashes of a batch
// only run side by side if the rounds are in one instruction stream.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void SipRound(uint64_t& v0, uint64_t& v1,
                                                  uint64_t& v2, uint64_t& v3) {
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
  key.k0 = LoadU64Le(sixteen_bytes.data());
  key.k1 = LoadU64Le(sixteen_bytes.data() + 8);
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

namespace {

struct SipState {
  uint64_t v0, v1, v2, v3;

  explicit SipState(const SipKey& key)
      : v0(0x736f6d6570736575ULL ^ key.k0),
        v1(0x646f72616e646f6dULL ^ key.k1),
        v2(0x6c7967656e657261ULL ^ key.k0),
        v3(0x7465646279746573ULL ^ key.k1) {}

  // Two compression rounds over one 8-byte message word.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Compress(uint64_t m) {
    v3 ^= m;
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    v0 ^= m;
  }

  ABSL_ATTRIBUTE_ALWAYS_INLINE void FinalRounds() {
    v2 ^= 0xff;
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
  }

  uint64_t Digest() const { return v0 ^ v1 ^ v2 ^ v3; }
};

// The last block: the remaining 0..7 bytes at `p` (of `len` in all, so
// p + left is the end), little-endian, with the message length (mod 256) in
// the top byte.
inline uint64_t LastBlock(const char* p, size_t len) {
  uint64_t b = static_cast<uint64_t>(len) << 56;
  const size_t left = len & 7;
  if (left == 0) return b;
  if (len >= 8) {
    // The 8 bytes ending at the end, shifted down past the `8 - left` that
    // belong to the last full block: one load instead of a byte loop.
    return b | (LoadU64Le(p + left - 8) >> (8 * (8 - left)));
  }
  for (size_t i = 0; i < left; ++i) {
    b |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return b;
}

}  // namespace

uint64_t SipHash24(const SipKey& key, std::string_view data) {
  SipState s(key);
  const char* p = data.data();
  const char* const end = p + (data.size() & ~size_t{7});
  for (; p != end; p += 8) s.Compress(LoadU64Le(p));
  s.Compress(LastBlock(p, data.size()));
  s.FinalRounds();
  return s.Digest();
}

void SipHash24x2(const SipKey& key, std::string_view a, std::string_view b,
                 uint64_t* out) {
  SipState sa(key);
  SipState sb(key);
  const char* pa = a.data();
  const char* pb = b.data();
  const size_t blocks_a = a.size() / 8;
  const size_t blocks_b = b.size() / 8;
  // The blocks both have, side by side; the two chains of dependent
  // operations are independent, so the CPU runs them in parallel.
  const size_t common = std::min(blocks_a, blocks_b);
  for (size_t i = 0; i < common; ++i, pa += 8, pb += 8) {
    const uint64_t ma = LoadU64Le(pa);
    const uint64_t mb = LoadU64Le(pb);
    sa.Compress(ma);
    sb.Compress(mb);
  }
  for (size_t i = common; i < blocks_a; ++i, pa += 8)
    sa.Compress(LoadU64Le(pa));
  for (size_t i = common; i < blocks_b; ++i, pb += 8)
    sb.Compress(LoadU64Le(pb));
  const uint64_t la = LastBlock(pa, a.size());
  const uint64_t lb = LastBlock(pb, b.size());
  sa.Compress(la);
  sb.Compress(lb);
  sa.FinalRounds();
  sb.FinalRounds();
  out[0] = sa.Digest();
  out[1] = sb.Digest();
}

}  // namespace rcptguard::directory
