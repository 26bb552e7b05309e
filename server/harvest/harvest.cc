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
#include "server/harvest/rules.h"
#include "server/harvest/shard.h"
#include "server/harvest/shared_state.h"
#include "server/harvest/window.h"

namespace rcptguard::harvest {

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
    for (size_t r = 0; r < c_.rules.size(); ++r) {
      rule_index_.emplace(c_.rules[r].rule.name, static_cast<int>(r));
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
    // The client's bit in its networks' and domains' sketches.
    const uint64_t client_sketch_hash = SketchHash(keys[0].key);

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
    const bool record = record_.load(std::memory_order_relaxed) &&
                        ex != Exemption::kUnparsableIp;
    bool box_changed = false;
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
        applied.new_client = e.total.total() == 0;
      }
      PendingDelta* pd = nullptr;
      if (record && recipients > 0) pd = &s.pending[keys[i].key];
      AddObservation(e, obs, traffic, i == 0 ? 0 : client_sketch_hash, now_ns,
                     pd);
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
        if (!record) {
          UpdateState(e, p, fired, now_ns, applied);
        } else {
          Penalty before[kModes];
          std::copy(e.penalty, e.penalty + kModes, before);
          UpdateState(e, p, fired, now_ns, applied);
          if (BoxesChanged(before, e.penalty)) {
            s.pending[keys[i].key].boxes = true;
            box_changed = true;
          }
        }
        JudgeKey(e, p, cum, fired, epoch, now_ns, applied, best);
      }
      s.Touch(slot, now_ns);
    }
    // The domain signal is fed and applied by normal traffic only: bounces
    // to forged addresses (backscatter) from many MTAs are not an attack.
    if (judged && traffic == Traffic::kNormal) {
      if (probing) RecordDomains(obs, client_sketch_hash, now_ns);
      if (!established) JudgeDomains(obs, now_ns, keys[0].key, best);
    }

    Verdict v = MakeVerdict(best, keys[0].key, narrow_unknown, ex);
    Count(obs, ip, ex, v, ShardFor(keys[0].hash).counters, /*dry=*/false);
    if (box_changed && on_box_change_) on_box_change_();
    return v;
  }

  // --- Sharing between replicas.

  void RecordDeltas(std::function<void()> on_box_change) {
    on_box_change_ = std::move(on_box_change);
    record_.store(true, std::memory_order_relaxed);
  }

  std::vector<SharedKey> TakeDeltas(size_t max_keys) {
    const int64_t now_ns = ToNanos(clock_->Now());
    std::vector<SharedKey> out;
    // Start where the previous call stopped, so a bound never starves the
    // last shards.
    const size_t first =
        take_from_.fetch_add(1, std::memory_order_relaxed) % num_shards_;
    for (size_t n = 0; n < num_shards_ && out.size() < max_keys; ++n) {
      Shard& s = shards_[(first + n) % num_shards_];
      absl::MutexLock lock(&s.mu);
      if (s.pending.empty()) continue;
      std::vector<PrefixKey> taken;
      for (auto& [key, pd] : s.pending) {
        if (out.size() >= max_keys) break;
        taken.push_back(key);
        SharedKey& k = out.emplace_back();
        k.key = key;
        k.buckets = std::move(pd.buckets);
        k.slots = std::move(pd.slots);
        const uint32_t slot = s.Find(key);
        bool clean = true;  // nothing a rule could fire on
        if (slot != kNil) {
          const Entry& e = s.At(slot);
          k.last_seen_ms = FloorDiv(e.last_seen_ns, 1'000'000);
          if (pd.boxes) {
            k.has_boxes = true;
            for (int m = 0; m < kModes; ++m)
              k.boxes[m] = ToShared(e.penalty[m]);
          }
          clean =
              e.total.unknown == 0 && !Penalized(e, now_ns) &&
              std::all_of(e.null_counts.begin(), e.null_counts.end(),
                          [](const NullCounts& c) { return c.unknown == 0; });
        }
        // A clean client's valid recipients are not shared: most traffic,
        // and nothing a rule fires on (docs/harvest-shared.md).
        if (clean && !k.Suspicious()) out.pop_back();
      }
      if (taken.size() == s.pending.size()) {
        s.pending.clear();
      } else {
        for (const PrefixKey& key : taken) s.pending.erase(key);
      }
    }
    return out;
  }

  MergeStats MergeShared(const std::vector<SharedKey>& global) {
    MergeStats stats;
    const int64_t now_ns = ToNanos(clock_->Now());
    const int64_t epoch = FloorDiv(now_ns, c_.bucket_ns);
    for (const SharedKey& g : global) {
      const int prefix = PrefixIndex(g.key);
      if (prefix < 0 || !Live(g, epoch, now_ns)) {
        ++stats.skipped;
        continue;
      }
      const size_t hash = absl::HashOf(g.key);
      Shard& s = ShardFor(hash);
      absl::MutexLock lock(&s.mu);
      const bool known = s.Find(g.key) != kNil;
      const uint32_t slot =
          s.FindOrInsert(g.key, static_cast<uint8_t>(prefix), epoch, now_ns);
      Entry& e = s.At(slot);
      AdvanceRing(e, epoch);
      auto it = s.pending.find(g.key);
      const PendingDelta* pd = it == s.pending.end() ? nullptr : &it->second;
      MergeInto(e, g, pd, now_ns);
      s.Touch(slot, now_ns);
      ++stats.merged;
      if (!known) ++stats.inserted;
    }
    return stats;
  }

  absl::Duration bucket_width() const {
    return absl::Nanoseconds(c_.bucket_ns);
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
        const bool unparsable = e.prefix == c_.unparsable;
        for (const Traffic traffic : {Traffic::kNormal, Traffic::kNullSender}) {
          Candidate best[kModes];
          if (!unparsable) {
            // As a transaction of this traffic with no recipients, from a
            // client that is not new.
            Applied applied;
            applied.traffic = traffic;
            applied.new_client = false;
            JudgeKey(e, p, cum, Fired(e, p, cum, epoch, applied), epoch, now_ns,
                     applied, best);
          }
          (traffic == Traffic::kNormal ? item.o.verdict
                                       : item.o.null_sender_verdict) =
              MakeVerdict(
                  best, e.key, cum[p.longest()].unknown,
                  unparsable ? Exemption::kUnparsableIp : Exemption::kNone);
        }
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

  absl::StatusOr<Forgotten> Forget(std::string_view text) {
    Forgotten out;
    if (text == "unparsable") {
      const PrefixKey key = PrefixKey::Unparsable();
      Shard& s = ShardFor(absl::HashOf(key));
      absl::MutexLock lock(&s.mu);
      out.removed = s.Remove(key) ? 1 : 0;
      return out;
    }
    if (text.find('/') != std::string_view::npos) {
      absl::StatusOr<PrefixKey> net = ParseCidr(text);
      if (!net.ok()) return net.status();
      for (size_t si = 0; si < num_shards_; ++si) {
        Shard& s = shards_[si];
        absl::MutexLock lock(&s.mu);
        out.removed += s.RemoveIf([&](const PrefixKey& key) {
          if (!Contains(*net, key)) return false;
          out.keys.push_back(key);
          return true;
        });
      }
      return out;
    }
    const std::optional<IpAddress> ip = ParseIp(text);
    if (!ip.has_value()) {
      return absl::InvalidArgumentError(
          "not an IP address, a CIDR or \"unparsable\"");
    }
    KeyRef keys[kMaxKeys];
    const int nkeys = KeysFor(ip, keys);
    for (int i = 0; i < nkeys; ++i) {
      Shard& s = ShardFor(keys[i].hash);
      absl::MutexLock lock(&s.mu);
      out.removed += s.Remove(keys[i].key) ? 1 : 0;
      out.keys.push_back(keys[i].key);
    }
    return out;
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
    // The client sent no recipients before this call (its own key's ring
    // is empty): network rules with new_client_accept_all answer it
    // accept-all.
    bool new_client = true;
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
                      size_t narrow_hash, int64_t now_ns,
                      PendingDelta* pd) const {
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
    SharedSlot* ps = nullptr;
    if (pd != nullptr) {
      ps = &PendSlot(*pd, SlotEpoch(e.head_epoch));
      if (traffic == Traffic::kNormal) {
        SharedBucket& b = PendBucket(*pd, e.head_epoch);
        b.valid += obs.valid;
        b.unknown += obs.unknown;
        b.not_served += obs.not_served;
        b.malformed += obs.malformed;
      } else {
        ps->null_unknown += obs.unknown;
        ps->null_total +=
            obs.valid + obs.unknown + obs.not_served + obs.malformed;
      }
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
    if (ps != nullptr) ps->recipients |= bits;
    if (narrow_hash != 0) {
      const uint32_t bit = uint32_t{1} << (Mix(narrow_hash) % kClientBits);
      e.clients[si] |= bit;
      if (ps != nullptr) ps->clients |= bit;
    }
  }

  static SharedBucket& PendBucket(PendingDelta& pd, int64_t epoch) {
    for (SharedBucket& b : pd.buckets) {
      if (b.epoch == epoch) return b;
    }
    SharedBucket& b = pd.buckets.emplace_back();
    b.epoch = epoch;
    return b;
  }
  static SharedSlot& PendSlot(PendingDelta& pd, int64_t epoch) {
    for (SharedSlot& sl : pd.slots) {
      if (sl.epoch == epoch) return sl;
    }
    SharedSlot& sl = pd.slots.emplace_back();
    sl.epoch = epoch;
    return sl;
  }

  static bool BoxesChanged(const Penalty* before, const Penalty* after) {
    for (int m = 0; m < kModes; ++m) {
      if (before[m].until_ns != after[m].until_ns ||
          before[m].rule != after[m].rule ||
          before[m].action != after[m].action) {
        return true;
      }
    }
    return false;
  }

  SharedBox ToShared(const Penalty& pen) const {
    SharedBox box;
    if (pen.rule < 0 || pen.until_ns == kNoTime) return box;
    // Rounded up: a box never ends earlier on another replica.
    box.until_ms = FloorDiv(pen.until_ns + 999'999, 1'000'000);
    box.action = pen.action;
    box.rule = c_.rules[pen.rule].rule.name;
    return box;
  }

  // The index into c_.prefixes of a shared key's prefix; -1 if not tracked
  // here (another config) or the unparsable pseudo-key.
  int PrefixIndex(const PrefixKey& key) const {
    if (key.unparsable()) return -1;
    for (size_t p = 0; p < c_.prefixes.size(); ++p) {
      if (static_cast<int>(p) == c_.unparsable) continue;
      if (c_.prefixes[p].family == key.family &&
          c_.prefixes[p].len == key.prefix_len) {
        return static_cast<int>(p);
      }
    }
    return -1;
  }

  // Whether a global state holds anything inside the windows or a box
  // that has not ended.
  static bool Live(const SharedKey& g, int64_t epoch, int64_t now_ns) {
    for (const SharedBucket& b : g.buckets) {
      if (b.epoch > epoch - kRingBuckets) return true;
    }
    for (const SharedSlot& sl : g.slots) {
      if (sl.epoch > SlotEpoch(epoch) - kSlots) return true;
    }
    for (const SharedBox& box : g.boxes) {
      if (box.until_ms > 0 && box.until_ms * 1'000'000 > now_ns) return true;
    }
    return false;
  }

  static uint16_t Sat16(uint64_t v) {
    return static_cast<uint16_t>(std::min<uint64_t>(v, 0xffff));
  }
  static uint8_t Sat8(uint64_t v) {
    return static_cast<uint8_t>(std::min<uint64_t>(v, 0xff));
  }

  // MergeShared for one key whose ring is advanced to now.
  void MergeInto(Entry& e, const SharedKey& g, const PendingDelta* pd,
                 int64_t now_ns) const {
    const int64_t oldest = e.head_epoch - kRingBuckets + 1;
    bool changed = false;
    for (const SharedBucket& gb : g.buckets) {
      if (gb.epoch > e.head_epoch || gb.epoch < oldest) continue;
      SharedBucket pend;
      if (pd != nullptr) {
        for (const SharedBucket& b : pd->buckets) {
          if (b.epoch == gb.epoch) pend = b;
        }
      }
      Bucket& lb = e.ring[RingSlot(gb.epoch)];
      const Bucket old = lb;
      lb.valid = std::max(lb.valid, Sat16(uint64_t{gb.valid} + pend.valid));
      lb.unknown =
          std::max(lb.unknown, Sat16(uint64_t{gb.unknown} + pend.unknown));
      lb.not_served = std::max(lb.not_served,
                               Sat8(uint64_t{gb.not_served} + pend.not_served));
      lb.malformed =
          std::max(lb.malformed, Sat8(uint64_t{gb.malformed} + pend.malformed));
      changed = changed || std::memcmp(&old, &lb, sizeof(Bucket)) != 0;
    }
    if (changed) {
      e.total = Tally{};
      for (const Bucket& b : e.ring) Accumulate(e.total, b);
    }
    const int64_t head_slot = SlotEpoch(e.head_epoch);
    for (const SharedSlot& gs : g.slots) {
      if (gs.epoch > head_slot || gs.epoch <= head_slot - kSlots) continue;
      SharedSlot pend;
      if (pd != nullptr) {
        for (const SharedSlot& sl : pd->slots) {
          if (sl.epoch == gs.epoch) pend = sl;
        }
      }
      const int i = SlotIndex(gs.epoch);
      NullCounts& n = e.null_counts[i];
      n.unknown = std::max(
          n.unknown, Sat16(uint64_t{gs.null_unknown} + pend.null_unknown));
      n.total =
          std::max(n.total, Sat16(uint64_t{gs.null_total} + pend.null_total));
      e.recipients[i] |= gs.recipients;
      e.clients[i] |= gs.clients;
    }
    for (int m = 0; m < kModes; ++m) {
      const SharedBox& box = g.boxes[m];
      if (box.until_ms <= 0) continue;
      const int64_t until = box.until_ms * 1'000'000;
      if (until <= now_ns) continue;
      auto r = rule_index_.find(box.rule);
      if (r == rule_index_.end()) continue;  // a rule this config lacks
      Penalty& pen = e.penalty[m];
      const bool active = pen.until_ns > now_ns;
      if (!active || box.action > pen.action) {
        pen = Penalty{until, static_cast<int16_t>(r->second), box.action};
      } else if (box.action == pen.action && until > pen.until_ns) {
        pen.until_ns = until;
      }
    }
    const int64_t seen = g.last_seen_ms * 1'000'000;
    if (g.last_seen_ms > 0 && seen > e.last_seen_ns) e.last_seen_ns = seen;
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

  // Whether rule `cr`, judging network key `p`, answers this call
  // accept-all because the client was never seen before.
  static bool FirstContact(const TrackedPrefix& p, const CompiledRule& cr,
                           const Applied& applied) {
    return p.network && applied.new_client && cr.rule.new_client_accept_all;
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
      const bool first_contact = FirstContact(p, cr, applied);
      const Action action = first_contact ? Action::kAccept : cr.rule.action;
      bool can_win = false;
      for (int m = first; m < kModes; ++m) {
        can_win = can_win || Severity(action, true) >= Severity(best[m]);
      }
      if (!can_win) continue;
      Candidate cand;
      cand.action = action;
      cand.rule = r;
      cand.unknown = cr.rule.traffic == Traffic::kNullSender
                         ? SumSlots(e, epoch, cr.slots).null_unknown
                         : cum[p.window_of[r]].unknown;
      cand.key = e.key;
      if (action == Action::kAccept) {
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
        if (action == Action::kTarpit) {
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
      if (FirstContact(p, c_.rules[pen.rule], applied)) {
        cand.action = Action::kAccept;
        cand.unknown = std::max<uint32_t>(cand.unknown, 1);
        cand.blocked_until_ns = 0;
      }
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
        applied.new_client = all.total() == 0;
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
  // Rule indexes by name, for boxes from other replicas. Constant.
  absl::flat_hash_map<std::string, int> rule_index_;
  // Sharing: set once by RecordDeltas, before Observe runs.
  std::atomic<bool> record_{false};
  std::atomic<size_t> take_from_{0};  // TakeDeltas' first shard, rotating
  std::function<void()> on_box_change_;
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
  absl::StatusOr<Forgotten> f = impl_->Forget(ip_or_cidr);
  if (!f.ok()) return f.status();
  return f->removed;
}
absl::StatusOr<Detector::Forgotten> Detector::ForgetKeys(
    std::string_view ip_or_cidr) {
  return impl_->Forget(ip_or_cidr);
}
void Detector::RecordDeltas(std::function<void()> on_box_change) {
  impl_->RecordDeltas(std::move(on_box_change));
}
std::vector<SharedKey> Detector::TakeDeltas(size_t max_keys) {
  return impl_->TakeDeltas(max_keys);
}
MergeStats Detector::MergeShared(const std::vector<SharedKey>& global) {
  return impl_->MergeShared(global);
}
absl::Duration Detector::bucket_width() const { return impl_->bucket_width(); }

bool SharedKey::Suspicious() const {
  for (const SharedBucket& b : buckets) {
    if (b.unknown > 0) return true;
  }
  for (const SharedSlot& s : slots) {
    if (s.null_unknown > 0) return true;
  }
  for (const SharedBox& b : boxes) {
    if (b.until_ms > 0) return true;
  }
  return false;
}
DetectorStats Detector::Stats() const { return impl_->Stats(); }
std::vector<DomainStatus> Detector::DomainStatuses() const {
  return impl_->DomainStatuses();
}

}  // namespace rcptguard::harvest
