// The harvest simulator (issue 13, items 1 and 2): runs worlds of labelled
// traffic (traffic.h) against policies (policy.h) on a virtual clock, and
// measures what each scenario got.
//
//   SimOptions options{.run = absl::Hours(24)};
//   std::vector<PolicySpec> policies = {
//       RcptguardPolicy("rcptguard defaults", HarvestConfig::Defaults()),
//       PostfixPolicy(), ExchangePolicy(), CiscoDhapPolicy()};
//   absl::StatusOr<SimResults> r = Simulate(BuildWorlds(options.run),
//                                           policies, options);
//   std::cout << FormatTable(*r);
//   for (const std::string& v : CheckBar(*r, "rcptguard defaults")) ...
//
// The model: each stream of a scenario sends its transactions in order; a
// transaction starts at the later of its intended time and the end of the
// stream's previous one. Each edge call (one per RCPT, or one per
// transaction on a batching edge) happens at one virtual instant; the
// stream then waits for every answer's delay, plus kCallLatency per call,
// before its next call. Calls of all streams of a world are interleaved in
// time order on one FakeClock, so neighbours share the detector's state.
// After a disconnect the rest of the transaction is never sent; a blocked
// sender does not retry (a harvester keeps sending new guesses, which is
// what keeps it blocked). Transactions not started when the run ends are
// not counted.
//
// Thread safety: Simulate() uses only its arguments; call it from any
// thread.
#ifndef RCPTGUARD_TESTS_HARVEST_SIM_SIMULATOR_H_
#define RCPTGUARD_TESTS_HARVEST_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/harvest_sim/policy.h"
#include "tests/harvest_sim/traffic.h"

namespace rcptguard::harvest_sim {

inline constexpr absl::Duration kCallLatency = absl::Milliseconds(50);

struct SimOptions {
  absl::Duration run = absl::Hours(24);
};

// What one scenario got from one policy.
struct Measures {
  // Both labels.
  uint64_t transactions = 0;  // started before the run ended
  uint64_t recipients = 0;    // answered (sent RCPTs)
  uint64_t unsent = 0;        // transactions never started (backlog)

  // Harvesters: truthful answers to probes (guesses).
  uint64_t probes = 0;
  uint64_t truthful = 0;
  std::vector<uint32_t> truthful_by_hour;  // whole scenario, by answer time
  uint32_t worst_source_hour = 0;  // most truthful of one source in an hour
  uint32_t worst_group_hour = 0;   // of one group (/24, /64, domain)
  // Sum over sources of truthful answers before that source's first block
  // (tempfail, reject or disconnect).
  uint64_t truthful_before_block = 0;

  // Legitimate senders, in transactions (a transaction counts once).
  uint64_t delayed = 0;
  double delay_seconds = 0;
  uint64_t tempfailed = 0;  // any 451/421 (recipients cut off by it too)
  uint64_t rejected = 0;    // any 550 5.7.1 / DHAP 550
  uint64_t recipients_tempfailed = 0;
  uint64_t recipients_rejected = 0;

  double truthful_per_hour(absl::Duration run) const {
    return truthful / absl::ToDoubleHours(run);
  }
  uint32_t worst_hour() const;
};

struct ScenarioResult {
  std::string name;
  std::string world;
  Label label = Label::kLegitimate;
  std::string description;
  uint64_t transactions = 0;  // generated (what the senders meant to send)
  uint64_t probes = 0;        // generated guesses
  std::vector<Measures> by_policy;  // same order as SimResults::policies
};

struct SimResults {
  absl::Duration run;
  std::vector<std::string> policies;
  std::vector<ScenarioResult> scenarios;
};

// Runs every world against every policy (a fresh policy and clock each).
absl::StatusOr<SimResults> Simulate(const std::vector<World>& worlds,
                                    const std::vector<PolicySpec>& policies,
                                    const SimOptions& options);

// The bar of issue 13, for the policy named `policy`.
struct Bar {
  // Legitimate profiles: no tempfail, no reject, at most this much delay
  // over the run (the run is at most a day).
  double max_delay_seconds = 5;
  // Harvesters: at most this many truthful answers per source in any hour,
  // and per group (/24, /64, target domain) for rotating harvesters and
  // botnets.
  uint32_t max_per_source_hour = 50;
  uint32_t max_per_group_hour = 150;
  // And no more truthful answers over the run than under the best anchor
  // (policies whose name does not start with "rcptguard").
  bool at_most_best_anchor = true;
};

// One line per violation, e.g. "harv-null-sender: 300 truthful answers from
// one source in an hour (bar 50)"; empty when the policy meets the bar.
std::vector<std::string> CheckBar(const SimResults& results,
                                  const std::string& policy,
                                  const Bar& bar = Bar());

// A markdown table: one row per scenario, one column per policy.
std::string FormatTable(const SimResults& results);

}  // namespace rcptguard::harvest_sim

#endif  // RCPTGUARD_TESTS_HARVEST_SIM_SIMULATOR_H_
