#include "server/harvest/harvest.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace rcptguard::harvest {
namespace {

// Fixed memory per key: one ring of kRingBuckets buckets spanning the
// longest rule window; every rule sums its newest ceil(window / width).
constexpr int kRingBuckets = 60;
// Coarser slots over the same span, kSlotBuckets buckets each, for what is
// too big to keep per bucket: null-sender counts and the distinct sketches.
constexpr int kSlots = 6;
constexpr int kSlotBuckets = kRingBuckets / kSlots;
// Sketch widths (linear counting): distinct unknown recipients, and
// distinct narrower client keys with unknowns (for network keys).
constexpr int kRecipientBits = 64;
constexpr int kClientBits = 32;
// Domain sketches: kDomainBuckets buckets over domain_window, each a
// kDomainBits-bit linear-counting bitmap of client keys.
constexpr int kDomainBuckets = 12;
constexpr int kDomainBits = 512;
constexpr int kDomainWords = kDomainBits / 64;

constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();
constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();
constexpr uint32_t kChunkSlots = 256;
constexpr int kMaxPrefixesPerFamily = 4;
constexpr int kMaxKeys = kMaxPrefixesPerFamily;  // keys per observation
constexpr size_t kMaxRules = 32;
constexpr uint32_t kMaxDistinctUnknown = 150;
constexpr uint32_t kMaxDistinctClients = 50;
constexpr size_t kMaxAllowlist = 10000;
constexpr size_t kMaxReplyText = 200;
constexpr uint32_t kMaxDomainThreshold = 1000;
constexpr size_t kMaxTrackedKeysLimit = 100'000'000;

enum Outcome { kValid = 0, kUnknown, kNotServed, kMalformed, kOutcomes };
enum Mode { kEnforced = 0, kObserved = 1, kModes };
enum ListId : uint8_t { kActiveList = 0, kProtectedList = 1, kNoList = 2 };

// One bucket's counts: valid and unknown saturate at 65,535, relay attempts
// and malformed addresses (which only enter share tests) at 255.
struct Bucket {
  uint16_t valid;
  uint16_t unknown;
  uint8_t not_served;
  uint8_t malformed;

