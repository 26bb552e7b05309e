// What every gRPC handler of rcptguardd shares (validation_service.h,
// stream_reactor.h, admin_service.h): timing a call into the request
// metrics, and the one way a refused call is counted and logged.
//
//   CallTimer timer(metrics, metrics::Method::kReload);
//   absl::Status status = ...;     // Refuse(metrics, *context, why) on refusal
//   timer.Done(status);
//   return ToGrpcStatus(status);   // server/service/grpc_status.h
//
// Refusals are logged at most once a second per caller (a client without
// rights may call in a loop; one looping client must not hide another's
// refusals); the metric counts every one.
//
// Thread safety: CallTimer belongs to one call; Refuse and CallerKey are
// safe from any thread.
#ifndef RCPTGUARD_SERVER_SERVICE_HANDLER_SUPPORT_H_
#define RCPTGUARD_SERVER_SERVICE_HANDLER_SUPPORT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "server/metrics/metrics.h"

namespace rcptguard::service {

// Times one call (or one stream message) and records it, with its status
// code, on Done(). `metrics` may be null (nothing is recorded).
class CallTimer {
 public:
  CallTimer(metrics::ServerMetrics* metrics, metrics::Method method);
  void Done(const absl::Status& status);

 private:
  metrics::ServerMetrics* const metrics_;
  const metrics::Method method_;
  const absl::Time start_;
};

// The key a caller is counted and logged under (PeerKey in
// stream_limits.h): its certificate identity when the peer is
// authenticated, else the host of its address.
std::string CallerKey(const grpc::ServerContextBase& context);

// Counts (in `metrics`, which may be null) and logs the refusal `why` of a
// call, and returns it. The refusal reason of the metric follows the code:
// UNAUTHENTICATED, PERMISSION_DENIED, anything else is the rate limit.
absl::Status Refuse(metrics::ServerMetrics* metrics,
                    const grpc::ServerContextBase& context, absl::Status why);

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_HANDLER_SUPPORT_H_
