#include "server/config/harvest_proto.h"

#include <string>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "common/strings.h"

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

absl::Status DurationInRange(const std::string& text, const std::string& field,
                             absl::Duration lo, absl::Duration hi,
                             absl::Duration* out) {
  if (absl::Status s = ParseDurationField(text, field, out); !s.ok()) return s;
  if (*out < lo || *out > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be between ", absl::FormatDuration(lo),
                     " and ", absl::FormatDuration(hi)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SharedHarvestSettings> SharedHarvestFromProto(
    const v1::SharedHarvest& proto) {
  SharedHarvestSettings out;
  const std::string f = "harvest.shared.";
  out.address = proto.address();
  if (out.address.empty()) {
    return absl::InvalidArgumentError(f + "address: required");
  }
  if (out.address.rfind("unix:", 0) == 0) {
    if (out.address.size() == 5) {
      return absl::InvalidArgumentError(
          f + "address: \"unix:\" needs a socket path");
    }
  } else {
    const size_t colon = out.address.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(out.address.substr(colon + 1), &port) || port <= 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          f, "address: \"", out.address, "\" is not host:port or unix:/path"));
    }
  }
  out.username = proto.username();
  if (!proto.password_file().empty()) {
    absl::StatusOr<std::string> pw =
        ReadRegularFile(f + "password_file", proto.password_file(), 4096);
    if (!pw.ok()) return pw.status();
    std::string p = *std::move(pw);
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    if (p.empty() || p.find('\n') != std::string::npos) {
      return absl::InvalidArgumentError(
          f + "password_file: must hold one non-empty line");
    }
    out.password = std::move(p);
  } else if (!out.username.empty()) {
    return absl::InvalidArgumentError(f + "username: needs password_file");
  }
  if (!proto.key_prefix().empty()) out.key_prefix = proto.key_prefix();
  if (out.key_prefix.size() > 64) {
    return absl::InvalidArgumentError(f + "key_prefix: at most 64 characters");
  }
  for (char c : out.key_prefix) {
    if (c <= 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          f + "key_prefix: printable ASCII without spaces only");
    }
  }
  if (proto.database() > 15) {
    return absl::InvalidArgumentError(f + "database: at most 15");
  }
  out.database = static_cast<int>(proto.database());
  for (auto [text, name, out_d, lo, hi] :
       {std::tuple{&proto.connect_timeout(), "connect_timeout",
                   &out.connect_timeout, absl::Milliseconds(10),
                   absl::Seconds(30)},
        std::tuple{&proto.command_timeout(), "command_timeout",
                   &out.command_timeout, absl::Milliseconds(10),
                   absl::Seconds(30)},
        std::tuple{&proto.flush_interval(), "flush_interval",
                   &out.flush_interval, absl::Milliseconds(10),
                   absl::Seconds(10)}}) {
    if (absl::Status s = DurationInRange(*text, f + name, lo, hi, out_d);
        !s.ok()) {
      return s;
    }
  }
  if (proto.max_queued_deltas() != 0) {
    if (proto.max_queued_deltas() > 10'000'000) {
      return absl::InvalidArgumentError(f +
                                        "max_queued_deltas: at most 10000000");
    }
    out.max_queued_deltas = proto.max_queued_deltas();
  }
  return out;
}

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
