#include "server/service/access.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "common/text.h"
#include "grpc/grpc_security_constants.h"

namespace rcptguard::service {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kValidate:
      return "validate";
    case Role::kRead:
      return "read";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<std::string> IdentityFromAuthContext(
    const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("no client certificate");
  }
  for (const char* property :
       {GRPC_PEER_DNS_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME}) {
    for (const grpc::string_ref& value : auth.FindPropertyValues(property)) {
      if (value.size() > 0) return std::string(value.data(), value.size());
    }
  }
  return absl::UnauthenticatedError(
      "client certificate has neither a DNS name nor a CN");
}

AccessPolicy::AccessPolicy(const v1::ServerConfig& config)
    : tls_(config.has_tls()) {
  const v1::Access& access = config.access();
  for (const auto& [role, names] :
       {std::pair{Role::kValidate, &access.validate()},
        std::pair{Role::kRead, &access.read()},
        std::pair{Role::kAdmin, &access.admin()}}) {
    List& l = lists_[static_cast<size_t>(role)];
    for (const std::string& name : *names) {
      if (name == "*") {
        l.any = true;
      } else {
        l.names.insert(name);
      }
    }
  }
}

bool AccessPolicy::Allowed(std::string_view identity, Role role) const {
  if (!tls_) return true;
  auto listed = [&](Role r) {
    const List& l = list(r);
    return l.any || l.names.contains(ToAbsl(identity));
  };
  if (listed(role)) return true;
  // Admins may also read.
  return role == Role::kRead && listed(Role::kAdmin);
}

absl::StatusOr<std::string> AccessPolicy::Authorize(
    const grpc::ServerContextBase& context, Role role) const {
  if (!tls_) return std::string();
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) {
    return absl::UnauthenticatedError("no client certificate");
  }
  absl::StatusOr<std::string> identity = IdentityFromAuthContext(*auth);
  if (!identity.ok()) return identity.status();
  if (!Allowed(*identity, role)) {
    return absl::PermissionDeniedError(
        absl::StrCat("identity \"", SafeText(*identity, 128), "\" may not ",
                     ToAbsl(RoleName(role)), " (see access in the config)"));
  }
  return identity;
}

RateLimiter::RateLimiter(uint32_t recipients_per_second, uint32_t burst_seconds,
                         const Clock* clock)
    : rate_(recipients_per_second),
      capacity_(static_cast<double>(recipients_per_second) *
                std::max<uint32_t>(burst_seconds, 1)),
      clock_(clock) {}

bool RateLimiter::Admit(std::string_view identity, uint32_t recipients) {
  if (rate_ == 0) return true;
  Shard& shard = shards_[absl::HashOf(ToAbsl(identity)) % kShards];
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&shard.mu);
  auto it = shard.buckets.find(ToAbsl(identity));
  if (it == shard.buckets.end()) {
    std::string key(identity);
    if (shard.buckets.size() >= kMaxIdentities / kShards) key = "\x01other";
    it =
        shard.buckets.try_emplace(std::move(key), Bucket{capacity_, now}).first;
  }
  Bucket& b = it->second;
  const absl::Duration elapsed =
      std::max(now - b.updated, absl::ZeroDuration());
  b.tokens =
      std::min(capacity_, b.tokens + rate_ * absl::ToDoubleSeconds(elapsed));
  b.updated = std::max(b.updated, now);
  if (b.tokens < 0) return false;
  b.tokens -= recipients;
  return true;
}

}  // namespace rcptguard::service
