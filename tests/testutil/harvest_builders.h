// Small builders the harvest tests share (tests/unit/harvest,
// tests/unit/harvest_shared): an observation, and a config with one client
// rule.
//
// Thread safety: plain functions returning values.
#ifndef RCPTGUARD_TESTS_TESTUTIL_HARVEST_BUILDERS_H_
#define RCPTGUARD_TESTS_TESTUTIL_HARVEST_BUILDERS_H_

#include <cstdint>
#include <string_view>

#include "absl/time/time.h"
#include "server/harvest/harvest.h"

namespace rcptguard::testing {

// `unknown` unknown and `valid` valid recipients from `ip`; nothing else
// set (no sender, no session, not authenticated).
inline harvest::Observation Recipients(std::string_view ip, uint32_t unknown,
                                       uint32_t valid = 0) {
  harvest::Observation o;
  o.client_ip = ip;
  o.unknown = unknown;
  o.valid = valid;
  return o;
}

// The defaults with one client rule, "probe" on v4/32, instead of theirs,
// and no domain-under-attack detection: what one rule does alone.
inline harvest::HarvestConfig OneClientRule(
    harvest::Action action, uint32_t min_unknown, absl::Duration window,
    absl::Duration penalty = absl::ZeroDuration()) {
  harvest::HarvestConfig c = harvest::HarvestConfig::Defaults();
  harvest::HarvestRule r;
  r.name = "probe";
  r.scopes = {"v4/32"};
  r.window = window;
  r.min_unknown = min_unknown;
  r.action = action;
  r.penalty_duration = penalty;
  c.rules = {r};
  c.domain_min_distinct_clients = 0;
  return c;
}

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_TESTUTIL_HARVEST_BUILDERS_H_
