#include "server/service/client_verdict.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "server/service/proto_enums.h"
#include "server/service/proto_time.h"

namespace rcptguard::service {

namespace {

void AddDomain(absl::InlinedVector<int32_t, 4>& domains, int32_t d) {
  if (d < 0) return;
  if (std::find(domains.begin(), domains.end(), d) == domains.end()) {
    domains.push_back(d);
  }
}

}  // namespace

uint64_t TransactionId(const v1::SmtpContext& ctx,
                       std::string_view edge_identity) {
  if (ctx.session_id().empty()) return 0;
  const std::string_view edge =
      edge_identity.empty() ? std::string_view(ctx.edge_id()) : edge_identity;
  const uint64_t h = absl::HashOf(ToAbsl(edge), ToAbsl(ctx.session_id()),
                                  ToAbsl(ctx.mail_from()));
  return h == 0 ? 1 : h;
}

harvest::Verdict ObserveRequest(
    harvest::Detector& detector, const v1::ValidateRequest& request,
    absl::Span<const directory::LookupResult> results,
    std::string_view edge_identity) {
  harvest::Observation obs;
  const v1::SmtpContext& ctx = request.context();
  obs.client_ip = ctx.client_ip();
  obs.authenticated = ctx.authenticated();
  obs.dsn = ctx.mail_from().empty() || ctx.mail_from() == "<>";
  obs.dry_run = request.dry_run();
  obs.transaction = TransactionId(ctx, edge_identity);
  absl::InlinedVector<std::pair<int32_t, uint32_t>, 4> unknown_by_domain;
  absl::InlinedVector<uint64_t, 64> unknown_fingerprints;
  absl::InlinedVector<int32_t, 4> asked_domains;
  for (const directory::LookupResult& r : results) {
    switch (r.status) {
      case directory::LookupStatus::kValid:
        ++obs.valid;
        AddDomain(asked_domains, r.domain_index);
        break;
      case directory::LookupStatus::kUnknown: {
        ++obs.unknown;
        unknown_fingerprints.push_back(r.fingerprint);
        const int32_t d = r.domain_index;
        AddDomain(asked_domains, d);
        auto it =
            std::find_if(unknown_by_domain.begin(), unknown_by_domain.end(),
                         [d](const auto& p) { return p.first == d; });
        if (it == unknown_by_domain.end()) {
          unknown_by_domain.emplace_back(d, 1);
        } else {
          ++it->second;
        }
        break;
      }
      case directory::LookupStatus::kNotServed:
        ++obs.not_served;
        break;
      case directory::LookupStatus::kMalformed:
        ++obs.malformed;
        break;
    }
  }
  obs.unknown_by_domain = absl::MakeConstSpan(unknown_by_domain);
  obs.unknown_fingerprints = absl::MakeConstSpan(unknown_fingerprints);
  obs.domains = absl::MakeConstSpan(asked_domains);
  return detector.Observe(obs);
}

uint32_t DelayCapMs(const v1::ValidateRequest& request) {
  const uint32_t asked = request.max_delay_ms();
  return asked == 0 ? kMaxDelayMs : std::min(asked, kMaxDelayMs);
}

void FillClientVerdict(const harvest::Verdict& verdict,
                       v1::ClientVerdict* client, uint32_t max_delay_ms) {
  client->set_action(ToProtoClientAction(verdict.action));
  client->set_rule(verdict.rule);
  client->set_unknown_in_window(verdict.unknown_in_window);
  const int64_t delay_ms =
      std::max<int64_t>(0, absl::ToInt64Milliseconds(verdict.delay));
  client->set_delay_ms(static_cast<uint32_t>(
      std::min<int64_t>(delay_ms, std::min(max_delay_ms, kMaxDelayMs))));
  if (verdict.blocked_until != absl::InfinitePast()) {
    *client->mutable_blocked_until() = ToProtoTimestamp(verdict.blocked_until);
  }
  if (verdict.reply.code != 0) {
    client->mutable_reply()->set_code(verdict.reply.code);
    client->mutable_reply()->set_enhanced_status(verdict.reply.enhanced_status);
    client->mutable_reply()->set_text(verdict.reply.text);
  }
}

v1::HarvestSkip HarvestSkipFor(const harvest::Verdict& verdict,
                               const v1::SmtpContext& ctx) {
  if (verdict.exempt != harvest::Exemption::kUnparsableIp) {
    return v1::HARVEST_SKIP_UNSPECIFIED;
  }
  return ctx.client_ip().empty() ? v1::HARVEST_SKIP_NO_CLIENT_IP
                                 : v1::HARVEST_SKIP_UNPARSABLE_CLIENT_IP;
}

}  // namespace rcptguard::service
