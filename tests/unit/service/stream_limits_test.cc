#include "server/service/stream_limits.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rcptguard::service {
namespace {

using ::testing::HasSubstr;

TEST(PeerKeyTest, IdentityElseHost) {
  EXPECT_EQ(PeerKey("edge1.example", "ipv4:192.0.2.1:5555"), "edge1.example");
  EXPECT_EQ(PeerKey("", "ipv4:192.0.2.1:5555"), "192.0.2.1");
  EXPECT_EQ(PeerKey("", "ipv6:[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(PeerKey("", "ipv6:[::1]:5"), "::1");
  EXPECT_EQ(PeerKey("", "unix:/run/x.sock"), "unix:/run/x.sock");
}

TEST(StreamCounterTest, PerPeerAndTotal) {
  StreamCounter counter(/*max_per_peer=*/2, /*max_total=*/3);
  EXPECT_TRUE(counter.Open("a").ok());
  EXPECT_TRUE(counter.Open("a").ok());
  absl::Status third = counter.Open("a");
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(third.message()),
              HasSubstr("limits.max_streams_per_peer"));
  EXPECT_TRUE(counter.Open("b").ok());
  absl::Status full = counter.Open("c");
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()), HasSubstr("limits.max_streams"));
  EXPECT_EQ(counter.open_total(), 3u);
  counter.Close("a");
  EXPECT_TRUE(counter.Open("c").ok());
  counter.Close("a");
  counter.Close("b");
  counter.Close("c");
  EXPECT_EQ(counter.open_total(), 0u);
  // Closing a peer that has nothing open changes nothing.
  counter.Close("zzz");
  EXPECT_EQ(counter.open_total(), 0u);
}

TEST(StreamCounterTest, LongPeerNamesAreClippedInTheMessage) {
  StreamCounter counter(1, 10);
  const std::string peer(8192, 'p');
  ASSERT_TRUE(counter.Open(peer).ok());
  absl::Status refused = counter.Open(peer);
  EXPECT_LT(refused.message().size(), 400u);
}

TEST(BufferBudgetTest, OverAtTheLimit) {
  BufferBudget budget(100);
  EXPECT_FALSE(budget.over());
  budget.Add(99);
  EXPECT_FALSE(budget.over());
  budget.Add(1);
  EXPECT_TRUE(budget.over());
  budget.Remove(50);
  EXPECT_FALSE(budget.over());
  EXPECT_EQ(budget.used(), 50u);
}

}  // namespace
}  // namespace rcptguard::service