  uint32_t Get(int outcome) const {
    switch (outcome) {
      case kValid:
        return valid;
      case kUnknown:
        return unknown;
      case kNotServed:
        return not_served;
      default:
        return malformed;
    }
  }
  // Adds, saturating.
  void Add(int outcome, uint32_t n) {
    auto sat = [n](auto& field, uint32_t max) {
      field = static_cast<std::remove_reference_t<decltype(field)>>(
          std::min<uint32_t>(max, uint32_t{field} + std::min(n, max)));
    };
    switch (outcome) {
      case kValid:
        sat(valid, 0xffff);
        break;
      case kUnknown:
        sat(unknown, 0xffff);
        break;
      case kNotServed:
        sat(not_served, 0xff);
        break;
      default:
        sat(malformed, 0xff);
        break;
    }
  }
};

// Recipient counts by outcome. Trivial on purpose: scratch arrays of these
// on the hot path are not zero-filled.
struct Tally {
  uint32_t valid;
  uint32_t unknown;
  uint32_t not_served;
  uint32_t malformed;
  uint32_t total() const { return valid + unknown + not_served + malformed; }
  WindowCounts ToCounts() const {
    WindowCounts w;
    w.valid = valid;
    w.unknown = unknown;
    w.not_served = not_served;
    w.malformed = malformed;
    return w;
  }
};

struct Penalty {
  int64_t until_ns = kNoTime;
  int16_t rule = -1;
  Action action = Action::kAccept;
};

// Null-sender counts of one slot.
struct NullCounts {
  uint16_t unknown;
  uint16_t total;
};

// One tracked key. Times are Unix nanoseconds to keep the entry small.
struct Entry {
  PrefixKey key;
  uint8_t list = kNoList;
  uint8_t prefix = 0;                // index into Impl::prefixes_
  uint16_t streak[kModes] = {0, 0};  // consecutive TARPIT transactions
  uint32_t prev = kNil;
  uint32_t next = kNil;    // also the free-list link
  int64_t head_epoch = 0;  // bucket index of the newest bucket
  int64_t last_seen_ns = kNoTime;
  // The transaction the streak last advanced in (0: none).
  uint64_t last_transaction = 0;
  Penalty penalty[kModes];
  Tally total{};                            // sum of every bucket in the ring
  std::array<Bucket, kRingBuckets> ring{};  // normal traffic
  // Per slot (slot epoch = bucket epoch / kSlotBuckets, ring by modulo).
  std::array<NullCounts, kSlots> null_counts{};
  std::array<uint64_t, kSlots> recipients{};  // sketch of unknown recipients
  std::array<uint32_t, kSlots> clients{};     // sketch of offending clients
};

int64_t ToNanos(absl::Time t) { return absl::ToUnixNanos(t); }
absl::Time FromNanos(int64_t ns) {
  return ns == kNoTime ? absl::InfinitePast() : absl::FromUnixNanos(ns);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int RingSlot(int64_t epoch) {
  int64_t m = epoch % kRingBuckets;
  return static_cast<int>(m < 0 ? m + kRingBuckets : m);
}

int64_t SlotEpoch(int64_t bucket_epoch) {
  return FloorDiv(bucket_epoch, kSlotBuckets);
}

int SlotIndex(int64_t slot_epoch) {
  int64_t m = slot_epoch % kSlots;
  return static_cast<int>(m < 0 ? m + kSlots : m);
}

// Linear counting (Whang, Vander-Zanden, Taylor 1990): the number of
// distinct items that set `set` of `bits` bits; saturates at what the width
// can tell apart.
uint32_t LinearCountSlow(int set, int bits) {
  if (set == 0) return 0;
  const int zeros = bits - set;
  const double v = zeros == 0 ? 0.5 / bits : static_cast<double>(zeros) / bits;
  return static_cast<uint32_t>(std::lround(-bits * std::log(v)));
}

// The estimate for every possible popcount, computed once (no log() on the
// request path).
template <int kBits>
uint32_t LinearCount(int set) {
  static const std::array<uint32_t, kBits + 1> kTable = [] {
    std::array<uint32_t, kBits + 1> t{};
    for (int i = 0; i <= kBits; ++i) t[i] = LinearCountSlow(i, kBits);
    return t;
  }();
  return kTable[set];
}

// A 64-bit mix (the finalizer of MurmurHash3) spreading a fingerprint or key
// hash over the sketch bits.
uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

bool Penalized(const Entry& e, int64_t now_ns) {
  return e.penalty[kEnforced].until_ns > now_ns ||
         e.penalty[kObserved].until_ns > now_ns;
}

void Accumulate(Tally& w, const Bucket& b) {
  w.valid += b.valid;
  w.unknown += b.unknown;
  w.not_served += b.not_served;
  w.malformed += b.malformed;
}

// Adds to the newest bucket, saturating at 65,535 per outcome.
void AddCounts(Entry& e, const uint32_t (&add)[kOutcomes]) {
  Bucket& b = e.ring[RingSlot(e.head_epoch)];
  const Bucket before = b;
  for (int o = 0; o < kOutcomes; ++o) {
    b.Add(o, add[o]);
  }
  e.total.valid += b.valid - before.valid;
  e.total.unknown += b.unknown - before.unknown;
  e.total.not_served += b.not_served - before.not_served;
  e.total.malformed += b.malformed - before.malformed;
}

// Moves the ring forward to `epoch`, clearing buckets that left the span.
// Time that goes backwards is treated as the newest bucket.
void AdvanceRing(Entry& e, int64_t epoch) {
  if (epoch <= e.head_epoch) return;
  const int64_t old_slot = SlotEpoch(e.head_epoch);
  const int64_t new_slot = SlotEpoch(epoch);
  for (int64_t se = std::max(old_slot + 1, new_slot - kSlots + 1);
       se <= new_slot; ++se) {
    const int i = SlotIndex(se);
    e.null_counts[i] = {};
    e.recipients[i] = 0;
    e.clients[i] = 0;
  }
  if (epoch - e.head_epoch >= kRingBuckets) {
    e.ring = {};
    e.total = Tally{};
  } else {
    for (int64_t ep = e.head_epoch + 1; ep <= epoch; ++ep) {
      Bucket& b = e.ring[RingSlot(ep)];
      e.total.valid -= b.valid;
      e.total.unknown -= b.unknown;
      e.total.not_served -= b.not_served;
      e.total.malformed -= b.malformed;
      b = {};
    }
  }
  e.head_epoch = epoch;
}

// out[j] = counts of the newest windows[j] buckets as of `epoch`, for
// windows sorted ascending. Reads only, so it also serves Peek on a ring
// that was not advanced (then buckets past the head count as empty).
void SumWindows(const Entry& e, int64_t epoch, const std::vector<int>& windows,
                Tally* out) {
  const int64_t top = std::max(epoch, e.head_epoch);
  const int64_t oldest_live = e.head_epoch - kRingBuckets + 1;
  Tally run{};
  int64_t ep = e.head_epoch;
  int slot = RingSlot(ep);
  for (size_t j = 0; j < windows.size(); ++j) {
    const int n = windows[j];
    if (n == kRingBuckets && top == e.head_epoch) {
      out[j] = e.total;  // the whole ring; always the last window
      continue;
    }
    const int64_t lo = std::max(top - n + 1, oldest_live);
    for (; ep >= lo; --ep) {
      Accumulate(run, e.ring[slot]);
      slot = slot == 0 ? kRingBuckets - 1 : slot - 1;
    }
    out[j] = run;
  }
}

// Counts over the whole ring (the longest rule window) as of `epoch`.
Tally SumAll(const Entry& e, int64_t epoch) {
  static const std::vector<int>* const kWhole =
      new std::vector<int>{kRingBuckets};
  Tally out;
  SumWindows(e, epoch, *kWhole, &out);
  return out;
}

// What the slots say over the newest `slots` slots as of `epoch` (the
// current, partly filled slot included): null-sender counts and the two
// distinct estimates.
struct SlotSums {
  uint32_t null_unknown = 0;
  uint32_t null_total = 0;
  uint32_t distinct_unknown = 0;
  uint32_t distinct_clients = 0;
};

SlotSums SumSlots(const Entry& e, int64_t epoch, int slots) {
  SlotSums out;
  const int64_t top = SlotEpoch(std::max(epoch, e.head_epoch));
  const int64_t head = SlotEpoch(e.head_epoch);
  uint64_t recipients = 0;
  uint32_t clients = 0;
  for (int k = 0; k < slots; ++k) {
    const int64_t se = top - k;
    if (se > head || se <= head - kSlots) continue;  // empty or gone
    const int i = SlotIndex(se);
    out.null_unknown += e.null_counts[i].unknown;
    out.null_total += e.null_counts[i].total;
    recipients |= e.recipients[i];
    clients |= e.clients[i];
  }
  out.distinct_unknown =
      LinearCount<kRecipientBits>(__builtin_popcountll(recipients));
  out.distinct_clients = LinearCount<kClientBits>(__builtin_popcount(clients));
  return out;
}

// A possible verdict for one key; the most severe over all keys wins.
struct Candidate {
  Action action = Action::kAccept;
  int rule = -1;
  uint32_t unknown = 0;
  absl::Duration delay = absl::ZeroDuration();
  int64_t blocked_until_ns = kNoTime;
  PrefixKey key;
};

// Strict order: severity, then the longer block, the longer delay, the more
// unknown recipients. Ties keep the earlier (narrower) key.
bool Beats(const Candidate& a, const Candidate& b) {
  return std::tie(a.action, a.blocked_until_ns, a.delay, a.unknown) >
         std::tie(b.action, b.blocked_until_ns, b.delay, b.unknown);
}

bool ValidRuleName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool ValidReplyText(const std::string& text) {
  if (text.size() > kMaxReplyText) return false;
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

absl::Status Bad(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

SmtpReplyText DefaultReply(Action action) {
  switch (action) {
    case Action::kTempfail:
      return {451, "4.7.1", "Too many unknown recipients, try again later"};
    case Action::kReject:
      return {550, "5.7.1", "Too many unknown recipients"};
    default:
      return {};
  }
}

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

// ---------------------------------------------------------------------------
// Shards.

// Per-observation counters, kept in the shard of the client's narrowest key
// so threads working on different clients do not share a cache line. Plain
// relaxed atomics: they are bumped after the shard lock is released.
struct ShardCounters {
  std::atomic<uint64_t> observations{0};
  std::atomic<uint64_t> dry_runs{0};
  std::atomic<uint64_t> exempt_dsn{0};
  std::atomic<uint64_t> exempt_authenticated{0};
  std::atomic<uint64_t> exempt_allowlisted{0};
  std::atomic<uint64_t> unparsable_ip{0};
  std::atomic<uint64_t> missing_ip{0};
  std::atomic<uint64_t> bad_domain_index{0};
  std::atomic<uint64_t> verdicts[4] = {};
  std::atomic<uint64_t> observed_verdicts[4] = {};
};

void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}
uint64_t Load(const std::atomic<uint64_t>& c) {
  return c.load(std::memory_order_relaxed);
}

// A hash table from key to slot, entries in fixed-size chunks (allocated as
// the shard first fills, never freed or moved), and two intrusive LRU lists:
// keys in an active penalty box ("protected") and the rest ("active").
// Eviction takes the active list's tail first.
class alignas(64) Shard {
 public:
  mutable absl::Mutex mu;

  // Constant after construction.
  uint32_t capacity = 0;

  ShardCounters counters;

  Entry& At(uint32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return chunks_[slot / kChunkSlots][slot % kChunkSlots];
  }
  const Entry& At(uint32_t slot) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return chunks_[slot / kChunkSlots][slot % kChunkSlots];
  }

  uint32_t Find(const PrefixKey& key) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    auto it = index_.find(key);
    return it == index_.end() ? kNil : it->second;
  }

  // Finds `key`, or makes room for it (evicting if full) and starts a fresh
  // entry whose ring begins at `epoch`.
  uint32_t FindOrInsert(const PrefixKey& key, uint8_t prefix, int64_t epoch,
                        int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = index_.find(key);
    if (it != index_.end()) return it->second;
    const uint32_t slot = AllocateSlot(now_ns);
    Entry& e = At(slot);
    e = Entry();
    e.key = key;
    e.prefix = prefix;
    e.head_epoch = epoch;
    index_.emplace(key, slot);
    PushFront(kActiveList, slot);
    return slot;
  }

  bool Remove(const PrefixKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    const uint32_t slot = it->second;
    index_.erase(it);
    Unlink(slot);
    At(slot).next = free_head_;
    free_head_ = slot;
    return true;
  }

  // Moves `slot` to the front of the list its penalty state belongs in.
  void Touch(uint32_t slot, int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const ListId target =
        Penalized(At(slot), now_ns) ? kProtectedList : kActiveList;
    if (At(slot).list == target && head_[target] == slot) return;
    Unlink(slot);
    PushFront(target, slot);
  }

  size_t size() const ABSL_SHARED_LOCKS_REQUIRED(mu) { return index_.size(); }
  uint64_t evictions() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return evictions_;
  }
  uint64_t evictions_penalized() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return evictions_penalized_;
  }
  uint32_t protected_head() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return head_[kProtectedList];
  }

  const absl::flat_hash_map<PrefixKey, uint32_t>& index() const
      ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return index_;
  }
  // Collects keys first: removal while iterating the table is not allowed.
  template <typename Pred>
  size_t RemoveIf(Pred&& pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::vector<PrefixKey> doomed;
    for (const auto& [key, slot] : index_) {
      if (pred(key)) doomed.push_back(key);
    }
    for (const PrefixKey& key : doomed) Remove(key);
    return doomed.size();
  }

 private:
  uint32_t AllocateSlot(int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (free_head_ != kNil) {
      const uint32_t slot = free_head_;
      free_head_ = At(slot).next;
      return slot;
    }
    if (used_ < capacity) {
      const uint32_t slot = used_++;
      if (slot / kChunkSlots == chunks_.size()) {
        const uint32_t n = std::min(kChunkSlots, capacity - slot);
        chunks_.push_back(std::make_unique<Entry[]>(n));
      }
      return slot;
    }
    // Full: the least recently active key goes; a key in a penalty box only
    // when nothing else is left (or its box has expired).
    uint32_t victim = tail_[kProtectedList];
    if (victim == kNil || Penalized(At(victim), now_ns)) {
      if (tail_[kActiveList] != kNil) victim = tail_[kActiveList];
    }
    ++evictions_;
    if (Penalized(At(victim), now_ns)) ++evictions_penalized_;
    index_.erase(At(victim).key);
    Unlink(victim);
    return victim;
  }

  void Unlink(uint32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Entry& e = At(slot);
    if (e.list == kNoList) return;
    if (e.prev != kNil)
      At(e.prev).next = e.next;
    else
      head_[e.list] = e.next;
    if (e.next != kNil)
      At(e.next).prev = e.prev;
    else
      tail_[e.list] = e.prev;
    e.prev = e.next = kNil;
    e.list = kNoList;
  }

  void PushFront(ListId list, uint32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Entry& e = At(slot);
    e.list = list;
    e.prev = kNil;
    e.next = head_[list];
    if (head_[list] != kNil)
      At(head_[list]).prev = slot;
    else
      tail_[list] = slot;
    head_[list] = slot;
  }

  absl::flat_hash_map<PrefixKey, uint32_t> index_ ABSL_GUARDED_BY(mu);
  std::vector<std::unique_ptr<Entry[]>> chunks_ ABSL_GUARDED_BY(mu);
  uint32_t used_ ABSL_GUARDED_BY(mu) = 0;  // slots ever handed out
  uint32_t free_head_ ABSL_GUARDED_BY(mu) = kNil;
  uint32_t head_[2] ABSL_GUARDED_BY(mu) = {kNil, kNil};
  uint32_t tail_[2] ABSL_GUARDED_BY(mu) = {kNil, kNil};
  uint64_t evictions_ ABSL_GUARDED_BY(mu) = 0;
  uint64_t evictions_penalized_ ABSL_GUARDED_BY(mu) = 0;
};

