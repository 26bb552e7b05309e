#include "server/service/handler_support.h"

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/text.h"
#include "server/service/access.h"
#include "server/service/stream_limits.h"

namespace rcptguard::service {
namespace {

// Remembers when each caller's refusal was last logged; at most kMaxKeys
// callers at once.
class RefusalLogLimiter {
 public:
  bool ShouldLog(const std::string& key, int64_t now_second) {
    absl::MutexLock lock(&mu_);
    if (last_.size() >= kMaxKeys) last_.clear();
    int64_t& last = last_[key];
    if (last == now_second) return false;
    last = now_second;
    return true;
  }

 private:
  static constexpr size_t kMaxKeys = 4096;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> last_ ABSL_GUARDED_BY(mu_);
};

void LogRefusal(const grpc::ServerContextBase& context,
                const absl::Status& why) {
  static RefusalLogLimiter* const limiter = new RefusalLogLimiter();
  if (!limiter->ShouldLog(SafeText(CallerKey(context), 128),
                          absl::ToUnixSeconds(absl::Now()))) {
    return;
  }
  LogWarning("call_refused", {{"code", absl::StatusCodeToString(why.code())},
                              {"reason", ToStd(why.message())},
                              {"peer", context.peer()}});
}

metrics::AccessRefusal RefusalReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnauthenticated:
      return metrics::AccessRefusal::kUnauthenticated;
    case absl::StatusCode::kPermissionDenied:
      return metrics::AccessRefusal::kPermissionDenied;
    default:
      return metrics::AccessRefusal::kRateLimited;
  }
}

}  // namespace

CallTimer::CallTimer(metrics::ServerMetrics* metrics, metrics::Method method)
    : metrics_(metrics), method_(method), start_(absl::Now()) {}

void CallTimer::Done(const absl::Status& status) {
  if (metrics_ != nullptr) {
    metrics_->RecordRequest(method_, status.code(), absl::Now() - start_);
  }
}

std::string CallerKey(const grpc::ServerContextBase& context) {
  std::string identity;
  if (context.auth_context() != nullptr &&
      context.auth_context()->IsPeerAuthenticated()) {
    identity = IdentityFromAuthContext(*context.auth_context()).value_or("");
  }
  return PeerKey(identity, context.peer());
}

absl::Status Refuse(metrics::ServerMetrics* metrics,
                    const grpc::ServerContextBase& context, absl::Status why) {
  if (metrics != nullptr)
    metrics->RecordAccessRefused(RefusalReason(why.code()));
  LogRefusal(context, why);
  return why;
}

}  // namespace rcptguard::service
