// Internal to server/harvest: the detector's sharded state: tracked keys and
// domain sketches, shared by its files. Not an API: only server/harvest/*.cc
// include it.
//
// Thread safety: as documented on each type; Shard and DomainState guard
// themselves with their own mutexes.
#ifndef RCPTGUARD_SERVER_HARVEST_SHARD_H_
#define RCPTGUARD_SERVER_HARVEST_SHARD_H_

#include "server/harvest/shared_state.h"
#include "server/harvest/window.h"

namespace rcptguard::harvest {

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

inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}
inline uint64_t Load(const std::atomic<uint64_t>& c) {
  return c.load(std::memory_order_relaxed);
}

// What Observe counted for one key since the last Detector::TakeDeltas
// (only when deltas are recorded). Usually one bucket and one slot.
struct PendingDelta {
  std::vector<SharedBucket> buckets;
  std::vector<SharedSlot> slots;
  bool boxes = false;  // a box opened or changed
};

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

  // Deltas not yet taken, by key (Detector::RecordDeltas); empty otherwise.
  absl::flat_hash_map<PrefixKey, PendingDelta> pending ABSL_GUARDED_BY(mu);

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
    pending.erase(key);
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

}  // namespace rcptguard::harvest

#endif  // RCPTGUARD_SERVER_HARVEST_SHARD_H_
