// harvest_sim: runs issue 13's labelled traffic against rcptguard's harvest
// detector and the anchor policies, and prints a markdown table.
//
//   harvest_sim [--hours=24] [--scenario=REGEX] [--candidate]
//
// --candidate adds a column for harvest_sim::CandidateConfig() (candidate.h)
// beside HarvestConfig::Defaults(). Bar violations (issue 13) of each
// rcptguard column are listed after the tables.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "server/harvest/harvest.h"
#include "tests/harvest_sim/candidate.h"
#include "tests/harvest_sim/policy.h"
#include "tests/harvest_sim/simulator.h"
#include "tests/harvest_sim/traffic.h"

namespace {

int Usage() {
  std::cerr << "usage: harvest_sim [--hours=1..24] [--scenario=REGEX] "
               "[--candidate]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rcptguard::harvest_sim;  // NOLINT
  int hours = 24;
  std::string pattern = ".*";
  bool candidate = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.rfind("--hours=", 0) == 0) {
      if (!absl::SimpleAtoi(rcptguard::ToAbsl(arg.substr(8)), &hours) ||
          hours < 1 || hours > 24) {
        return Usage();
      }
    } else if (arg.rfind("--scenario=", 0) == 0) {
      pattern = std::string(arg.substr(11));
    } else if (arg == "--candidate") {
      candidate = true;
    } else {
      return Usage();
    }
  }
  std::regex re;
  try {
    re = std::regex(pattern);
  } catch (const std::regex_error& e) {
    std::cerr << "--scenario: " << e.what() << "\n";
    return 2;
  }

  const auto started = std::chrono::steady_clock::now();
  const absl::Duration run = absl::Hours(hours);
  std::vector<World> worlds;
  for (World& w : BuildWorlds(run)) {
    bool wanted = false;
    for (const Scenario& s : w.scenarios) {
      wanted |= std::regex_search(s.name, re);
    }
    if (wanted) worlds.push_back(std::move(w));
  }
  std::vector<PolicySpec> policies = {RcptguardPolicy(
      "rcptguard defaults", rcptguard::harvest::HarvestConfig::Defaults())};
  if (candidate) {
    policies.push_back(
        RcptguardPolicy("rcptguard candidate", CandidateConfig()));
  }
  policies.push_back(PostfixPolicy());
  policies.push_back(ExchangePolicy());
  policies.push_back(CiscoDhapPolicy());

  absl::StatusOr<SimResults> results = Simulate(worlds, policies, {.run = run});
  if (!results.ok()) {
    std::cerr << results.status() << "\n";
    return 1;
  }
  // A neighbour world runs whole, but only matching rows are printed.
  std::erase_if(results->scenarios, [&](const ScenarioResult& s) {
    return !std::regex_search(s.name, re);
  });
  std::cout << FormatTable(*results);
  for (const std::string& p : results->policies) {
    if (p.rfind("rcptguard", 0) != 0) continue;
    const std::vector<std::string> v = CheckBar(*results, p);
    std::cout << "\nIssue 13's bar, " << p << ": "
              << (v.empty() ? "met" : std::to_string(v.size()) + " violations")
              << "\n";
    for (const std::string& line : v) std::cout << "- " << line << "\n";
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  std::cerr << "simulated " << hours << " h in " << secs << " s\n";
  return 0;
}
