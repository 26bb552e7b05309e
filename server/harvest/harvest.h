// Directory-harvest-attack (DHA) detection.
//
// After the directory has answered one SMTP transaction's recipients, the
// service hands the Detector the client IP and how many recipients were
// valid, unknown, not served (relay attempts) or malformed. The Detector
// counts them in sliding windows under the client's address aggregated at
// several prefixes (by default IPv4 /32 and /24, IPv6 /128 and /64), checks
// the configured rules, and answers a Verdict for the client: ACCEPT,
// TARPIT (with a delay that grows while the client keeps probing), TEMPFAIL
// (451 4.7.1) or REJECT (550 5.7.1, optionally held in a penalty box for a
// while after the probing stops). Because rcptguard sees every edge, a client
// that spreads its probes over several MTAs is still counted as one.
//
//   HarvestConfig config = HarvestConfig::Defaults();
//   auto detector = Detector::Create(config, RealClock::Get(), domain_count);
//   if (!detector.ok()) return detector.status();
//   Verdict v = (*detector)->Observe({.client_ip = "192.0.2.7", .valid = 1,
//                                     .unknown = 3});
//   if (v.action == Action::kReject) reply(v.reply.code, ...);
//
// Contract, in short (docs/harvest.md has the reasoning):
//  - Rules fire on unknown recipients in a window (HarvestRule says how:
//    counts, share of all recipients, distinct unknown recipients, distinct
//    offending addresses). The most severe firing rule over all of the
//    client's keys wins (REJECT > TEMPFAIL > TARPIT > ACCEPT).
//  - Normal and null-sender transactions are counted apart; a rule judges
//    one kind, and a null-sender rule's TEMPFAIL or REJECT applies to
//    null-sender transactions only. Penalty boxes hold for all traffic.
//  - A rule on a wider scope than the client's own address (a /24) spares
//    established clients: those whose own address sent recipients in the
//    longest window with fewer than a tenth unknown.
//  - Windows are summed from 60 buckets spanning the longest rule window;
//    a rule's window is rounded up to whole buckets. Counts per bucket
//    saturate at 65,535 per outcome. Null-sender counts and distinct
//    sketches use 6 slots over the same span.
//  - Authenticated and allowlisted clients always get ACCEPT; authenticated
//    recipients are counted in Stats() only, allowlisted ones in the
//    client's own key (visible in ListOffenders, never judged).
//  - A missing or unparsable client_ip is counted under one shared
//    "unparsable" key and always gets ACCEPT: it is the edge's bug, and
//    blocking that key would block every client of that edge.
//  - Memory is bounded: at most `max_tracked_keys` keys, each of fixed
//    size (docs/harvest.md); past the bound the least recently active key is
//    evicted, keys in an active penalty box last. Domain sketches are 800 bytes
//    per domain.
//
// Thread safety: Detector is safe to share between threads. State is split
// into shards by key hash, each with its own mutex; Observe() locks one shard
// at a time, once per key (two keys per address by default). Domain state has
// one mutex per domain. Nothing here blocks on I/O.
#ifndef RCPTGUARD_SERVER_HARVEST_HARVEST_H_
#define RCPTGUARD_SERVER_HARVEST_HARVEST_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/clock.h"
#include "server/harvest/ip_prefix.h"

namespace rcptguard::harvest {

// The rule name in verdicts decided by the domain-under-attack signal
// (HarvestConfig::domain_attack_action).
inline constexpr std::string_view kDomainAttackRule = "domain-under-attack";

// Ordered by severity: a larger value is more severe.
enum class Action : uint8_t {
  kAccept = 0,
  kTarpit = 1,
  kTempfail = 2,
  kReject = 3
};

// "ACCEPT", "TARPIT", "TEMPFAIL", "REJECT".
std::string_view ActionName(Action action);

// Why an observation was exempt from penalties.
enum class Exemption : uint8_t {
  kNone = 0,
  kDsn,            // empty MAIL FROM, few recipients
  kAuthenticated,  // the edge says the client authenticated
  kAllowlisted,    // client IP inside an allowlisted CIDR
  kUnparsableIp,   // client_ip missing or not an IP address
};

// Which traffic a rule counts and judges. Null-sender transactions (empty
// MAIL FROM: bounces, and harvesters posing as bounces) are counted in
// windows of their own, never in normal mail's, so bounces neither hide a
// harvest nor make a sender's normal mail look like one.
enum class Traffic : uint8_t {
  kNormal = 0,      // transactions with a sender
  kNullSender = 1,  // null-sender transactions (see HarvestConfig::exempt_dsn)
};

// One rule. Which keys it watches is given by `scopes`, each "v4/LEN" or
// "v6/LEN" naming a prefix length that is tracked (HarvestConfig::
// v4_prefixes / v6_prefixes).
struct HarvestRule {
  std::string name;                 // [A-Za-z0-9_.-]{1,64}; unique
  std::vector<std::string> scopes;  // e.g. {"v4/32", "v6/128"}
  absl::Duration window = absl::Hours(1);

