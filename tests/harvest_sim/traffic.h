// The labelled traffic model of the harvest simulator (issue 13, item 1).
//
// A Scenario is one kind of sender over a simulated run: its sources (client
// IPs), and every SMTP transaction it means to send, in time order, each
// recipient labelled valid or unknown. A scenario is labelled legitimate or
// harvester as a whole. Scenarios that must interact (a legitimate host
// beside an attacker in one /24) run together in one World; every other
// scenario has a world of its own, so that one row of the table never
// depends on another.
//
//   std::vector<World> worlds = BuildWorlds(absl::Hours(24));
//   for (const World& w : worlds)
//     for (const Scenario& s : w.scenarios) ... s.transactions ...
//
// Contract:
//  - Generation is deterministic: each scenario seeds its own
//    std::mt19937_64 from its name, so the same run length gives the same
//    transactions, whatever other scenarios are built or filtered out.
//  - Transaction::at is the time the source *intends* to start; a source
//    sends sequentially, so the simulator starts a transaction at the later
//    of `at` and the end of the source's previous one (a tarpit lowers the
//    source's rate).
//  - Recipient addresses are stable strings: the same person is the same
//    address in every transaction; a harvester's guesses are distinct
//    addresses, about 2 % of which exist.
//
// Thread safety: plain values; the functions are pure.
#ifndef RCPTGUARD_TESTS_HARVEST_SIM_TRAFFIC_H_
#define RCPTGUARD_TESTS_HARVEST_SIM_TRAFFIC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace rcptguard::harvest_sim {

// The domains every world serves, by index (Observation::unknown_by_domain).
inline constexpr std::string_view kDomains[] = {"example.com", "example.net",
                                                "example.org", "shop.example"};
inline constexpr int32_t kDomainCount = 4;

// How an edge asks rcptguard: once per RCPT (Haraka, the policy
// delegation adapter) or once per transaction with every recipient (the
// Postfix adapter with a merged batch).
enum class CallPattern : uint8_t { kPerRcpt, kBatch };

enum class Label : uint8_t { kLegitimate, kHarvester };

std::string_view LabelName(Label label);  // "legit", "harvester"

struct Recipient {
  std::string address;  // "user00042@example.com", stable
  int32_t domain = 0;   // index into kDomains
  bool valid = false;   // the directory knows it
  // A harvester's guess (what it wants to learn). Known-valid addresses a
  // harvester mixes in to dilute its share of unknowns are not probes; a
  // legitimate sender's recipients are never probes.
  bool probe = false;
};

struct Transaction {
  absl::Duration at;    // intended start, from the start of the run
  uint32_t source = 0;  // index into Scenario::sources
  // The sequential sender (one attacker host may rotate its source IP);
  // transactions of one stream never overlap. Unique within a scenario.
  uint32_t stream = 0;
  std::string edge;  // which MTA received it
  CallPattern pattern = CallPattern::kBatch;
  uint64_t session = 0;   // SMTP session id, unique per edge in a world
  std::string mail_from;  // empty: null sender (MAIL FROM:<>)
  bool authenticated = false;
  std::vector<Recipient> recipients;
};

// One sending client. A source sends sequentially.
struct Source {
  std::string ip;
  // What the bar bounds besides the source: its /24 or /64 for a rotating
  // harvester, the target domain for a botnet, else the IP itself.
  std::string group;
};

struct Scenario {
  std::string name;
  Label label = Label::kLegitimate;
  std::string description;
  std::vector<Source> sources;
  std::vector<Transaction> transactions;  // sorted by `at`
  // CIDRs the rcptguard policy allowlists for this scenario.
  std::vector<std::string> allowlist;
  // Share of unknown recipients among all recipients the generator claims
  // (checked by the tests).
  double min_unknown_share = 0.0;
  double max_unknown_share = 1.0;
};

struct World {
  std::string name;
  std::vector<Scenario> scenarios;
};

// Every world, each generated for a run of `run` (at least one hour).
std::vector<World> BuildWorlds(absl::Duration run);

// A stable 64-bit fingerprint of an address (FNV-1a, then a SplitMix64
// finalizer), standing in for the directory's keyed hash.
uint64_t Fingerprint(std::string_view address);

// Observation::transaction for a transaction: a hash of the edge, its
// session id and the envelope sender; never 0.
uint64_t TransactionId(const Transaction& txn);

// IPv4 /24 ("192.0.2.0/24") or IPv6 /64 ("2001:db8:1:2::/64") of an
// address as the generators write them (dotted quad, or four leading
// hextets followed by "::").
std::string NetworkOf(std::string_view ip);

}  // namespace rcptguard::harvest_sim

#endif  // RCPTGUARD_TESTS_HARVEST_SIM_TRAFFIC_H_
