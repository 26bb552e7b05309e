#include "server/directory/siphash.h"

#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rcptguard::directory {
namespace {

// The reference implementation's vectors (vectors.h, vectors_sip64): key
// 00 01 .. 0f, message i = the i bytes 00 01 .. (i-1), output bytes read as a
// little-endian integer.
constexpr uint64_t kReferenceVectors[64] = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL,
    0x85676696d7fb7e2dULL, 0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL,
    0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL, 0x93f5f5799a932462ULL,
    0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL,
    0xa129ca6149be45e5ULL, 0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL,
    0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL, 0xbed65cf21aa2ee98ULL,
    0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
    0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL,
    0x2f2e6163076bcfadULL, 0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL,
    0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL, 0x7127512f72f27cceULL,
    0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL, 0x15e034d40fa197aeULL,
    0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL,
    0x9abfd8766a33735cULL, 0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL,
    0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL, 0xf935451de4f21df2ULL,
    0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL,
    0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL, 0xee64435a9752fe72ULL,
    0xa192d576b245165aULL, 0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL,
    0x7fa8220ba3b2eceaULL, 0x245731c13ca42499ULL, 0xb78dbfaf3a8d83bdULL,
    0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
    0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL,
    0x958a324ceb064572ULL,
};

std::string ReferenceKeyBytes() {
  std::string key;
  for (int i = 0; i < 16; ++i) key.push_back(static_cast<char>(i));
  return key;
}

TEST(SipHashTest, ReferenceVectors) {
  absl::StatusOr<SipKey> key = SipKey::FromBytes(ReferenceKeyBytes());
  ASSERT_TRUE(key.ok()) << key.status();
  std::string message;
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(SipHash24(*key, message), kReferenceVectors[i])
        << "message length " << i;
    message.push_back(static_cast<char>(i));
  }
}

TEST(SipHashTest, TwoAtOnceMatchesTheReferenceForEveryPairOfLengths) {
  absl::StatusOr<SipKey> key = SipKey::FromBytes(ReferenceKeyBytes());
  ASSERT_TRUE(key.ok()) << key.status();
  std::string message;
  for (int i = 0; i < 64; ++i) message.push_back(static_cast<char>(i));
  const std::string_view m(message);
  for (size_t a = 0; a < 64; ++a) {
    for (size_t b = 0; b < 64; ++b) {
      uint64_t out[2] = {0, 0};
      SipHash24x2(*key, m.substr(0, a), m.substr(0, b), out);
      EXPECT_EQ(out[0], kReferenceVectors[a]) << "lengths " << a << ", " << b;
      EXPECT_EQ(out[1], kReferenceVectors[b]) << "lengths " << a << ", " << b;
    }
  }
}

TEST(SipHashTest, PaperExample) {
  // The worked example of the paper's appendix A: 15-byte message 00..0e.
  SipKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  std::string message;
  for (int i = 0; i < 15; ++i) message.push_back(static_cast<char>(i));
  EXPECT_EQ(SipHash24(key, message), 0xa129ca6149be45e5ULL);
}

TEST(SipHashTest, FromBytesIsLittleEndian) {
  absl::StatusOr<SipKey> key = SipKey::FromBytes(ReferenceKeyBytes());
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->k0, 0x0706050403020100ULL);
  EXPECT_EQ(key->k1, 0x0f0e0d0c0b0a0908ULL);
}

TEST(SipHashTest, FromBytesRejectsWrongLength) {
  for (size_t n : {0, 8, 15, 17, 32}) {
    absl::StatusOr<SipKey> key = SipKey::FromBytes(std::string(n, 'k'));
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(key.status().message(),
              "SipHash key must be 16 bytes, got " + std::to_string(n));
  }
}

TEST(SipHashTest, KeyIdIsHashOfFixedString) {
  SipKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  EXPECT_EQ(key.Id(), SipHash24(key, "rcptguard key id"));
  SipKey other{key.k0 ^ 1, key.k1};
  EXPECT_NE(key.Id(), other.Id());
}

TEST(SipHashTest, RandomKeysDiffer) {
  SipKey a = SipKey::Random();
  SipKey b = SipKey::Random();
  EXPECT_NE(a, b);
  EXPECT_FALSE(a.k0 == 0 && a.k1 == 0);
}

TEST(SipHashTest, KeyMatters) {
  SipKey a{1, 2};
  SipKey b{1, 3};
  EXPECT_NE(SipHash24(a, "user@example.com"), SipHash24(b, "user@example.com"));
}

}  // namespace
}  // namespace rcptguard::directory