  // Fires when, within `window` and counting only `traffic`:
  //   unknown >= min_unknown, total >= min_total,
  //   (min_unknown_ratio == 0 or unknown >= min_unknown_ratio * total),
  //   distinct unknown recipients >= min_distinct_unknown (an estimate: a
  //   harvest is many different addresses; one departed address asked
  //   again and again is one), and
  //   distinct client addresses (narrowest keys) that sent unknown
  //   recipients >= min_distinct_clients (for network scopes such as v4/24:
  //   one address alone cannot fire its network's rule).
  uint32_t min_unknown = 1;
  double min_unknown_ratio = 0.0;
  uint32_t min_total = 0;
  uint32_t min_distinct_unknown = 0;
  uint32_t min_distinct_clients = 0;
  Traffic traffic = Traffic::kNormal;
  // NULL_SENDER rules only, with action ACCEPT: while the rule fires, the
  // client's null-sender transactions are answered as if every recipient
  // were accepted (Verdict::accept_all). A bounce to an unknown address
  // cannot bounce again, so accepting it and dropping it later is safe;
  // a harvester posing as a bounce learns nothing, and a mail server that
  // relays bounces to forged addresses is neither deferred nor refused.
  bool accept_all = false;
  // Network scopes only (v4/24, v6/64): a client never seen before (no
  // recipients of its own in the detector's windows) whose network this rule
  // judges is answered as if every recipient were accepted
  // (Verdict::accept_all) instead of getting `action`. During a harvest
  // that rotates through fresh addresses of a network, such a client is
  // either the attacker's next address or a legitimate neighbour sending
  // for the first time; nothing rcptguard sees tells them apart. Deferring
  // it defers the neighbour's mail; answering its valid recipients
  // truthfully tells the attacker which guesses exist. Accepting every
  // recipient does neither: the attacker learns nothing and the
  // neighbour's mail goes through. The client's next transaction is judged
  // on what it sent (docs/harvest.md: first contact).
  bool new_client_accept_all = false;

  Action action = Action::kTarpit;

  // TARPIT only: in the n-th consecutive SMTP transaction in which the rule
  // fires for a key, each recipient costs base_delay * factor^(n-1), at
  // most max_delay: a call with k recipients is delayed k times that, at
  // most max_delay. So an edge that asks once per RCPT and one that asks
  // once per transaction escalate alike (per transaction, as told by
  // Observation::transaction; without one, each call is a transaction).
  // The streak ends at the first transaction of that key in which no
  // TARPIT rule fires.
  absl::Duration base_delay = absl::Seconds(1);
  double factor = 2.0;
  absl::Duration max_delay = absl::Seconds(30);

  // TEMPFAIL and REJECT only: after firing, the key keeps this action until
  // now + penalty_duration even if its window empties; firing again while
  // boxed extends the box. Zero: the action lasts while the rule fires.
  absl::Duration penalty_duration = absl::ZeroDuration();

  // Shadow mode for this rule alone: it fills Verdict::observed_* and the
  // observed stats, never Verdict::action.
  bool observe_only = false;

  // Text of the SMTP reply; empty for the default of the action.
  // Printable ASCII, at most 200 characters.
  std::string reply_text;
};

struct HarvestConfig {
  // Prefix lengths client IPs are aggregated at. Each 8..32 (v4) or
  // 16..128 (v6), 1 to 4 per family, no duplicates.
  std::vector<int> v4_prefixes = {32, 24};
  std::vector<int> v6_prefixes = {128, 64};

  std::vector<HarvestRule> rules;  // at most 32

  // Clients inside these CIDRs (own relays, monitoring) are never penalized.
  std::vector<std::string> allowlist;

  // A transaction with an empty MAIL FROM and at most this many recipients
  // (all outcomes) is a delivery status notification: it is counted as
  // null-sender traffic (Traffic::kNullSender), judged only by null-sender
  // rules and never by normal ones. A real DSN has one recipient; 0 treats
  // every null-sender transaction so. exempt_dsn = false counts them as
  // normal traffic. (Penalty boxes hold for all of a key's traffic: a
  // blocked client gets no answers by switching to a null sender.)
  bool exempt_dsn = true;
  uint32_t dsn_max_recipients = 1;
  // Authenticated clients (SMTP AUTH) are never penalized, and their
  // recipients are counted in Stats() only, never in the client's windows.
  bool exempt_authenticated = true;

  // Shadow mode for every rule: verdicts are computed and reported in
  // Verdict::observed_* and Stats(), Verdict::action stays ACCEPT.
  bool observe_only = false;

