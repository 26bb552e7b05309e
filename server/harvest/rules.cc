#include "server/harvest/rules.h"

namespace rcptguard::harvest {
namespace {

std::string ScopeName(IpFamily family, int len) {
  return absl::StrCat(family == IpFamily::kV4 ? "v4/" : "v6/", len);
}

absl::Status CompilePrefixes(const std::vector<int>& lens, IpFamily family,
                             Compiled& out) {
  const bool v4 = family == IpFamily::kV4;
  const char* field = v4 ? "v4_prefixes" : "v6_prefixes";
  const int lo = v4 ? 8 : 16;
  const int hi = v4 ? 32 : 128;
  if (lens.empty() || lens.size() > kMaxPrefixesPerFamily) {
    return Bad(field, absl::StrCat("must list 1 to ", kMaxPrefixesPerFamily,
                                   " prefix lengths"));
  }
  for (size_t i = 0; i < lens.size(); ++i) {
    const std::string name = absl::StrCat(field, "[", i, "]");
    if (lens[i] < lo || lens[i] > hi) {
      return Bad(name, absl::StrCat("must be between ", lo, " and ", hi));
    }
    for (size_t j = 0; j < i; ++j) {
      if (lens[j] == lens[i]) {
        return Bad(name, absl::StrCat("duplicate of ", field, "[", j, "]"));
      }
    }
  }
  std::vector<int> sorted = lens;
  std::sort(sorted.rbegin(), sorted.rend());  // narrowest (longest) first
  for (size_t i = 0; i < sorted.size(); ++i) {
    TrackedPrefix p;
    p.family = family;
    p.len = sorted[i];
    p.network = i > 0;
    out.prefixes.push_back(std::move(p));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Compiled> Compile(const HarvestConfig& config) {
  Compiled c;
  if (absl::Status s = CompilePrefixes(config.v4_prefixes, IpFamily::kV4, c);
      !s.ok()) {
    return s;
  }
  c.v4_end = static_cast<int>(c.prefixes.size());
  c.v6_begin = c.v4_end;
  if (absl::Status s = CompilePrefixes(config.v6_prefixes, IpFamily::kV6, c);
      !s.ok()) {
    return s;
  }
  c.v6_end = static_cast<int>(c.prefixes.size());
  c.unparsable = c.v6_end;
  c.prefixes.push_back(TrackedPrefix{});

  std::vector<std::string> tracked;
  for (int i = 0; i < c.v6_end; ++i) {
    tracked.push_back(ScopeName(c.prefixes[i].family, c.prefixes[i].len));
  }
  const std::string tracked_list = absl::StrJoin(tracked, ", ");

  if (config.rules.size() > kMaxRules) {
    return Bad("rules", absl::StrCat("at most ", kMaxRules, " rules"));
  }
  absl::Duration longest = absl::ZeroDuration();
  std::vector<std::vector<int>> rule_prefixes(config.rules.size());
  for (size_t i = 0; i < config.rules.size(); ++i) {
    const HarvestRule& r = config.rules[i];
    const std::string f = absl::StrCat("rules[", i, "]");
    if (!ValidRuleName(r.name)) {
      return Bad(f + ".name",
                 "must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
    }
    for (size_t j = 0; j < i; ++j) {
      if (config.rules[j].name == r.name) {
        return Bad(f + ".name",
                   absl::StrCat("duplicate of rules[", j, "].name"));
      }
    }
    if (r.scopes.empty()) return Bad(f + ".scopes", "must not be empty");
    for (size_t k = 0; k < r.scopes.size(); ++k) {
      const std::string sf = absl::StrCat(f, ".scopes[", k, "]");
      const std::string& scope = r.scopes[k];
      int found = -1;
      for (int p = 0; p < c.v6_end; ++p) {
        if (scope == tracked[p]) found = p;
      }
      if (found < 0) {
        const bool shaped =
            (scope.rfind("v4/", 0) == 0 || scope.rfind("v6/", 0) == 0) &&
            scope.size() > 3 && scope.size() <= 6 &&
            scope.find_first_not_of("0123456789", 3) == std::string::npos;
        if (!shaped) {
          return Bad(sf, absl::StrCat("\"", scope.substr(0, 32),
                                      "\" must look like v4/LEN or v6/LEN"));
        }
        return Bad(sf, absl::StrCat("\"", scope, "\" is not a tracked prefix (",
                                    tracked_list, ")"));
      }
      for (size_t j = 0; j < k; ++j) {
        if (r.scopes[j] == scope) {
          return Bad(sf, absl::StrCat("duplicate of ", f, ".scopes[", j, "]"));
        }
      }
      rule_prefixes[i].push_back(found);
    }
    if (r.window < absl::Seconds(1) || r.window > absl::Hours(24)) {
      return Bad(f + ".window", "must be between 1s and 24h");
    }
    if (r.min_unknown < 1) return Bad(f + ".min_unknown", "must be at least 1");
    if (!(r.min_unknown_ratio >= 0.0 && r.min_unknown_ratio <= 1.0)) {
      return Bad(f + ".min_unknown_ratio", "must be between 0 and 1");
    }
    // The sketches estimate up to a few hundred distinct recipients and
    // about a hundred distinct clients; thresholds stay well below that.
    if (r.min_distinct_unknown > kMaxDistinctUnknown) {
      return Bad(f + ".min_distinct_unknown",
                 absl::StrCat("must be at most ", kMaxDistinctUnknown));
    }
    if (r.min_distinct_clients > kMaxDistinctClients) {
      return Bad(f + ".min_distinct_clients",
                 absl::StrCat("must be at most ", kMaxDistinctClients));
    }
    if (r.traffic != Traffic::kNormal && r.traffic != Traffic::kNullSender) {
      return Bad(f + ".traffic", "must be NORMAL or NULL_SENDER");
    }
    if (r.accept_all &&
        (r.action != Action::kAccept || r.traffic != Traffic::kNullSender)) {
      return Bad(f + ".action", "ACCEPT_ALL is for NULL_SENDER rules only");
    }
    if (r.new_client_accept_all) {
      bool network = false;
      for (const int prefix : rule_prefixes[i]) {
        network = network || c.prefixes[prefix].network;
      }
      if (!network || r.traffic != Traffic::kNormal || r.accept_all) {
        return Bad(f + ".new_client_action",
                   "ACCEPT_ALL is for NORMAL rules with a network scope "
                   "(e.g. v4/24) only");
      }
    }
    switch (r.action) {
      case Action::kAccept:
        if (!r.accept_all) {
          return Bad(f + ".action", "must be TARPIT, TEMPFAIL or REJECT");
        }
        break;
      case Action::kTarpit:
        if (r.base_delay < absl::Milliseconds(1) ||
            r.base_delay > absl::Minutes(5)) {
          return Bad(f + ".base_delay", "must be between 1ms and 5m");
        }
        if (!(r.factor >= 1.0 && r.factor <= 10.0)) {
          return Bad(f + ".factor", "must be between 1 and 10");
        }
        if (r.max_delay < r.base_delay || r.max_delay > absl::Minutes(5)) {
          return Bad(f + ".max_delay", "must be between base_delay and 5m");
        }
        if (r.penalty_duration != absl::ZeroDuration()) {
          return Bad(f + ".penalty_duration",
                     "only TEMPFAIL and REJECT rules keep a penalty box");
        }
        break;
      case Action::kTempfail:
      case Action::kReject:
        if (r.penalty_duration < absl::ZeroDuration() ||
            r.penalty_duration > absl::Hours(24 * 7)) {
          return Bad(f + ".penalty_duration", "must be between 0s and 7d");
        }
        break;
      default:
        return Bad(f + ".action", "must be TARPIT, TEMPFAIL or REJECT");
    }
    if (!ValidReplyText(r.reply_text)) {
      return Bad(f + ".reply_text",
                 "must be printable ASCII, at most 200 characters");
    }
    longest = std::max(longest, r.window);
  }
  if (longest == absl::ZeroDuration()) longest = absl::Hours(1);
  c.bucket_ns = absl::ToInt64Nanoseconds(longest) / kRingBuckets;
  const absl::Duration bucket = absl::Nanoseconds(c.bucket_ns);
  for (size_t i = 0; i < config.rules.size(); ++i) {
    const HarvestRule& r = config.rules[i];
    if (r.window < bucket) {
      return Bad(absl::StrCat("rules[", i, "].window"),
                 absl::StrCat(
                     absl::FormatDuration(r.window),
                     " is shorter than one counting bucket (",
                     absl::FormatDuration(bucket), " = longest rule window ",
                     absl::FormatDuration(longest), " / ", kRingBuckets, ")"));
    }
    CompiledRule cr;
    cr.rule = r;
    const int64_t window_ns = absl::ToInt64Nanoseconds(r.window);
    cr.buckets = static_cast<int>(std::min<int64_t>(
        kRingBuckets, (window_ns + c.bucket_ns - 1) / c.bucket_ns));
    cr.slots = std::min(kSlots, (cr.buckets + kSlotBuckets - 1) / kSlotBuckets +
                                    (cr.buckets < kRingBuckets ? 1 : 0));
    cr.shadow = r.observe_only || config.observe_only;
    if (r.action == Action::kTarpit) {
      for (int n = 1; n <= 64; ++n) {
        cr.delays.push_back(cr.Delay(n));
      }
    }
    cr.reply = DefaultReply(r.action);
    if (!r.reply_text.empty()) cr.reply.text = r.reply_text;
    c.rules.push_back(std::move(cr));
    for (int p : rule_prefixes[i])
      c.prefixes[p].rules.push_back(static_cast<int>(i));
  }
  for (TrackedPrefix& p : c.prefixes) {
    p.window_of.fill(-1);
    if (p.rules.empty()) continue;
    p.windows.clear();
    for (int r : p.rules) p.windows.push_back(c.rules[r].buckets);
    std::sort(p.windows.begin(), p.windows.end());
    p.windows.erase(std::unique(p.windows.begin(), p.windows.end()),
                    p.windows.end());
    for (int r : p.rules) {
      p.window_of[r] = static_cast<int8_t>(
          std::lower_bound(p.windows.begin(), p.windows.end(),
                           c.rules[r].buckets) -
          p.windows.begin());
    }
  }

  if (config.allowlist.size() > kMaxAllowlist) {
    return Bad("allowlist",
               absl::StrCat("at most ", kMaxAllowlist, " entries"));
  }
  for (size_t i = 0; i < config.allowlist.size(); ++i) {
    absl::StatusOr<PrefixKey> net = ParseCidr(config.allowlist[i]);
    if (!net.ok()) {
      return Bad(absl::StrCat("allowlist[", i, "]"), net.status().message());
    }
    c.allow.insert(*net);
    std::vector<int>& lens =
        net->family == IpFamily::kV4 ? c.allow_v4_lengths : c.allow_v6_lengths;
    if (std::find(lens.begin(), lens.end(), net->prefix_len) == lens.end()) {
      lens.push_back(net->prefix_len);
    }
  }

  if (config.max_tracked_keys < 1 ||
      config.max_tracked_keys > kMaxTrackedKeysLimit) {
    return Bad("max_tracked_keys", "must be between 1 and 100000000");
  }
  if (config.shards < 1 || config.shards > 4096) {
    return Bad("shards", "must be between 1 and 4096");
  }
  if (config.domain_window < absl::Minutes(1) ||
      config.domain_window > absl::Hours(24)) {
    return Bad("domain_window", "must be between 1m and 24h");
  }
  if (config.domain_min_distinct_clients > kMaxDomainThreshold) {
    return Bad("domain_min_distinct_clients", "must be at most 1000");
  }
  c.domain_bucket_ns =
      absl::ToInt64Nanoseconds(config.domain_window) / kDomainBuckets;
  switch (config.domain_attack_action) {
    case Action::kAccept:
      break;
    case Action::kTarpit:
      return Bad("domain_attack_action", "must be ACCEPT, TEMPFAIL or REJECT");
    case Action::kTempfail:
    case Action::kReject: {
      CompiledRule cr;
      cr.rule.name = std::string(kDomainAttackRule);
      cr.rule.window = config.domain_window;
      cr.rule.action = config.domain_attack_action;
      cr.shadow = config.observe_only;
      cr.reply = DefaultReply(cr.rule.action);
      c.domain_rule = static_cast<int>(c.rules.size());
      c.rules.push_back(std::move(cr));
      break;
    }
    default:
      return Bad("domain_attack_action", "must be ACCEPT, TEMPFAIL or REJECT");
  }
  return c;
}

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kAccept:
      return "ACCEPT";
    case Action::kTarpit:
      return "TARPIT";
    case Action::kTempfail:
      return "TEMPFAIL";
    case Action::kReject:
      return "REJECT";
  }
  return "UNKNOWN";
}

HarvestConfig HarvestConfig::Defaults() {
  // Chosen on labelled traffic (tests/harvest_sim, docs/harvest.md has the
  // table): a harvest is many distinct unknown recipients that are a large
  // share of what the client asks; legitimate senders, even large ones with
  // stale lists, stay below a tenth unknown.
  HarvestConfig c;
  auto rule = [](std::string name, std::vector<std::string> scopes,
                 absl::Duration window, uint32_t distinct, double ratio,
                 Action action) {
    HarvestRule r;
    r.name = std::move(name);
    r.scopes = std::move(scopes);
    r.window = window;
    r.min_unknown = 1;
    r.min_distinct_unknown = distinct;
    r.min_unknown_ratio = ratio;
    r.action = action;
    return r;
  };
  const std::vector<std::string> client = {"v4/32", "v6/128"};
  const std::vector<std::string> network = {"v4/24", "v6/64"};

  HarvestRule tarpit =
      rule("client-tarpit", client, absl::Minutes(10), 8, 0.1, Action::kTarpit);
  tarpit.base_delay = absl::Seconds(2);
  tarpit.max_delay = absl::Seconds(20);
  c.rules.push_back(std::move(tarpit));
  c.rules.push_back(rule("client-tempfail", client, absl::Hours(1), 15, 0.1,
                         Action::kTempfail));
  HarvestRule client_reject =
      rule("client-reject", client, absl::Hours(1), 40, 0.5, Action::kReject);
  client_reject.penalty_duration = absl::Hours(1);
  c.rules.push_back(std::move(client_reject));

  HarvestRule network_tempfail = rule(
      "network-tempfail", network, absl::Hours(1), 20, 0.2, Action::kTempfail);
  network_tempfail.min_distinct_clients = 3;
  network_tempfail.new_client_accept_all = true;
  c.rules.push_back(std::move(network_tempfail));
  HarvestRule network_reject =
      rule("network-reject", network, absl::Hours(1), 60, 0.5, Action::kReject);
  network_reject.min_distinct_clients = 5;
  network_reject.penalty_duration = absl::Hours(1);
  network_reject.new_client_accept_all = true;
  c.rules.push_back(std::move(network_reject));

  HarvestRule null_client = rule("null-sender-accept-all", client,
                                 absl::Hours(1), 10, 0.5, Action::kAccept);
  null_client.traffic = Traffic::kNullSender;
  null_client.accept_all = true;
  c.rules.push_back(std::move(null_client));
  HarvestRule null_network = rule("null-sender-network-accept-all", network,
                                  absl::Hours(1), 20, 0.5, Action::kAccept);
  null_network.traffic = Traffic::kNullSender;
  null_network.accept_all = true;
  null_network.min_distinct_clients = 3;
  c.rules.push_back(std::move(null_network));
  return c;
}

absl::Status HarvestConfig::Validate() const { return Compile(*this).status(); }

}  // namespace rcptguard::harvest