// Distinct client keys that probed unknown recipients of one domain, as a
// ring of linear-counting bitmaps (Whang, Vander-Zanden, Taylor 1990).
struct DomainState {
  mutable absl::Mutex mu;
  int64_t head_epoch ABSL_GUARDED_BY(mu) = 0;
  uint64_t bits[kDomainBuckets][kDomainWords] ABSL_GUARDED_BY(mu) = {};

  void Advance(int64_t epoch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (epoch <= head_epoch) return;
    const int64_t steps = std::min<int64_t>(epoch - head_epoch, kDomainBuckets);
    for (int64_t i = 1; i <= steps; ++i) {
      std::memset(bits[Slot(head_epoch + i)], 0, sizeof(bits[0]));
    }
    head_epoch = epoch;
  }

  // Estimated distinct clients over the window as of `epoch`.
  uint32_t Estimate(int64_t epoch) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    uint64_t u[kDomainWords] = {};
    const int64_t top = std::max(epoch, head_epoch);
    for (int k = 0; k < kDomainBuckets; ++k) {
      const int64_t ep = top - k;
      if (ep <= head_epoch && ep > head_epoch - kDomainBuckets) {
        for (int w = 0; w < kDomainWords; ++w) u[w] |= bits[Slot(ep)][w];
      }
    }
    int set = 0;
    for (uint64_t w : u) set += __builtin_popcountll(w);
    const int zeros = kDomainBits - set;
    if (zeros == kDomainBits) return 0;
    // Saturated: report the most the bitmap can tell apart.
    const double v = zeros == 0 ? 1.0 / kDomainBits
                                : static_cast<double>(zeros) / kDomainBits;
    return static_cast<uint32_t>(std::lround(-kDomainBits * std::log(v)));
  }

  static int Slot(int64_t epoch) {
    int64_t m = epoch % kDomainBuckets;
    return static_cast<int>(m < 0 ? m + kDomainBuckets : m);
  }
};

}  // namespace

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
  c.rules.push_back(std::move(network_tempfail));
  HarvestRule network_reject =
      rule("network-reject", network, absl::Hours(1), 60, 0.5, Action::kReject);
  network_reject.min_distinct_clients = 5;
  network_reject.penalty_duration = absl::Hours(1);
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