  // Bound on tracked keys (all prefixes together), 1..100,000,000.
  size_t max_tracked_keys = 1'000'000;
  // Lock shards, 1..4096 (fewer are used if max_tracked_keys is smaller).
  int shards = 64;

  // Domain-level signal: a served domain is "under attack" when at least
  // this many distinct clients (narrowest keys) probed unknown recipients
  // of it within domain_window. 0 turns the signal off; at most 1000.
  uint32_t domain_min_distinct_clients = 50;
  absl::Duration domain_window = absl::Hours(1);  // 1m..24h
  // While a domain is under attack, a transaction to it from a client that
  // is not established gets this action (ACCEPT: none). Established: the
  // client's own address sent recipients in the longest rule window, and
  // fewer than a tenth of them unknown. It bounds what a botnet of many
  // addresses, each probing a little, learns about one domain.
  Action domain_attack_action = Action::kTempfail;

  // What a cautious administrator can ship; see docs/harvest.md.
  static HarvestConfig Defaults();

  // OK, or InvalidArgument naming the first bad field, e.g.
  // "rules[1].window: must be between 1s and 24h".
  absl::Status Validate() const;
};

// One transaction's outcome, as the service saw it.
struct Observation {
  std::string_view client_ip;
  bool authenticated = false;
  bool dsn = false;  // empty MAIL FROM
  uint32_t valid = 0;
  uint32_t unknown = 0;
  uint32_t not_served = 0;  // relay attempts
  uint32_t malformed = 0;
  // (domain index in [0, domain_count), unknown recipients of that domain).
  // Out-of-range indexes are ignored and counted in Stats().
  absl::Span<const std::pair<int32_t, uint32_t>> unknown_by_domain;
  // The served domains (indexes) the transaction's valid and unknown
  // recipients belong to, in any order, duplicates allowed: the domains
  // the client asks about, whatever the answers.
  absl::Span<const int32_t> domains;
  // One 64-bit fingerprint per unknown recipient (the directory's keyed hash
  // of the normalized address), so that distinct unknown recipients can be
  // told from repeats of the same one. Fewer than `unknown` (e.g. none):
  // the rest count as distinct.
  absl::Span<const uint64_t> unknown_fingerprints;
  // Identifies the SMTP transaction this observation belongs to (a hash of
  // the edge, its session id and the envelope sender), so that an edge that
  // asks once per RCPT and one that asks once per transaction escalate
  // alike. 0: unknown; every observation is its own transaction.
  uint64_t transaction = 0;
  // Compute the verdict the client has now; count nothing, change nothing.
  bool dry_run = false;
};

struct SmtpReplyText {
  uint32_t code = 0;            // 0: no reply override (ACCEPT, TARPIT)
  std::string enhanced_status;  // "4.7.1", "5.7.1"
  std::string text;
};

struct Verdict {
  // What the edge should do. ACCEPT in observe-only mode.
  Action action = Action::kAccept;
  std::string rule;  // the rule that decided `action`; empty for ACCEPT
  // The key that decided (for ACCEPT, the client's narrowest key).
  PrefixKey key;
  // Unknown recipients of `key` in the deciding rule's window; for ACCEPT,
  // in the longest window of any rule on that key.
  uint32_t unknown_in_window = 0;
  absl::Duration delay = absl::ZeroDuration();  // TARPIT only
  // TEMPFAIL/REJECT: the latest time the block lasts if the client sends
  // nothing more (penalty box end, or when the window falls below the
  // threshold). InfinitePast otherwise.
  absl::Time blocked_until = absl::InfinitePast();
  SmtpReplyText reply;

  // What would happen if no rule were observe-only. Equal to action/rule
  // when nothing is in shadow mode.
  Action observed_action = Action::kAccept;
  std::string observed_rule;

  Exemption exempt = Exemption::kNone;

