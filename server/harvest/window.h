// Internal to server/harvest: a tracked key's counts: windows, slots, sketches,
// candidates, shared by its files. Not an API: only server/harvest/*.cc include
// it.
//
// Thread safety: as documented on each type; Shard and DomainState guard
// themselves with their own mutexes.
#ifndef RCPTGUARD_SERVER_HARVEST_WINDOW_H_
#define RCPTGUARD_SERVER_HARVEST_WINDOW_H_

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
#include "server/harvest/harvest.h"

namespace rcptguard::harvest {

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

inline int64_t ToNanos(absl::Time t) { return absl::ToUnixNanos(t); }
inline absl::Time FromNanos(int64_t ns) {
  return ns == kNoTime ? absl::InfinitePast() : absl::FromUnixNanos(ns);
}

inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

inline int RingSlot(int64_t epoch) {
  int64_t m = epoch % kRingBuckets;
  return static_cast<int>(m < 0 ? m + kRingBuckets : m);
}

inline int64_t SlotEpoch(int64_t bucket_epoch) {
  return FloorDiv(bucket_epoch, kSlotBuckets);
}

inline int SlotIndex(int64_t slot_epoch) {
  int64_t m = slot_epoch % kSlots;
  return static_cast<int>(m < 0 ? m + kSlots : m);
}

// Linear counting (Whang, Vander-Zanden, Taylor 1990): the number of
// distinct items that set `set` of `bits` bits; saturates at what the width
// can tell apart.
inline uint32_t LinearCountSlow(int set, int bits) {
  if (set == 0) return 0;
  const int zeros = bits - set;
  const double v = zeros == 0 ? 0.5 / bits : static_cast<double>(zeros) / bits;
  return static_cast<uint32_t>(std::lround(-bits * std::log(v)));
}

// The estimate for every possible popcount, computed once (no log() on the
// request path).
template <int kBits>
inline uint32_t LinearCount(int set) {
  static const std::array<uint32_t, kBits + 1> kTable = [] {
    std::array<uint32_t, kBits + 1> t{};
    for (int i = 0; i <= kBits; ++i) t[i] = LinearCountSlow(i, kBits);
    return t;
  }();
  return kTable[set];
}

// A 64-bit mix (the finalizer of MurmurHash3) spreading a fingerprint or key
// hash over the sketch bits.
inline uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// A hash of `key` that is the same in every process (absl::HashOf is seeded
// per process): the bits it picks in the distinct-client and domain
// sketches must agree between replicas that OR their sketches together
// (harvest.shared), and between runs of the simulator. Never 0.
inline uint64_t SketchHash(const PrefixKey& key) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the key's fields
  auto add = [&h](uint8_t b) {
    h ^= b;
    h *= 0x100000001b3ULL;
  };
  add(static_cast<uint8_t>(key.family));
  add(key.prefix_len);
  for (uint8_t b : key.bytes) add(b);
  h = Mix(h);
  return h == 0 ? 1 : h;
}

inline bool Penalized(const Entry& e, int64_t now_ns) {
  return e.penalty[kEnforced].until_ns > now_ns ||
         e.penalty[kObserved].until_ns > now_ns;
}

inline void Accumulate(Tally& w, const Bucket& b) {
  w.valid += b.valid;
  w.unknown += b.unknown;
  w.not_served += b.not_served;
  w.malformed += b.malformed;
}

// Adds to the newest bucket, saturating at 65,535 per outcome.
inline void AddCounts(Entry& e, const uint32_t (&add)[kOutcomes]) {
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
inline void AdvanceRing(Entry& e, int64_t epoch) {
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
inline void SumWindows(const Entry& e, int64_t epoch,
                       const std::vector<int>& windows, Tally* out) {
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
inline Tally SumAll(const Entry& e, int64_t epoch) {
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

inline SlotSums SumSlots(const Entry& e, int64_t epoch, int slots) {
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

// How severe a candidate of `action` is: ACCEPT, TARPIT, accept-all (an
// ACCEPT decided by a rule), TEMPFAIL, REJECT. Accept-all wins over a
// tarpit: a tarpit still answers truthfully, and accept-all exists to
// answer without telling anything (a null-sender harvester, a fresh
// address in a network under attack).
inline int Severity(Action action, bool by_rule) {
  switch (action) {
    case Action::kAccept:
      return by_rule ? 2 : 0;
    case Action::kTarpit:
      return 1;
    case Action::kTempfail:
      return 3;
    case Action::kReject:
      return 4;
  }
  return 0;
}
inline int Severity(const Candidate& c) {
  return Severity(c.action, c.rule >= 0);
}

// Strict order: severity, then the longer block, the longer delay, the more
// unknown recipients. Ties keep the earlier (narrower) key.
inline bool Beats(const Candidate& a, const Candidate& b) {
  return std::tuple(Severity(a), a.blocked_until_ns, a.delay, a.unknown) >
         std::tuple(Severity(b), b.blocked_until_ns, b.delay, b.unknown);
}

inline bool ValidRuleName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

inline bool ValidReplyText(const std::string& text) {
  if (text.size() > kMaxReplyText) return false;
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

inline absl::Status Bad(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

inline SmtpReplyText DefaultReply(Action action) {
  switch (action) {
    case Action::kTempfail:
      return {451, "4.7.1", "Too many unknown recipients, try again later"};
    case Action::kReject:
      return {550, "5.7.1", "Too many unknown recipients"};
    default:
      return {};
  }
}

}  // namespace rcptguard::harvest

#endif  // RCPTGUARD_SERVER_HARVEST_WINDOW_H_
