// FingerprintSet: an immutable set of 64-bit fingerprints built for fast,
// memory-lean membership queries over ~10^8 entries.
//
//   FingerprintSet set = FingerprintSet::Build(std::move(fps));
//   bool hit = set.Contains(fp);
//   set.ContainsBatch(batch, out);   // overlaps the cache misses of a batch
//
// Layout. The set is split into 2^shard_bits() shards by the top bits of a
// fingerprint. Each shard is a flat array of uint64_t slots, an
// open-addressing table with linear probing in which 0 means "empty". A
// fingerprint's home slot is fastrange (multiply-shift, no modulo) of the
// fingerprint's remaining bits over the shard's `home_slots`. Because the
// table is built once, entries are placed in ascending order ("ordered linear
// probing", Amble and Knuth 1974): every run of occupied slots is sorted, so a
// lookup stops at the first slot that is empty or holds a larger value. A
// miss therefore costs about as much as a hit (~3.8 slots at the 0.85 load
// factor used here) instead of ~23 slots in a plain linear-probing table.
// Each shard ends with at least one empty slot; probes never wrap around.
// A probe first compares the kProbeWindow slots from the home slot without
// branching on the outcome (a hit/miss branch would be mispredicted half the
// time), and only walks on when the run continues past the window.
//
// The fingerprint 0 cannot be stored as such (0 marks an empty slot), so
// Canonical() maps it to kZeroStandIn, once, both when building and when
// looking up; 0 and kZeroStandIn are therefore the same member.
//
// All shards live in one contiguous, zero-initialized allocation (huge pages
// are requested for large sets), so a snapshot can store the slot arrays
// as-is and FromSlots() can serve them from where they lie (e.g. an mmap).
//
// Thread safety: a FingerprintSet is immutable; all const methods may be
// called concurrently. Copies are cheap and share the slot storage.
#ifndef RCPTGUARD_SERVER_DIRECTORY_FINGERPRINT_SET_H_
#define RCPTGUARD_SERVER_DIRECTORY_FINGERPRINT_SET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace rcptguard::directory {

class FingerprintSet {
 public:
  // Largest shard_bits Build() and FromSlots() accept (65536 shards).
  static constexpr int kMaxShardBits = 16;
  // Build() aims for this many entries per shard when shard_bits < 0.
  static constexpr uint64_t kTargetShardEntries = uint64_t{1} << 18;
  // Occupied fraction of each shard's home slots.
  static constexpr double kLoadFactor = 0.85;
  // Slots compared at once from the home slot. Probes read up to this many
  // slots, possibly into the next shard, so the last shard has at least
  // kProbeWindow - 1 slots after its last home slot (slot 0 if it has none).
  static constexpr size_t kProbeWindow = 8;
  // What the fingerprint 0 is stored and looked up as.
  static constexpr uint64_t kZeroStandIn = 0x9e3779b97f4a7c15ULL;

  // The one place where 0 is remapped.
  static constexpr uint64_t Canonical(uint64_t fp) {
    return fp == 0 ? kZeroStandIn : fp;
  }

  // Size of one shard inside the contiguous slot array: `slot_count` slots
  // (>= 1, the last one empty) of which the first `home_slots` are possible
  // home slots. Shards follow each other without gaps; the last shard has
  // slot_count >= max(home_slots, 1) + kProbeWindow - 1.
  struct ShardExtent {
    uint64_t slot_count = 0;
    uint64_t home_slots = 0;
    friend bool operator==(const ShardExtent&, const ShardExtent&) = default;
  };

  // The empty set.
  FingerprintSet();
  // Copies share the slot storage and are cheap (the shard table is copied).
  // There are deliberately no move operations: a moved-from set would have
  // no shards to probe, so "moving" copies and the source stays usable.
  FingerprintSet(const FingerprintSet&) = default;
  FingerprintSet& operator=(const FingerprintSet&) = default;

  // Builds from `fingerprints` (any order; duplicates allowed and dropped).
  // shard_bits < 0 picks about kTargetShardEntries entries per shard;
  // larger values are clamped to kMaxShardBits. Sorts its input in place,
  // so pass it by move.
  static FingerprintSet Build(std::vector<uint64_t> fingerprints,
                              int shard_bits = -1);

  // Serves slot arrays that live elsewhere, e.g. in a mapped snapshot:
  // `slots` holds the shards back to back as described by `shards` (which
  // must have 2^shard_bits entries). `keep_alive` owns the memory behind
  // `slots` and is held as long as any copy of the set lives. The layout is
  // verified in one pass (each entry in its shard, at or after its home slot,
  // runs contiguous and ascending, every shard ending with an empty slot, the
  // last shard's probe window in bounds), so a corrupt input yields
  // InvalidArgument rather than wrong answers or reads out of bounds.
  static absl::StatusOr<FingerprintSet> FromSlots(
      int shard_bits, absl::Span<const ShardExtent> shards,
      absl::Span<const uint64_t> slots, std::shared_ptr<const void> keep_alive);