// ---------------------------------------------------------------------------

class Detector::Impl {
 public:
  Impl(const HarvestConfig& config, Compiled compiled, const Clock* clock,
       size_t domain_count)
      : c_(std::move(compiled)),
        clock_(clock),
        exempt_dsn_(config.exempt_dsn),
        dsn_max_recipients_(config.dsn_max_recipients),
        exempt_authenticated_(config.exempt_authenticated),
        max_tracked_keys_(config.max_tracked_keys),
        domain_threshold_(config.domain_min_distinct_clients),
        num_shards_(std::min<size_t>(config.shards, config.max_tracked_keys)),
        shards_(std::make_unique<Shard[]>(num_shards_)),
        domain_count_(domain_count),
        domains_(std::make_unique<DomainState[]>(domain_count)) {
    for (size_t i = 0; i < num_shards_; ++i) {
      shards_[i].capacity =
          static_cast<uint32_t>(max_tracked_keys_ / num_shards_ +
                                (i < max_tracked_keys_ % num_shards_));
    }
  }

  Verdict Observe(const Observation& obs) {
    if (obs.dry_run) return Judge(obs, /*count=*/true);
    const absl::Time now = clock_->Now();
    const int64_t now_ns = ToNanos(now);
    const int64_t epoch = FloorDiv(now_ns, c_.bucket_ns);
    const std::optional<IpAddress> ip = ParseIp(obs.client_ip);
    const Exemption ex = Classify(obs, ip);
    KeyRef keys[kMaxKeys];
    const int nkeys = KeysFor(ip, keys);
    const uint32_t recipients =
        obs.valid + obs.unknown + obs.not_served + obs.malformed;

    Candidate best[kModes];
    uint32_t narrow_unknown = 0;
    bool established = false;
    bool probing = false;
    // Authenticated clients are counted in Stats() only; allowlisted and
    // unparsable ones under their own key only (never judged); everyone
    // else under every key, in the windows of its kind of traffic.
    const bool judged = ex == Exemption::kNone || ex == Exemption::kDsn;
    const int counted = ex == Exemption::kAuthenticated ? 0
                        : judged                        ? nkeys
                                                        : 1;
    const Traffic traffic =
        ex == Exemption::kDsn ? Traffic::kNullSender : Traffic::kNormal;
    Applied applied;
    applied.traffic = traffic;
    applied.transaction = obs.transaction;
    applied.recipients = recipients;
    for (int i = 0; i < counted; ++i) {
      const TrackedPrefix& p = c_.prefixes[keys[i].prefix];
      Shard& s = ShardFor(keys[i].hash);
      absl::MutexLock lock(&s.mu);
      const uint32_t slot =
          recipients > 0
              ? s.FindOrInsert(keys[i].key, keys[i].prefix, epoch, now_ns)
              : s.Find(keys[i].key);
      if (slot == kNil) continue;
      Entry& e = s.At(slot);
      AdvanceRing(e, epoch);
      if (i == 0) {
        // Judged on what the client sent before this transaction, so the
        // answer does not depend on whether these recipients exist.
        established = Established(e, e.total, now_ns);
      }
      AddObservation(e, obs, traffic, i == 0 ? 0 : keys[0].hash, now_ns);
      e.last_seen_ns = now_ns;

      Tally cum[kMaxRules];
      SumWindows(e, epoch, p.windows, cum);
      if (i == 0) {
        narrow_unknown = cum[p.longest()].unknown;
        // What counts toward a domain's attack signal: a client whose own
        // traffic looks like probing (at least two distinct unknown
        // recipients, half or more of what it sent), not a sender with a
        // typo among valid recipients: a large domain gets those from
        // many clients every hour.
        const Tally& all = cum[p.longest()];
        probing = obs.unknown > 0 && all.unknown >= 2 &&
                  uint64_t{all.unknown} * 2 >= all.total() &&
                  std::min(SumSlots(e, epoch, kSlots).distinct_unknown,
                           all.unknown) >= 2;
      }
      if (judged) {
        applied.spare = p.network && established;
        const uint64_t fired = Fired(e, p, cum, epoch, applied);
        UpdateState(e, p, fired, now_ns, applied);
        JudgeKey(e, p, cum, fired, epoch, now_ns, applied, best);
      }
      s.Touch(slot, now_ns);
    }
    // The domain signal is fed and applied by normal traffic only: bounces
    // to forged addresses (backscatter) from many MTAs are not an attack.
    if (judged && traffic == Traffic::kNormal) {
      if (probing) RecordDomains(obs, keys[0].hash, now_ns);
      if (!established) JudgeDomains(obs, now_ns, keys[0].key, best);
    }

    Verdict v = MakeVerdict(best, keys[0].key, narrow_unknown, ex);
    Count(obs, ip, ex, v, ShardFor(keys[0].hash).counters, /*dry=*/false);
    return v;
  }

  Verdict Peek(std::string_view client_ip) const {
    Observation obs;
    obs.client_ip = client_ip;
    obs.dry_run = true;
    return Judge(obs, /*count=*/false);
  }

  std::vector<Offender> ListOffenders(size_t n) const {
    if (n == 0) return {};
    const int64_t now_ns = ToNanos(clock_->Now());
    const int64_t epoch = FloorDiv(now_ns, c_.bucket_ns);
    struct Item {
      Offender o;
      bool operator<(const Item& other) const {  // "better" offenders first
        if (o.counts.unknown != other.o.counts.unknown) {
          return o.counts.unknown > other.o.counts.unknown;
        }
        return KeyOrder(o.key, other.o.key);
      }
    };
    // Max-heap on "worse": the top is the weakest of the n kept so far.
    std::priority_queue<Item> heap;
    for (size_t si = 0; si < num_shards_; ++si) {
      const Shard& s = shards_[si];
      absl::ReaderMutexLock lock(&s.mu);
      for (const auto& [key, slot] : s.index()) {
        const Entry& e = s.At(slot);
        const Tally all = SumAll(e, epoch);
        const SlotSums slots = SumSlots(e, epoch, kSlots);
        if (all.unknown == 0 && slots.null_unknown == 0 &&
            !Penalized(e, now_ns)) {
          continue;
        }
        Item item;
        item.o.key = e.key;
        item.o.counts = all.ToCounts();
        item.o.null_sender.unknown = slots.null_unknown;
        item.o.null_sender.valid = slots.null_total - slots.null_unknown;
        item.o.distinct_unknown = slots.distinct_unknown;
        item.o.distinct_clients = slots.distinct_clients;
        item.o.last_seen = FromNanos(e.last_seen_ns);
        if (heap.size() == n && !(item < heap.top())) continue;
        const TrackedPrefix& p = c_.prefixes[e.prefix];
        Tally cum[kMaxRules];
        SumWindows(e, epoch, p.windows, cum);
        Candidate best[kModes];
        const bool unparsable = e.prefix == c_.unparsable;
        if (!unparsable) {
          Applied applied;  // as a normal transaction of no recipients
          JudgeKey(e, p, cum, Fired(e, p, cum, epoch, applied), epoch, now_ns,
                   applied, best);
        }
        item.o.verdict = MakeVerdict(
            best, e.key, cum[p.longest()].unknown,
            unparsable ? Exemption::kUnparsableIp : Exemption::kNone);
        heap.push(std::move(item));
        if (heap.size() > n) heap.pop();
      }
    }
    std::vector<Offender> out;
    out.reserve(heap.size());
    while (!heap.empty()) {
      out.push_back(std::move(const_cast<Item&>(heap.top()).o));
      heap.pop();
    }
    std::reverse(out.begin(), out.end());
    for (Offender& o : out) o.key_text = FormatPrefixKey(o.key);
    return out;
  }

