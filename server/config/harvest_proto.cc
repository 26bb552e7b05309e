#include "server/config/harvest_proto.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace rcptguard::service {
namespace {

// Parses an optional duration field; empty keeps `*out`.
absl::Status ParseDurationField(const std::string& text,
                                const std::string& field, absl::Duration* out) {
  if (text.empty()) return absl::OkStatus();
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": invalid duration \"", text,
        "\" (use a number with a unit: \"90s\", \"10m\", \"1h\")"));
  }
  *out = d;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<harvest::HarvestConfig> HarvestConfigFromProto(
    const v1::HarvestDetection& proto) {
  harvest::HarvestConfig config = harvest::HarvestConfig::Defaults();
  config.observe_only = proto.observe_only();
  if (!proto.v4_prefixes().empty()) {
    config.v4_prefixes.assign(proto.v4_prefixes().begin(),
                              proto.v4_prefixes().end());
  }
  if (!proto.v6_prefixes().empty()) {
    config.v6_prefixes.assign(proto.v6_prefixes().begin(),
                              proto.v6_prefixes().end());
  }
  config.allowlist.assign(proto.allowlist().begin(), proto.allowlist().end());
  if (proto.has_exempt_dsn()) config.exempt_dsn = proto.exempt_dsn();
  if (proto.has_dsn_max_recipients()) {
    config.dsn_max_recipients = proto.dsn_max_recipients();
  }
  if (proto.has_exempt_authenticated()) {
    config.exempt_authenticated = proto.exempt_authenticated();
  }
  if (proto.max_tracked_keys() != 0) {
    config.max_tracked_keys = proto.max_tracked_keys();
  }
  if (proto.domain_min_distinct_clients() != 0) {
    config.domain_min_distinct_clients = proto.domain_min_distinct_clients();
  }
  if (absl::Status s =
          ParseDurationField(proto.domain_window(), "harvest.domain_window",
                             &config.domain_window);
      !s.ok()) {
    return s;
  }
  switch (proto.domain_attack_action()) {
    case v1::HARVEST_DOMAIN_ACTION_UNSPECIFIED:
      break;
    case v1::HARVEST_DOMAIN_ACTION_ACCEPT:
      config.domain_attack_action = harvest::Action::kAccept;
      break;
    case v1::HARVEST_DOMAIN_ACTION_TEMPFAIL:
      config.domain_attack_action = harvest::Action::kTempfail;
      break;
    case v1::HARVEST_DOMAIN_ACTION_REJECT:
      config.domain_attack_action = harvest::Action::kReject;
      break;
    default:
      return absl::InvalidArgumentError(
          "harvest.domain_attack_action: must be HARVEST_DOMAIN_ACTION_ACCEPT, "
          "_TEMPFAIL or _REJECT");
  }
  if (!proto.rules().empty()) {
    config.rules.clear();
    for (int i = 0; i < proto.rules_size(); ++i) {
      const v1::HarvestRule& r = proto.rules(i);
      const std::string field = absl::StrCat("harvest.rules[", i, "]");
      harvest::HarvestRule rule;
      rule.name = r.name();
      rule.scopes.assign(r.scopes().begin(), r.scopes().end());
      rule.min_unknown = r.min_unknown();
      rule.min_unknown_ratio = r.min_unknown_ratio();
      rule.min_total = r.min_total();
      rule.min_distinct_unknown = r.min_distinct_unknown();
      rule.min_distinct_clients = r.min_distinct_clients();
      switch (r.traffic()) {
        case v1::HARVEST_TRAFFIC_UNSPECIFIED:
        case v1::HARVEST_TRAFFIC_NORMAL:
          rule.traffic = harvest::Traffic::kNormal;
          break;
        case v1::HARVEST_TRAFFIC_NULL_SENDER:
          rule.traffic = harvest::Traffic::kNullSender;
          break;
        default:
          return absl::InvalidArgumentError(
              absl::StrCat(field,
                           ".traffic: must be HARVEST_TRAFFIC_NORMAL or "
                           "HARVEST_TRAFFIC_NULL_SENDER"));
      }
      switch (r.action()) {
        case v1::HARVEST_ACTION_TARPIT:
          rule.action = harvest::Action::kTarpit;
          break;
        case v1::HARVEST_ACTION_TEMPFAIL:
          rule.action = harvest::Action::kTempfail;
          break;
        case v1::HARVEST_ACTION_REJECT:
          rule.action = harvest::Action::kReject;
          break;
        case v1::HARVEST_ACTION_ACCEPT_ALL:
          rule.action = harvest::Action::kAccept;
          rule.accept_all = true;
          break;
        default:
          return absl::InvalidArgumentError(
              absl::StrCat(field,
                           ".action: must be HARVEST_ACTION_TARPIT, "
                           "HARVEST_ACTION_TEMPFAIL or HARVEST_ACTION_REJECT"));
      }
      switch (r.new_client_action()) {
        case v1::HARVEST_ACTION_UNSPECIFIED:
          break;
        case v1::HARVEST_ACTION_ACCEPT_ALL:
          rule.new_client_accept_all = true;
          break;
        default:
          return absl::InvalidArgumentError(
              absl::StrCat(field,
                           ".new_client_action: must be "
                           "HARVEST_ACTION_ACCEPT_ALL or unset"));
      }
      if (r.factor() != 0) rule.factor = r.factor();
      rule.observe_only = r.observe_only();
      rule.reply_text = r.reply_text();
      for (auto [text, name, out] :
           {std::tuple{&r.window(), "window", &rule.window},
            std::tuple{&r.base_delay(), "base_delay", &rule.base_delay},
            std::tuple{&r.max_delay(), "max_delay", &rule.max_delay},
            std::tuple{&r.penalty_duration(), "penalty_duration",
                       &rule.penalty_duration}}) {
        if (absl::Status s =
                ParseDurationField(*text, absl::StrCat(field, ".", name), out);
            !s.ok()) {
          return s;
        }
      }
      config.rules.push_back(std::move(rule));
    }
  }
  if (absl::Status s = config.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("harvest.", s.message()));
  }
  return config;
}

}  // namespace rcptguard::service