  // An accept_all rule fired (and nothing more severe): answer every
  // recipient of this transaction as accepted, whatever the directory says
  // (`rule` names it). The observed_* fields say the same in shadow mode.
  bool accept_all = false;
  bool observed_accept_all = false;
};

// Counts of recipients by outcome over a window.
struct WindowCounts {
  uint32_t valid = 0;
  uint32_t unknown = 0;
  uint32_t not_served = 0;
  uint32_t malformed = 0;
  uint32_t total() const { return valid + unknown + not_served + malformed; }
};

struct Offender {
  PrefixKey key;
  std::string key_text;      // "192.0.2.0/24"
  WindowCounts counts;       // normal traffic, over the longest rule window
  WindowCounts null_sender;  // null-sender traffic (valid, unknown only)
  uint32_t distinct_unknown = 0;  // estimate, both kinds of traffic
  uint32_t distinct_clients = 0;  // narrower keys with unknowns (networks)
  absl::Time last_seen = absl::InfinitePast();
  Verdict verdict;  // this key's own verdict for normal mail, as of now
  // ...and for a null-sender transaction (rules of NULL_SENDER traffic,
  // and boxes opened for normal traffic, which hold everything).
  Verdict null_sender_verdict;
};

struct DetectorStats {
  size_t tracked_keys = 0;
  size_t max_tracked_keys = 0;
  uint64_t evictions = 0;
  uint64_t evictions_penalized = 0;  // evicted while in an active penalty box
  size_t active_penalties = 0;       // keys in an enforced penalty box
  size_t active_observed_penalties = 0;  // including observe-only ones
  uint64_t observations = 0;             // not counting dry runs
  uint64_t dry_runs = 0;
  uint64_t exempt_dsn = 0;
  uint64_t exempt_authenticated = 0;
  uint64_t exempt_allowlisted = 0;
  uint64_t unparsable_ip = 0;  // includes missing_ip
  uint64_t missing_ip = 0;
  uint64_t bad_domain_index = 0;
  uint64_t verdicts[4] = {};           // by Action, as returned
  uint64_t observed_verdicts[4] = {};  // by Action, as if nothing were shadow
  size_t domains_under_attack = 0;
};

// Sharing between replicas: server/harvest/shared_state.h.
struct SharedKey;
struct MergeStats;

struct DomainStatus {
  uint32_t distinct_clients = 0;  // estimate over domain_window
  bool under_attack = false;
};

class Detector {
 public:
  // Validates `config`. `clock` must outlive the Detector. `domain_count` is
  // the number of served domains (indexes of Observation::unknown_by_domain).
  static absl::StatusOr<std::unique_ptr<Detector>> Create(HarvestConfig config,
                                                          const Clock* clock,
                                                          size_t domain_count);

  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // Counts `obs` (unless dry_run) and returns the client's verdict. For
  // known keys this allocates nothing on ACCEPT; other verdicts copy the
  // rule name and reply text into the Verdict.
  Verdict Observe(const Observation& obs);

  // The verdict a client at `client_ip` has now, for a transaction that is
  // neither authenticated nor a DSN; changes nothing (a dry run with no
  // recipients). Allowlisted and unparsable addresses report their
  // exemption.
  Verdict Peek(std::string_view client_ip) const;

  // Up to n tracked keys with unknown recipients or an active penalty, most
  // unknown (longest rule window) first, ties by key text.
  std::vector<Offender> ListOffenders(size_t n) const;

  // Removes state. An address removes every key that contains it (its /32
  // and /24 by default); a CIDR "net/len" removes every tracked key inside
  // it; "unparsable" removes the unparsable key. Domain sketches are kept.
  // Returns how many keys were removed; InvalidArgument for other input.
  absl::StatusOr<size_t> Forget(std::string_view ip_or_cidr);

  DetectorStats Stats() const;

  // One entry per served domain, by index.
  std::vector<DomainStatus> DomainStatuses() const;

  // Sharing between replicas (server/harvest_shared, docs/harvest-shared.md).
  // Nothing here is called on the request path except what Observe records.
  //
  // Starts recording, per key, what Observe counts, for TakeDeltas. Call
  // once, before the first Observe. `on_box_change` (may be empty) is
  // called after an Observe opened or changed a penalty box, with no lock of
  // the detector held, so the caller can write the box through at once; it
  // must be cheap and must not call back into the detector.
  void RecordDeltas(std::function<void()> on_box_change);
  // Moves out what Observe counted since the previous call, for at most
  // `max_keys` keys (the rest stay for the next call; calls start at a
  // rotating shard). Keys of the unparsable pseudo-client are never shared,
  // nor the deltas of clean keys: no unknown recipient in their windows and
  // no box (valid-only traffic, most of it, which no rule fires on).
  std::vector<SharedKey> TakeDeltas(size_t max_keys);
  // Folds the global state of keys (every replica's counts) into the local
  // windows: per bucket and slot, count = max(local, global + what this
  // replica counted since the deltas were taken); sketches are ORed; the
  // stronger or longer box wins. Counts never go down, so a Redis that lost
  // its data (restarted empty, refused a write) never lowers what this
  // replica saw itself. Keys new here are inserted like observed keys.
  MergeStats MergeShared(const std::vector<SharedKey>& global);
  // Forget, also naming the keys other replicas must drop: those removed
  // here and, for an address, every key it belongs to.
  struct Forgotten {
    size_t removed = 0;
    std::vector<PrefixKey> keys;
  };
  absl::StatusOr<Forgotten> ForgetKeys(std::string_view ip_or_cidr);
  // Width of one ring bucket (longest rule window / 60): replicas share
  // only with replicas of the same width.
  absl::Duration bucket_width() const;

 private:
  class Impl;
  explicit Detector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rcptguard::harvest

#endif  // RCPTGUARD_SERVER_HARVEST_HARVEST_H_