  absl::StatusOr<size_t> Forget(std::string_view text) {
    if (text == "unparsable") {
      const PrefixKey key = PrefixKey::Unparsable();
      Shard& s = ShardFor(absl::HashOf(key));
      absl::MutexLock lock(&s.mu);
      return s.Remove(key) ? 1 : 0;
    }
    if (text.find('/') != std::string_view::npos) {
      absl::StatusOr<PrefixKey> net = ParseCidr(text);
      if (!net.ok()) return net.status();
      size_t removed = 0;
      for (size_t si = 0; si < num_shards_; ++si) {
        Shard& s = shards_[si];
        absl::MutexLock lock(&s.mu);
        removed += s.RemoveIf(
            [&](const PrefixKey& key) { return Contains(*net, key); });
      }
      return removed;
    }
    const std::optional<IpAddress> ip = ParseIp(text);
    if (!ip.has_value()) {
      return absl::InvalidArgumentError(
          "not an IP address, a CIDR or \"unparsable\"");
    }
    KeyRef keys[kMaxKeys];
    const int nkeys = KeysFor(ip, keys);
    size_t removed = 0;
    for (int i = 0; i < nkeys; ++i) {
      Shard& s = ShardFor(keys[i].hash);
      absl::MutexLock lock(&s.mu);
      removed += s.Remove(keys[i].key) ? 1 : 0;
    }
    return removed;
  }

  DetectorStats Stats() const {
    const int64_t now_ns = ToNanos(clock_->Now());
    DetectorStats st;
    st.max_tracked_keys = max_tracked_keys_;
    for (size_t si = 0; si < num_shards_; ++si) {
      const Shard& s = shards_[si];
      {
        absl::ReaderMutexLock lock(&s.mu);
        st.tracked_keys += s.size();
        st.evictions += s.evictions();
        st.evictions_penalized += s.evictions_penalized();
        // Boxed keys sit on the protected list; it also holds keys whose box
        // has expired since they were last touched.
        for (uint32_t slot = s.protected_head(); slot != kNil;
             slot = s.At(slot).next) {
          const Entry& e = s.At(slot);
          if (e.penalty[kEnforced].until_ns > now_ns) ++st.active_penalties;
          if (Penalized(e, now_ns)) ++st.active_observed_penalties;
        }
      }
      const ShardCounters& k = s.counters;
      st.observations += Load(k.observations);
      st.dry_runs += Load(k.dry_runs);
      st.exempt_dsn += Load(k.exempt_dsn);
      st.exempt_authenticated += Load(k.exempt_authenticated);
      st.exempt_allowlisted += Load(k.exempt_allowlisted);
      st.unparsable_ip += Load(k.unparsable_ip);
      st.missing_ip += Load(k.missing_ip);
      st.bad_domain_index += Load(k.bad_domain_index);
      for (int a = 0; a < 4; ++a) {
        st.verdicts[a] += Load(k.verdicts[a]);
        st.observed_verdicts[a] += Load(k.observed_verdicts[a]);
      }
    }
    for (const DomainStatus& d : DomainStatuses()) {
      if (d.under_attack) ++st.domains_under_attack;
    }
    return st;
  }

  std::vector<DomainStatus> DomainStatuses() const {
    const int64_t epoch = FloorDiv(ToNanos(clock_->Now()), c_.domain_bucket_ns);
    std::vector<DomainStatus> out(domain_count_);
    for (size_t i = 0; i < domain_count_; ++i) {
      DomainState& d = domains_[i];
      absl::ReaderMutexLock lock(&d.mu);
      out[i].distinct_clients = d.Estimate(epoch);
      out[i].under_attack =
          domain_threshold_ > 0 && out[i].distinct_clients >= domain_threshold_;
    }
    return out;
  }

 private:
  // How the observation being judged applies to a key.
  struct Applied {
    Traffic traffic = Traffic::kNormal;
    uint64_t transaction = 0;
    uint32_t recipients = 0;  // in this call, all outcomes
    // A network key judging an established client: its rules do not apply.
    bool spare = false;
  };

  struct KeyRef {
    PrefixKey key;
    size_t hash = 0;
    uint8_t prefix = 0;
  };

  // Whether the client of narrowest key `e`, whose longest window holds
  // `all`, is established: its window has recipients, under a tenth
  // unknown.
  static bool Established(const Entry& e, const Tally& all, int64_t now_ns) {
    const uint32_t total = all.total();
    return total > 0 && uint64_t{all.unknown} * 10 < total;
  }

  // Counts `obs` into `e` (advanced to now) as `traffic`. `narrow_hash`:
  // for a network key, the hash of the client's own key, recorded in the
  // offending-clients sketch when the client sent unknown recipients; 0
  // for the client's own key.
  void AddObservation(Entry& e, const Observation& obs, Traffic traffic,
                      size_t narrow_hash, int64_t now_ns) const {
    const int si = SlotIndex(SlotEpoch(e.head_epoch));
    if (traffic == Traffic::kNormal) {
      const uint32_t add[kOutcomes] = {obs.valid, obs.unknown, obs.not_served,
                                       obs.malformed};
      AddCounts(e, add);
    } else {
      const uint32_t total =
          obs.valid + obs.unknown + obs.not_served + obs.malformed;
      NullCounts& n = e.null_counts[si];
      n.unknown = static_cast<uint16_t>(
          std::min<uint32_t>(0xffff, uint32_t{n.unknown} + obs.unknown));
      n.total = static_cast<uint16_t>(
          std::min<uint32_t>(0xffff, uint32_t{n.total} + total));
    }
    if (obs.unknown == 0) return;
    uint64_t bits = 0;
    uint32_t k = 0;
    for (; k < obs.unknown && k < obs.unknown_fingerprints.size(); ++k) {
      bits |=
          uint64_t{1} << (Mix(obs.unknown_fingerprints[k]) % kRecipientBits);
    }
    // Unknown recipients without a fingerprint count as distinct.
    if (k < obs.unknown) {
      const uint32_t rest =
          std::min<uint32_t>(obs.unknown - k, kRecipientBits * 4);
      const uint64_t first =
          unfingerprinted_.fetch_add(rest, std::memory_order_relaxed);
      for (uint32_t j = 0; j < rest; ++j) {
        bits |= uint64_t{1} << (Mix(first + j) % kRecipientBits);
      }
    }
    e.recipients[si] |= bits;
    if (narrow_hash != 0) {
      e.clients[si] |= uint32_t{1} << (Mix(narrow_hash) % kClientBits);
    }
  }

