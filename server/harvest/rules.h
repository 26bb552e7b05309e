// Internal to server/harvest: the configuration compiled for the detector,
// shared by its files. Not an API: only server/harvest/*.cc include it.
//
// Thread safety: as documented on each type; Shard and DomainState guard
// themselves with their own mutexes.
#ifndef RCPTGUARD_SERVER_HARVEST_RULES_H_
#define RCPTGUARD_SERVER_HARVEST_RULES_H_

#include "server/harvest/window.h"

namespace rcptguard::harvest {

// ---------------------------------------------------------------------------
// Compiled configuration.

struct CompiledRule {
  HarvestRule rule;
  int buckets = 1;  // window in ring buckets
  // Window in slots for null-sender counts and distinct sketches: the slots
  // that cover the window, plus the partly filled current one.
  int slots = kSlots;
  bool shadow = false;  // observe-only (rule or config)
  SmtpReplyText reply;
  // TARPIT: delays[n-1] = min(base_delay * factor^(n-1), max_delay) for
  // the first firings, so the hot path needs no pow().
  std::vector<absl::Duration> delays;

  absl::Duration Delay(int streak) const {
    const int n = std::max(streak, 1);
    if (static_cast<size_t>(n) <= delays.size()) return delays[n - 1];
    const double growth = std::pow(rule.factor, n - 1);
    if (!std::isfinite(growth)) return rule.max_delay;
    return std::min(rule.base_delay * growth, rule.max_delay);
  }
};

struct TrackedPrefix {
  IpFamily family = IpFamily::kUnparsable;
  int len = 0;
  // Not the narrowest prefix of its family: a network of clients. Its
  // rules spare established clients and may count distinct clients.
  bool network = false;
  std::vector<int> rules;  // indexes into Compiled::rules
  // The distinct windows (in buckets) of those rules, ascending; the whole
  // ring when there are no rules. The last is the longest.
  std::vector<int> windows = {kRingBuckets};
  // window_of[r]: index into `windows` of rule r's window, -1 if r does not
  // apply to this prefix.
  std::array<int8_t, kMaxRules + 1> window_of = [] {
    std::array<int8_t, kMaxRules + 1> none;
    none.fill(-1);
    return none;
  }();
  size_t longest() const { return windows.size() - 1; }
};

struct Compiled {
  // v4 prefixes narrowest first, then v6 narrowest first, then the one
  // "unparsable" pseudo-prefix (no rules).
  std::vector<TrackedPrefix> prefixes;
  int v4_begin = 0, v4_end = 0, v6_begin = 0, v6_end = 0, unparsable = 0;
  std::vector<CompiledRule> rules;  // the config's, then the domain rule
  int domain_rule = -1;             // index of the domain-under-attack rule
  int64_t bucket_ns = 0;
  int64_t domain_bucket_ns = 0;
  absl::flat_hash_set<PrefixKey> allow;
  std::vector<int> allow_v4_lengths, allow_v6_lengths;
};

// Validates `config` and compiles it: prefixes, rules with their windows in
// buckets and slots, the allowlist, the domain rule.
absl::StatusOr<Compiled> Compile(const HarvestConfig& config);

}  // namespace rcptguard::harvest

#endif  // RCPTGUARD_SERVER_HARVEST_RULES_H_
