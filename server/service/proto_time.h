// The one conversion between absl::Time and google.protobuf.Timestamp in
// the service (GetStatus times, ListOffenders' last_seen, a client
// verdict's blocked_until).
//
//   *status.mutable_started_at() = ToProtoTimestamp(started_at);
//   absl::Time t = FromProtoTimestamp(status.started_at());
//
// Contract: a Timestamp always comes out normalized (nanos in [0, 1e9)),
// also before 1970. Times beyond what int64 nanoseconds since the Unix
// epoch hold (about the years 1678 to 2262, and the infinite times) are
// clamped to that range, as absl::ToUnixNanos clamps them. Neither function
// allocates: they are on the request path.
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_SERVER_SERVICE_PROTO_TIME_H_
#define RCPTGUARD_SERVER_SERVICE_PROTO_TIME_H_

#include <cstdint>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace rcptguard::service {

inline google::protobuf::Timestamp ToProtoTimestamp(absl::Time t) {
  constexpr int64_t kNanosPerSecond = 1'000'000'000;
  const int64_t nanos = absl::ToUnixNanos(t);
  int64_t seconds = nanos / kNanosPerSecond;
  int64_t rest = nanos % kNanosPerSecond;
  if (rest < 0) {  // before 1970: round the seconds down
    rest += kNanosPerSecond;
    --seconds;
  }
  google::protobuf::Timestamp out;
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(rest));
  return out;
}

inline absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_PROTO_TIME_H_