  // While a domain the transaction asks about is under attack, a client
  // that is not established gets the domain rule's action.
  void JudgeDomains(const Observation& obs, int64_t now_ns,
                    const PrefixKey& narrow, Candidate* best) const {
    if (c_.domain_rule < 0 || domain_threshold_ == 0 || obs.domains.empty()) {
      return;
    }
    const int64_t epoch = FloorDiv(now_ns, c_.domain_bucket_ns);
    for (const int32_t d : obs.domains) {
      if (d < 0 || static_cast<size_t>(d) >= domain_count_) continue;
      DomainState& state = domains_[d];
      uint32_t estimate;
      {
        absl::ReaderMutexLock lock(&state.mu);
        estimate = state.Estimate(epoch);
      }
      if (estimate < domain_threshold_) continue;
      const CompiledRule& cr = c_.rules[c_.domain_rule];
      Candidate cand;
      cand.action = cr.rule.action;
      cand.rule = c_.domain_rule;
      cand.key = narrow;
      // At least until the next domain bucket, when the signal is re-read.
      cand.blocked_until_ns = (epoch + 1) * c_.domain_bucket_ns;
      for (int m = cr.shadow ? kObserved : kEnforced; m < kModes; ++m) {
        if (Beats(cand, best[m])) best[m] = cand;
      }
      return;
    }
  }

  static bool KeyOrder(const PrefixKey& a, const PrefixKey& b) {
    return std::tie(a.family, a.bytes, a.prefix_len) <
           std::tie(b.family, b.bytes, b.prefix_len);
  }

  Shard& ShardFor(size_t hash) const {
    // The table inside a shard uses the hash's low bits; pick the shard from
    // the high ones so the two stay independent.
    const uint64_t hi = static_cast<uint64_t>(hash) >> 32;
    return shards_[(hi * num_shards_) >> 32];
  }

  // The client's keys, narrowest first; one "unparsable" key if no IP.
  int KeysFor(const std::optional<IpAddress>& ip, KeyRef* out) const {
    if (!ip.has_value()) {
      out[0].key = PrefixKey::Unparsable();
      out[0].prefix = static_cast<uint8_t>(c_.unparsable);
      out[0].hash = absl::HashOf(out[0].key);
      return 1;
    }
    const bool v4 = ip->family == IpFamily::kV4;
    const int begin = v4 ? c_.v4_begin : c_.v6_begin;
    const int end = v4 ? c_.v4_end : c_.v6_end;
    int n = 0;
    for (int p = begin; p < end; ++p, ++n) {
      out[n].key = MaskTo(*ip, c_.prefixes[p].len);
      out[n].prefix = static_cast<uint8_t>(p);
      out[n].hash = absl::HashOf(out[n].key);
    }
    return n;
  }

  bool Allowlisted(const IpAddress& ip) const {
    const std::vector<int>& lens =
        ip.family == IpFamily::kV4 ? c_.allow_v4_lengths : c_.allow_v6_lengths;
    for (int len : lens) {
      if (c_.allow.contains(MaskTo(ip, len))) return true;
    }
    return false;
  }

  Exemption Classify(const Observation& obs,
                     const std::optional<IpAddress>& ip) const {
    if (!ip.has_value()) return Exemption::kUnparsableIp;
    if (!c_.allow.empty() && Allowlisted(*ip)) return Exemption::kAllowlisted;
    if (obs.authenticated && exempt_authenticated_)
      return Exemption::kAuthenticated;
    if (obs.dsn && exempt_dsn_) {
      const uint64_t total =
          uint64_t{obs.valid} + obs.unknown + obs.not_served + obs.malformed;
      if (dsn_max_recipients_ == 0 || total <= dsn_max_recipients_) {
        return Exemption::kDsn;
      }
    }
    return Exemption::kNone;
  }

  // Bit i set iff p.rules[i] fires for this traffic on these counts.
  uint64_t Fired(const Entry& e, const TrackedPrefix& p, const Tally* cum,
                 int64_t epoch, const Applied& applied) const {
    if (applied.spare) return 0;
    uint64_t fired = 0;
    SlotSums sums[kSlots + 1];
    bool have[kSlots + 1] = {};
    for (size_t i = 0; i < p.rules.size(); ++i) {
      const CompiledRule& cr = c_.rules[p.rules[i]];
      const HarvestRule& r = cr.rule;
      if (r.traffic != applied.traffic) continue;
      const bool needs_slots = r.traffic == Traffic::kNullSender ||
                               r.min_distinct_unknown > 0 ||
                               r.min_distinct_clients > 0;
      // The slots are read only when the cheap tests pass (for normal
      // traffic the ring's counts come first).
      auto slot_sums = [&]() -> const SlotSums& {
        if (!have[cr.slots]) {
          sums[cr.slots] = SumSlots(e, epoch, cr.slots);
          have[cr.slots] = true;
        }
        return sums[cr.slots];
      };
      uint32_t unknown, total;
      if (r.traffic == Traffic::kNullSender) {
        unknown = slot_sums().null_unknown;
        total = slot_sums().null_total;
      } else {
        const Tally& w = cum[p.window_of[p.rules[i]]];
        unknown = w.unknown;
        total = w.total();
      }
      if (unknown < r.min_unknown || total < r.min_total) continue;
      if (r.min_unknown_ratio > 0 &&
          static_cast<double>(unknown) < r.min_unknown_ratio * total) {
        continue;
      }
      if (needs_slots) slot_sums();
      if (r.min_distinct_unknown > 0 &&
          std::min(sums[cr.slots].distinct_unknown, unknown) <
              r.min_distinct_unknown) {
        continue;
      }
      if (r.min_distinct_clients > 0 &&
          sums[cr.slots].distinct_clients < r.min_distinct_clients) {
        continue;
      }
      fired |= uint64_t{1} << i;
    }
    return fired;
  }