  bool Contains(uint64_t fp) const {
    fp = Canonical(fp);
    return Probe(HomeSlot(fp), fp);
  }

  // Contains(fp) in two steps, for callers that pipeline their own batches:
  // StartProbe finds where the search begins and starts loading those slots
  // into cache; FinishProbe, a while later (once the slots have arrived),
  // answers. FinishProbe(StartProbe(fp)) == Contains(fp).
  struct PendingProbe {
    const uint64_t* slot;
    uint64_t key;  // Canonical(fp)
  };
  PendingProbe StartProbe(uint64_t fp) const {
    const uint64_t key = Canonical(fp);
    const uint64_t* slot = HomeSlot(key);
    // The probe window usually spans two cache lines.
    __builtin_prefetch(slot);
    __builtin_prefetch(slot + kProbeWindow - 1);
    return PendingProbe{slot, key};
  }
  static bool FinishProbe(const PendingProbe& p) {
    return Probe(p.slot, p.key);
  }

  // out[i] = Contains(fps[i]) for every i. Computes every home slot of a
  // chunk first and prefetches it, then probes, so that the cache misses of
  // a chunk overlap instead of queuing one after another.
  void ContainsBatch(absl::Span<const uint64_t> fps, bool* out) const;

  // Number of distinct fingerprints.
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes of slot arrays plus shard table.
  size_t MemoryBytes() const;
  int shard_bits() const { return shard_bits_; }

  // For the snapshot format: the shards' geometry and raw slot arrays.
  size_t shard_count() const { return shards_.size(); }
  ShardExtent shard_extent(size_t i) const;
  absl::Span<const uint64_t> shard_slots(size_t i) const;
  // All shards back to back (the concatenation of every shard_slots(i)).
  absl::Span<const uint64_t> all_slots() const {
    return absl::MakeConstSpan(slots_, total_slots_);
  }

 private:
  struct Shard {
    const uint64_t* slots;  // first slot of this shard
    uint64_t home_slots;
  };

  // The slot where the search for canonical `fp` starts.
  const uint64_t* HomeSlot(uint64_t fp) const {
    // (fp >> 1) >> (63 - b) == fp >> (64 - b), and is 0 (not UB) for b == 0.
    const Shard& shard = shards_[(fp >> 1) >> shard_shift_];
    const unsigned __int128 wide =
        static_cast<unsigned __int128>(fp << shard_bits_) * shard.home_slots;
    return shard.slots + static_cast<uint64_t>(wide >> 64);
  }

  // Looks for canonical `fp` from its home slot. Any slot equal to `fp` means
  // a hit (every stored value is a member, whichever shard it is in). With
  // no match in the window, `fp` can only be further on if the run goes on
  // past the window with smaller values, i.e. the window's last slot is
  // occupied and smaller; that case (a few percent) walks on.
  static bool Probe(const uint64_t* slot, uint64_t fp) {
    uint64_t match = 0;
#pragma GCC unroll 8
    for (size_t i = 0; i < kProbeWindow; ++i) match |= slot[i] == fp;
    const bool run_goes_on =
        (slot[kProbeWindow - 1] - 1 < fp - 1) & (match == 0);
    if (__builtin_expect(run_goes_on, 0)) {
      return WalkRun(slot + kProbeWindow, fp);
    }
    return match != 0;
  }

  // Scans the ordered run starting at `slot`. Treating 0 as the largest
  // value (0 - 1 wraps to 2^64 - 1) folds "empty" and "greater" into one
  // comparison; every shard ends with an empty slot, so the loop ends.
  static bool WalkRun(const uint64_t* slot, uint64_t fp) {
    while (*slot - 1 < fp - 1) ++slot;
    return *slot == fp;
  }

  // Constant after construction. `storage_` owns what `slots_` points to
  // (null for the static empty slot of a default-constructed set).
  std::shared_ptr<const void> storage_;
  const uint64_t* slots_ = nullptr;
  size_t total_slots_ = 0;
  std::vector<Shard> shards_;
  int shard_bits_ = 0;
  int shard_shift_ = 63;
  size_t size_ = 0;
};

}  // namespace rcptguard::directory

#endif  // RCPTGUARD_SERVER_DIRECTORY_FINGERPRINT_SET_H_
