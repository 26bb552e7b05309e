#include "server/directory/fingerprint_set.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rcptguard::directory {
namespace {

// The load factor as an exact fraction: home_slots = ceil(n * 20 / 17).
constexpr uint64_t kLoadNumerator = 17;
constexpr uint64_t kLoadDenominator = 20;
static_assert(static_cast<double>(kLoadNumerator) / kLoadDenominator ==
              FingerprintSet::kLoadFactor);

// Sets at least this large get their own huge-page-aligned mapping.
constexpr size_t kHugePageBytes = size_t{2} << 20;
constexpr size_t kMmapThresholdBytes = size_t{8} << 20;

// Chunk of a batch whose home slots are computed and prefetched together.
// 64 covers the usual request batch; more would exceed the CPU's outstanding
// miss capacity anyway.
constexpr size_t kBatchChunk = 64;

// The slots of a default-constructed (empty) set: one probe window.
alignas(64) const uint64_t kEmptySlots[FingerprintSet::kProbeWindow] = {};

inline uint64_t ShardOf(uint64_t fp, int shard_bits) {
  return (fp >> 1) >> (63 - shard_bits);
}

inline uint64_t HomeIndex(uint64_t fp, int shard_bits, uint64_t home_slots) {
  return static_cast<uint64_t>(
      (static_cast<unsigned __int128>(fp << shard_bits) * home_slots) >> 64);
}

inline uint64_t HomeSlotsFor(uint64_t count) {
  return (count * kLoadDenominator + kLoadNumerator - 1) / kLoadNumerator;
}

// The last shard's probe window must stay inside the slot array.
uint64_t LastShardMinSlots(uint64_t home_slots) {
  return std::max<uint64_t>(home_slots, 1) + FingerprintSet::kProbeWindow - 1;
}

int AutoShardBits(size_t n) {
  int bits = 0;
  while (bits < FingerprintSet::kMaxShardBits &&
         (static_cast<uint64_t>(n) >> bits) >
             FingerprintSet::kTargetShardEntries) {
    ++bits;
  }
  return bits;
}

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Zero-filled storage for `count` slots. Large arrays come from an anonymous
// mapping aligned to 2 MiB with MADV_HUGEPAGE, so random probes over a big
// table pay fewer TLB misses (THP in "madvise" mode needs the hint).
std::pair<std::shared_ptr<const void>, uint64_t*> AllocateZeroedSlots(
    size_t count) {
  const size_t bytes = count * sizeof(uint64_t);
  if (bytes >= kMmapThresholdBytes) {
    const size_t mapped = RoundUp(bytes, kHugePageBytes);
    const size_t reserve = mapped + kHugePageBytes;
    void* raw = mmap(nullptr, reserve, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw != MAP_FAILED) {
      const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
      const uintptr_t aligned = RoundUp(start, kHugePageBytes);
      const size_t head = aligned - start;
      const size_t tail = reserve - head - mapped;
      if (head > 0) munmap(raw, head);
      if (tail > 0) munmap(reinterpret_cast<void*>(aligned + mapped), tail);
      void* base = reinterpret_cast<void*>(aligned);
      madvise(base, mapped, MADV_HUGEPAGE);  // A hint; failure is harmless.
      std::shared_ptr<const void> owner(base, [mapped](const void* p) {
        munmap(const_cast<void*>(p), mapped);
      });
      return {std::move(owner), static_cast<uint64_t*>(base)};
    }
  }
  uint64_t* slots = new uint64_t[count]();
  std::shared_ptr<const void> owner(
      slots, [](const void* p) { delete[] static_cast<const uint64_t*>(p); });
  return {std::move(owner), slots};
}

}  // namespace

FingerprintSet::FingerprintSet()
    : slots_(kEmptySlots),
      total_slots_(kProbeWindow),
      shards_{Shard{kEmptySlots, 0}} {}

FingerprintSet FingerprintSet::Build(std::vector<uint64_t> fps,
                                     int shard_bits) {
  for (uint64_t& fp : fps) fp = Canonical(fp);
  // Ascending order groups the fingerprints by shard (top bits) and is the
  // insertion order that ordered linear probing needs.
  std::sort(fps.begin(), fps.end());
  fps.erase(std::unique(fps.begin(), fps.end()), fps.end());
  const size_t n = fps.size();

  if (shard_bits < 0) shard_bits = AutoShardBits(n);
  shard_bits = std::min(shard_bits, kMaxShardBits);
  const size_t num_shards = size_t{1} << shard_bits;

  // Pass 1: each shard's range in `fps` and its geometry. An entry goes to
  // the first free slot at or after its home; since entries arrive in
  // ascending order (non-decreasing homes), that is max(home, previous + 1).
  std::vector<size_t> begin(num_shards + 1, n);
  std::vector<ShardExtent> extents(num_shards);
  size_t total_slots = 0;
  size_t i = 0;
  for (size_t s = 0; s < num_shards; ++s) {
    begin[s] = i;
    size_t end = i;
    while (end < n && ShardOf(fps[end], shard_bits) == s) ++end;
    const uint64_t home_slots = HomeSlotsFor(end - i);
    uint64_t next_free = 0;  // one past the last occupied slot
    for (size_t j = i; j < end; ++j) {
      next_free =
          std::max(HomeIndex(fps[j], shard_bits, home_slots), next_free) + 1;
    }
    // Keep at least one empty slot after the last entry (it stops probes)
    // and cover every possible home slot, in the last shard with a whole
    // probe window.
    uint64_t slot_count = std::max(home_slots, next_free + 1);
    if (s + 1 == num_shards) {
      slot_count = std::max(slot_count, LastShardMinSlots(home_slots));
    }
    extents[s] = ShardExtent{slot_count, home_slots};
    total_slots += extents[s].slot_count;
    i = end;
  }
  begin[num_shards] = n;

  // Pass 2: place the entries.
  auto [storage, slots] = AllocateZeroedSlots(total_slots);
  FingerprintSet set;
  set.storage_ = std::move(storage);
  set.slots_ = slots;
  set.total_slots_ = total_slots;
  set.shard_bits_ = shard_bits;
  set.shard_shift_ = 63 - shard_bits;
  set.size_ = n;
  set.shards_.clear();
  set.shards_.reserve(num_shards);
  uint64_t* shard_slots = slots;
  for (size_t s = 0; s < num_shards; ++s) {
    const uint64_t home_slots = extents[s].home_slots;
    uint64_t next_free = 0;
    for (size_t j = begin[s]; j < begin[s + 1]; ++j) {
      const uint64_t pos =
          std::max(HomeIndex(fps[j], shard_bits, home_slots), next_free);
      shard_slots[pos] = fps[j];
      next_free = pos + 1;
    }
    set.shards_.push_back(Shard{shard_slots, home_slots});
    shard_slots += extents[s].slot_count;
  }
  return set;
}