  // Observe only: advances tarpit streaks and opens or extends penalty
  // boxes for the rules that fired.
  void UpdateState(Entry& e, const TrackedPrefix& p, uint64_t fired,
                   int64_t now_ns, const Applied& applied) const {
    bool tarpit[kModes] = {false, false};
    for (size_t i = 0; i < p.rules.size(); ++i) {
      if ((fired >> i & 1) == 0) continue;
      const CompiledRule& cr = c_.rules[p.rules[i]];
      const Mode first = cr.shadow ? kObserved : kEnforced;
      if (cr.rule.action == Action::kTarpit) {
        for (int m = first; m < kModes; ++m) tarpit[m] = true;
        continue;
      }
      if (cr.rule.penalty_duration <= absl::ZeroDuration()) continue;
      const int64_t until =
          now_ns + absl::ToInt64Nanoseconds(cr.rule.penalty_duration);
      for (int m = first; m < kModes; ++m) {
        Penalty& pen = e.penalty[m];
        const bool active = pen.until_ns > now_ns;
        if (!active || cr.rule.action > pen.action) {
          pen =
              Penalty{until, static_cast<int16_t>(p.rules[i]), cr.rule.action};
        } else if (cr.rule.action == pen.action && until > pen.until_ns) {
          pen.until_ns = until;
          pen.rule = static_cast<int16_t>(p.rules[i]);
        }
      }
    }
    // The streak counts transactions: further calls of the transaction it
    // last advanced in keep it (an edge asking once per RCPT escalates as
    // one asking once per transaction).
    const bool same =
        applied.transaction != 0 && applied.transaction == e.last_transaction;
    for (int m = 0; m < kModes; ++m) {
      if (!tarpit[m]) {
        if (!same) e.streak[m] = 0;
      } else if (!same || e.streak[m] == 0) {
        if (e.streak[m] < std::numeric_limits<uint16_t>::max()) ++e.streak[m];
      }
    }
    if (fired != 0 || !same) e.last_transaction = applied.transaction;
  }

  // When the window of rule `cr` would fall below min_unknown if the client
  // sent nothing more: the time the bucket that tips it leaves the window.
  int64_t WindowExpiry(const Entry& e, int64_t epoch, const CompiledRule& cr,
                       uint32_t unknown) const {
    const int64_t top = std::max(epoch, e.head_epoch);
    const int64_t lo =
        std::max(top - cr.buckets + 1, e.head_epoch - kRingBuckets + 1);
    int64_t remaining = unknown;
    int slot = RingSlot(lo);
    for (int64_t ep = lo; ep <= e.head_epoch; ++ep) {  // oldest first
      remaining -= e.ring[slot].unknown;
      if (remaining < cr.rule.min_unknown)
        return (ep + cr.buckets) * c_.bucket_ns;
      slot = slot + 1 == kRingBuckets ? 0 : slot + 1;
    }
    return (e.head_epoch + cr.buckets) * c_.bucket_ns;
  }

  // Folds this key's firing rules and penalty boxes into best[].
  void JudgeKey(const Entry& e, const TrackedPrefix& p, const Tally* cum,
                uint64_t fired, int64_t epoch, int64_t now_ns,
                const Applied& applied, Candidate* best) const {
    // An established client is judged by its own address, not its network.
    if (applied.spare) return;
    for (size_t i = 0; i < p.rules.size(); ++i) {
      if ((fired >> i & 1) == 0) continue;
      const int r = p.rules[i];
      const CompiledRule& cr = c_.rules[r];
      const int first = cr.shadow ? kObserved : kEnforced;
      bool can_win = false;
      for (int m = first; m < kModes; ++m) {
        can_win = can_win || cr.rule.action >= best[m].action;
      }
      if (!can_win) continue;
      Candidate cand;
      cand.action = cr.rule.action;
      cand.rule = r;
      cand.unknown = cr.rule.traffic == Traffic::kNullSender
                         ? SumSlots(e, epoch, cr.slots).null_unknown
                         : cum[p.window_of[r]].unknown;
      cand.key = e.key;
      if (cr.rule.action == Action::kAccept) {
        // accept_all: no block; it wins over a plain ACCEPT by its count.
        cand.unknown = std::max<uint32_t>(cand.unknown, 1);
      } else if (cr.rule.action != Action::kTarpit) {
        cand.blocked_until_ns =
            cr.rule.traffic == Traffic::kNormal
                ? WindowExpiry(e, epoch, cr, cand.unknown)
                : (SlotEpoch(std::max(epoch, e.head_epoch)) + 1) *
                      kSlotBuckets * c_.bucket_ns;
      }
      for (int m = first; m < kModes; ++m) {
        if (cr.rule.action == Action::kTarpit) {
          // Each recipient of the call costs the transaction's delay.
          const absl::Duration each = cr.Delay(e.streak[m]);
          cand.delay =
              std::min(each * std::max<uint32_t>(applied.recipients, 1),
                       cr.rule.max_delay);
        }
        if (Beats(cand, best[m])) best[m] = cand;
      }
    }
    for (int m = 0; m < kModes; ++m) {
      const Penalty& pen = e.penalty[m];
      if (pen.until_ns <= now_ns || pen.rule < 0) continue;
      // A box a null-sender rule opened holds null-sender traffic only; a
      // box for normal traffic holds everything.
      if (c_.rules[pen.rule].rule.traffic == Traffic::kNullSender &&
          applied.traffic != Traffic::kNullSender) {
        continue;
      }
      Candidate cand;
      cand.action = pen.action;
      cand.rule = pen.rule;
      const int w = p.window_of[pen.rule];
      cand.unknown = w < 0 ? 0 : cum[w].unknown;
      cand.blocked_until_ns = pen.until_ns;
      cand.key = e.key;
      if (Beats(cand, best[m])) best[m] = cand;
    }
  }

  // The verdict for a dry run or Peek: reads only, under reader locks.
  Verdict Judge(const Observation& obs, bool count) const {
    const int64_t now_ns = ToNanos(clock_->Now());
    const int64_t epoch = FloorDiv(now_ns, c_.bucket_ns);
    const std::optional<IpAddress> ip = ParseIp(obs.client_ip);
    const Exemption ex = Classify(obs, ip);
    KeyRef keys[kMaxKeys];
    const int nkeys = KeysFor(ip, keys);
    Candidate best[kModes];
    uint32_t narrow_unknown = 0;
    bool established = false;
    const bool judged = ex == Exemption::kNone || ex == Exemption::kDsn;
    Applied applied;
    applied.traffic =
        ex == Exemption::kDsn ? Traffic::kNullSender : Traffic::kNormal;
    applied.transaction = obs.transaction;
    applied.recipients =
        obs.valid + obs.unknown + obs.not_served + obs.malformed;
    const int looked = judged ? nkeys : 1;
    for (int i = 0; i < looked; ++i) {
      const TrackedPrefix& p = c_.prefixes[keys[i].prefix];
      const Shard& s = ShardFor(keys[i].hash);
      absl::ReaderMutexLock lock(&s.mu);
      const uint32_t slot = s.Find(keys[i].key);
      if (slot == kNil) continue;
      const Entry& e = s.At(slot);
      Tally cum[kMaxRules];
      SumWindows(e, epoch, p.windows, cum);
      if (i == 0) {
        narrow_unknown = cum[p.longest()].unknown;
        const Tally all = SumAll(e, epoch);
        established = Established(e, all, now_ns);
      }
      if (judged) {
        applied.spare = p.network && established;
        JudgeKey(e, p, cum, Fired(e, p, cum, epoch, applied), epoch, now_ns,
                 applied, best);
      }
    }
    if (judged && !established && applied.traffic == Traffic::kNormal) {
      JudgeDomains(obs, now_ns, keys[0].key, best);
    }
    Verdict v = MakeVerdict(best, keys[0].key, narrow_unknown, ex);
    if (count) Count(obs, ip, ex, v, ShardFor(keys[0].hash).counters, true);
    return v;
  }

