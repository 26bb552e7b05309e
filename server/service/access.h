// Who may call what: client identities from mutual TLS, the per-identity
// access lists of the config, and the per-identity recipient budget.
//
// With tls configured every call carries a verified client certificate
// (gRPC refuses the handshake otherwise); its identity is the first DNS
// subject alternative name, else the subject CN. Without tls (loopback
// plaintext, insecure_plaintext: true) every caller is the anonymous
// identity "" and may do everything: the config refuses plaintext on any
// other address.
//
//   AccessPolicy policy(config);
//   absl::StatusOr<std::string> who = policy.Authorize(*context, Role::kAdmin);
//   if (!who.ok()) return ToGrpcStatus(who.status());
//
// Thread safety: AccessPolicy is immutable after construction and safe to
// share. RateLimiter is safe to call from any thread (one absl::Mutex per
// shard of identities).
#ifndef RCPTGUARD_SERVER_SERVICE_ACCESS_H_
#define RCPTGUARD_SERVER_SERVICE_ACCESS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/server_context.h"
#include "rcptguard/v1/config.pb.h"

namespace rcptguard::service {

enum class Role {
  kValidate,  // Validate, ValidateStream
  kRead,      // GetStatus, ListOffenders
  kAdmin,     // Reload, ForgetClient
};
std::string_view RoleName(Role role);

// The identity in a verified peer certificate: the first DNS subject
// alternative name, else the subject CN. Unauthenticated if the peer is not
// authenticated or its certificate names nothing.
absl::StatusOr<std::string> IdentityFromAuthContext(
    const grpc::AuthContext& auth);

class AccessPolicy {
 public:
  explicit AccessPolicy(const v1::ServerConfig& config);

  // The caller's identity when it may act in `role`: Unauthenticated
  // without a certificate identity (mutual TLS only), PermissionDenied when
  // the identity is not listed for the role. Always "" without TLS.
  absl::StatusOr<std::string> Authorize(const grpc::ServerContextBase& context,
                                        Role role) const;
  // The list check alone (for tests and callers that know the identity).
  bool Allowed(std::string_view identity, Role role) const;

  bool tls() const { return tls_; }

 private:
  struct List {
    bool any = false;  // "*"
    absl::flat_hash_set<std::string> names;
  };
  const List& list(Role role) const {
    return lists_[static_cast<size_t>(role)];
  }

  bool tls_ = false;
  std::array<List, 3> lists_;
};

// Per-identity token buckets of recipients: `rate` per second, holding at
// most `rate * burst_seconds`. A request is admitted while its identity's
// bucket is not in debt and takes all its recipients (the bucket may go
// negative), so a request larger than the bucket is still served once the
// identity has paid for the last one.
class RateLimiter {
 public:
  // rate 0: everything is admitted and nothing is tracked. Buckets refill
  // by `clock`, which must outlive the limiter; time that goes backwards
  // refills nothing.
  RateLimiter(uint32_t recipients_per_second, uint32_t burst_seconds,
              const Clock* clock = RealClock::Get());

  // True when admitted (and charged).
  bool Admit(std::string_view identity, uint32_t recipients);

  // Identities tracked beyond this share one bucket (certificate identities
  // are issued by the operator's CA, so this is a safety net).
  static constexpr size_t kMaxIdentities = 4096;

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, Bucket> buckets ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kShards = 16;

  const double rate_;
  const double capacity_;
  const Clock* const clock_;
  std::array<Shard, kShards> shards_;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_ACCESS_H_
