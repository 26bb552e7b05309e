#include "server/service/proto_time.h"

#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace rcptguard::service {
namespace {

TEST(ProtoTimeTest, SplitsSecondsAndNanos) {
  const absl::Time t =
      absl::FromUnixSeconds(1'700'000'000) + absl::Nanoseconds(123'456'789);
  const google::protobuf::Timestamp ts = ToProtoTimestamp(t);
  EXPECT_EQ(ts.seconds(), 1'700'000'000);
  EXPECT_EQ(ts.nanos(), 123'456'789);
  EXPECT_EQ(FromProtoTimestamp(ts), t);
}

TEST(ProtoTimeTest, AgreesWithProtobufTimeUtil) {
  for (const absl::Time t :
       {absl::UnixEpoch(), absl::FromUnixMillis(1'234'567'890'123),
        absl::FromUnixSeconds(-5) + absl::Milliseconds(250)}) {
    const google::protobuf::Timestamp expected =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
            absl::ToUnixNanos(t));
    EXPECT_EQ(ToProtoTimestamp(t).SerializeAsString(),
              expected.SerializeAsString())
        << t;
  }
}

TEST(ProtoTimeTest, BeforeTheEpochIsNormalized) {
  const absl::Time t = absl::FromUnixSeconds(-2) + absl::Milliseconds(250);
  const google::protobuf::Timestamp ts = ToProtoTimestamp(t);
  EXPECT_EQ(ts.seconds(), -2);
  EXPECT_EQ(ts.nanos(), 250'000'000);
  EXPECT_EQ(FromProtoTimestamp(ts), t);
}

TEST(ProtoTimeTest, InfiniteTimesAreClampedLikeToUnixNanos) {
  const google::protobuf::Timestamp ts =
      ToProtoTimestamp(absl::InfiniteFuture());
  EXPECT_EQ(ts.seconds(), 9'223'372'036);
  EXPECT_EQ(ts.nanos(), 854'775'807);
}

}  // namespace
}  // namespace rcptguard::service