  Verdict MakeVerdict(const Candidate* best, const PrefixKey& narrow,
                      uint32_t narrow_unknown, Exemption ex) const {
    Verdict v;
    v.exempt = ex;
    v.key = narrow;
    v.unknown_in_window = narrow_unknown;
    const Candidate& enf = best[kEnforced];
    if (enf.action == Action::kAccept && enf.rule >= 0) {
      // An accept_all rule: no block, every recipient answered accepted.
      v.accept_all = true;
      v.rule = c_.rules[enf.rule].rule.name;
      v.key = enf.key;
      v.unknown_in_window = enf.unknown;
    }
    if (enf.action != Action::kAccept) {
      const CompiledRule& cr = c_.rules[enf.rule];
      v.action = enf.action;
      v.rule = cr.rule.name;
      v.key = enf.key;
      v.unknown_in_window = enf.unknown;
      v.delay = enf.delay;
      v.blocked_until = FromNanos(enf.blocked_until_ns);
      v.reply = cr.reply;
    }
    const Candidate& obs = best[kObserved];
    v.observed_action = obs.action;
    if (obs.rule >= 0) v.observed_rule = c_.rules[obs.rule].rule.name;
    v.observed_accept_all = obs.action == Action::kAccept && obs.rule >= 0;
    return v;
  }

  void Count(const Observation& obs, const std::optional<IpAddress>& ip,
             Exemption ex, const Verdict& v, ShardCounters& k, bool dry) const {
    if (dry) {
      Bump(k.dry_runs);
      return;
    }
    Bump(k.observations);
    switch (ex) {
      case Exemption::kDsn:
        Bump(k.exempt_dsn);
        break;
      case Exemption::kAuthenticated:
        Bump(k.exempt_authenticated);
        break;
      case Exemption::kAllowlisted:
        Bump(k.exempt_allowlisted);
        break;
      case Exemption::kUnparsableIp:
        Bump(k.unparsable_ip);
        if (obs.client_ip.empty()) Bump(k.missing_ip);
        if (!logged_unparsable_.exchange(true, std::memory_order_relaxed)) {
          const std::string_view head = obs.client_ip.substr(0, 64);
          LogWarning(
              "harvest_unparsable_client_ip",
              {{"client_ip", absl::CHexEscape(std::string(head))},
               {"treatment",
                "counted under the shared key "
                "'unparsable', never penalized"},
               {"logged", "once per detector; see unparsable_ip stats"}});
        }
        break;
      case Exemption::kNone:
        break;
    }
    Bump(k.verdicts[static_cast<int>(v.action)]);
    Bump(k.observed_verdicts[static_cast<int>(v.observed_action)]);
    uint64_t bad = 0;
    for (const auto& [index, n] : obs.unknown_by_domain) {
      if (index >= 0 && static_cast<size_t>(index) < domain_count_) continue;
      ++bad;
      if (!logged_bad_domain_.exchange(true, std::memory_order_relaxed)) {
        LogWarning(
            "harvest_bad_domain_index",
            {{"domain_index", index},
             {"domain_count", static_cast<uint64_t>(domain_count_)},
             {"logged", "once per detector; see bad_domain_index stats"}});
      }
    }
    if (bad > 0) Bump(k.bad_domain_index, bad);
  }

  void RecordDomains(const Observation& obs, size_t client_hash,
                     int64_t now_ns) {
    if (obs.unknown_by_domain.empty() || domain_threshold_ == 0) return;
    const int64_t epoch = FloorDiv(now_ns, c_.domain_bucket_ns);
    const int bit = static_cast<int>(client_hash % kDomainBits);
    for (const auto& [index, n] : obs.unknown_by_domain) {
      if (n == 0 || index < 0 || static_cast<size_t>(index) >= domain_count_) {
        continue;
      }
      DomainState& d = domains_[index];
      absl::MutexLock lock(&d.mu);
      d.Advance(epoch);
      d.bits[DomainState::Slot(d.head_epoch)][bit / 64] |= uint64_t{1}
                                                           << (bit % 64);
    }
  }

  const Compiled c_;
  const Clock* const clock_;
  const bool exempt_dsn_;
  const uint32_t dsn_max_recipients_;
  const bool exempt_authenticated_;
  const size_t max_tracked_keys_;
  const uint32_t domain_threshold_;
  const size_t num_shards_;
  // The shards and domain states guard themselves (see their mutexes).
  const std::unique_ptr<Shard[]> shards_;
  const size_t domain_count_;
  const std::unique_ptr<DomainState[]> domains_;
  // Stands in for the fingerprints of unknown recipients that came without
  // one: each such recipient counts as a new one.
  mutable std::atomic<uint64_t> unfingerprinted_{0};
  // Bad input from the caller is logged once, then only counted.
  mutable std::atomic<bool> logged_unparsable_{false};
  mutable std::atomic<bool> logged_bad_domain_{false};
};

// ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Detector>> Detector::Create(
    HarvestConfig config, const Clock* clock, size_t domain_count) {
  if (clock == nullptr)
    return absl::InvalidArgumentError("clock: must not be null");
  absl::StatusOr<Compiled> compiled = Compile(config);
  if (!compiled.ok()) return compiled.status();
  return std::unique_ptr<Detector>(new Detector(std::make_unique<Impl>(
      config, *std::move(compiled), clock, domain_count)));
}

Detector::Detector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Detector::~Detector() = default;

Verdict Detector::Observe(const Observation& obs) {
  return impl_->Observe(obs);
}
Verdict Detector::Peek(std::string_view client_ip) const {
  return impl_->Peek(client_ip);
}
std::vector<Offender> Detector::ListOffenders(size_t n) const {
  return impl_->ListOffenders(n);
}
absl::StatusOr<size_t> Detector::Forget(std::string_view ip_or_cidr) {
  return impl_->Forget(ip_or_cidr);
}
DetectorStats Detector::Stats() const { return impl_->Stats(); }
std::vector<DomainStatus> Detector::DomainStatuses() const {
  return impl_->DomainStatuses();
}

}  // namespace rcptguard::harvest