absl::StatusOr<FingerprintSet> FingerprintSet::FromSlots(
    int shard_bits, absl::Span<const ShardExtent> shards,
    absl::Span<const uint64_t> slots, std::shared_ptr<const void> keep_alive) {
  if (shard_bits < 0 || shard_bits > kMaxShardBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("fingerprint set: shard_bits ", shard_bits,
                     " is outside [0, ", kMaxShardBits, "]"));
  }
  const size_t num_shards = size_t{1} << shard_bits;
  if (shards.size() != num_shards) {
    return absl::InvalidArgumentError(
        absl::StrCat("fingerprint set: ", shards.size(), " shards listed, ",
                     num_shards, " expected for shard_bits ", shard_bits));
  }
  uint64_t total = 0;
  for (size_t s = 0; s < num_shards; ++s) {
    const ShardExtent& e = shards[s];
    if (e.slot_count == 0 || e.home_slots > e.slot_count) {
      return absl::InvalidArgumentError(
          absl::StrCat("fingerprint set: shard ", s, " has ", e.slot_count,
                       " slots and ", e.home_slots, " home slots"));
    }
    if (e.slot_count > slots.size() - total) {
      return absl::InvalidArgumentError(
          absl::StrCat("fingerprint set: shards need more than the ",
                       slots.size(), " slots given"));
    }
    total += e.slot_count;
  }
  if (total != slots.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fingerprint set: shards cover ", total, " slots of ", slots.size()));
  }
  const ShardExtent& last = shards.back();
  if (last.slot_count < LastShardMinSlots(last.home_slots)) {
    return absl::InvalidArgumentError(
        "fingerprint set: the last shard is too short for a probe window");
  }

  FingerprintSet set;
  set.storage_ = std::move(keep_alive);
  set.slots_ = slots.data();
  set.total_slots_ = slots.size();
  set.shard_bits_ = shard_bits;
  set.shard_shift_ = 63 - shard_bits;
  set.shards_.clear();
  set.shards_.reserve(num_shards);
  size_t count = 0;
  const uint64_t* shard_slots = slots.data();
  for (size_t s = 0; s < num_shards; ++s) {
    const ShardExtent& e = shards[s];
    if (shard_slots[e.slot_count - 1] != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fingerprint set: shard ", s, " does not end with an empty slot"));
    }
    uint64_t previous = 0;
    for (uint64_t p = 0; p < e.slot_count; ++p) {
      const uint64_t v = shard_slots[p];
      if (v == 0) continue;
      if (ShardOf(v, shard_bits) != s) {
        return absl::InvalidArgumentError(
            absl::StrCat("fingerprint set: shard ", s, " slot ", p,
                         " holds an entry of another shard"));
      }
      const uint64_t home = HomeIndex(v, shard_bits, e.home_slots);
      // Lookups scan from the home slot and stop at an empty slot or a larger
      // value: each entry must sit at or after its home, with only smaller
      // entries (no gap) in between.
      if (home > p || v <= previous || (p > home && shard_slots[p - 1] == 0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "fingerprint set: shard ", s, " slot ", p, " is out of order"));
      }
      previous = v;
      ++count;
    }
    set.shards_.push_back(Shard{shard_slots, e.home_slots});
    shard_slots += e.slot_count;
  }
  set.size_ = count;
  return set;
}

void FingerprintSet::ContainsBatch(absl::Span<const uint64_t> fps,
                                   bool* out) const {
  PendingProbe probes[kBatchChunk];
  for (size_t base = 0; base < fps.size(); base += kBatchChunk) {
    const size_t m = std::min(kBatchChunk, fps.size() - base);
    for (size_t i = 0; i < m; ++i) probes[i] = StartProbe(fps[base + i]);
    for (size_t i = 0; i < m; ++i) out[base + i] = FinishProbe(probes[i]);
  }
}

size_t FingerprintSet::MemoryBytes() const {
  return total_slots_ * sizeof(uint64_t) + shards_.size() * sizeof(Shard);
}

FingerprintSet::ShardExtent FingerprintSet::shard_extent(size_t i) const {
  const uint64_t* end =
      i + 1 < shards_.size() ? shards_[i + 1].slots : slots_ + total_slots_;
  return ShardExtent{static_cast<uint64_t>(end - shards_[i].slots),
                     shards_[i].home_slots};
}

absl::Span<const uint64_t> FingerprintSet::shard_slots(size_t i) const {
  return absl::MakeConstSpan(shards_[i].slots, shard_extent(i).slot_count);
}

}  // namespace rcptguard::directory
