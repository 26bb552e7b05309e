#include "server/harvest_shared/codec.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/harvest/ip_prefix.h"

namespace rcptguard::harvest_shared {
namespace {

using harvest::SharedKey;

SharedKey Sample() {
  SharedKey k;
  k.key = *harvest::ParseCidr("192.0.2.0/24");
  k.last_seen_ms = 1'700'000'000'123;
  k.buckets = {{100, 1, 2, 3, 4}, {101, 0, 5, 0, 0}};
  k.slots = {{10, 7, 9, 0xfedcba9876543210ULL, 0x80000001u}};
  k.has_boxes = true;
  k.boxes[0] = {1'700'000'600'000, harvest::Action::kReject, "probe-24"};
  return k;
}

std::vector<std::pair<std::string_view, std::string_view>> View(
    const std::vector<std::pair<std::string, std::string>>& in) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  for (const auto& [f, v] : in) out.emplace_back(f, v);
  return out;
}

TEST(CodecTest, DeltaFieldsRoundTrip) {
  const SharedKey k = Sample();
  const auto fields = DeltaFields(k);
  size_t bad = 0;
  const SharedKey back = ParseState(k.key, View(fields), &bad);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(back.last_seen_ms, k.last_seen_ms);
  ASSERT_EQ(back.buckets.size(), 2u);
  EXPECT_EQ(back.buckets[0], k.buckets[0]);
  EXPECT_EQ(back.buckets[1], k.buckets[1]);
  ASSERT_EQ(back.slots.size(), 1u);
  EXPECT_EQ(back.slots[0], k.slots[0]);
  EXPECT_TRUE(back.has_boxes);
  EXPECT_EQ(back.boxes[0], k.boxes[0]);
  EXPECT_EQ(back.boxes[1].until_ms, 0);
}

TEST(CodecTest, ZeroCountsAreLeftOut) {
  SharedKey k;
  k.buckets = {{5, 0, 1, 0, 0}};
  const auto fields = DeltaFields(k);
  ASSERT_EQ(fields.size(), 1u);
  EXPECT_EQ(fields[0].first, "u5");
  EXPECT_EQ(fields[0].second, "1");
}

TEST(CodecTest, MalformedFieldsAreSkippedAndCounted) {
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"u7", "3"}, {"u8", "x"},           {"r1", "123"},
      {"zz", "1"}, {"p0", "nonsense"},    {"p1", "5:9:rule"},
      {"", "1"},   {"v9", "99999999999"}, {"c2", "0000000f"}};
  size_t bad = 0;
  const SharedKey k =
      ParseState(*harvest::ParseCidr("10.0.0.1/32"), View(fields), &bad);
  EXPECT_EQ(bad, 7u);
  ASSERT_EQ(k.buckets.size(), 1u);
  EXPECT_EQ(k.buckets[0].unknown, 3u);
  ASSERT_EQ(k.slots.size(), 1u);
  EXPECT_EQ(k.slots[0].clients, 0xfu);
}

TEST(CodecTest, KeyNamesCarryTheBucketWidth) {
  const KeyNames n = MakeKeyNames("rg:", absl::Minutes(1));
  EXPECT_EQ(n.active, "rg:60000:active");
  EXPECT_EQ(n.forget, "rg:60000:forget");
  EXPECT_EQ(n.Hash(*harvest::ParseCidr("2001:db8::/64")),
            "rg:60000:k:2001:db8::/64");
  EXPECT_TRUE(ParseKeyText("2001:db8::/64").ok());
  EXPECT_FALSE(ParseKeyText("2001:db8::").ok());
}

}  // namespace
}  // namespace rcptguard::harvest_shared
