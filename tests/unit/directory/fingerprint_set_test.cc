#include "server/directory/fingerprint_set.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rcptguard::directory {
namespace {

using ::testing::HasSubstr;

std::vector<uint64_t> RandomFingerprints(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> fps(n);
  for (uint64_t& fp : fps) fp = rng();
  return fps;
}

// Random fingerprints that are not in `members` (sorted).
std::vector<uint64_t> NonMembers(size_t n, uint64_t seed,
                                 const std::vector<uint64_t>& members) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> out;
  out.reserve(n);
  while (out.size() < n) {
    const uint64_t fp = rng();
    if (fp == 0 || fp == FingerprintSet::kZeroStandIn) continue;
    if (!std::binary_search(members.begin(), members.end(), fp)) {
      out.push_back(fp);
    }
  }
  return out;
}

std::vector<bool> BatchResults(const FingerprintSet& set,
                               const std::vector<uint64_t>& fps) {
  std::unique_ptr<bool[]> out(new bool[fps.size() + 1]);
  set.ContainsBatch(fps, out.get());
  return std::vector<bool>(out.get(), out.get() + fps.size());
}

TEST(FingerprintSetTest, EmptySet) {
  FingerprintSet set;
  EXPECT_EQ(set.size(), 0u);
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(set.shard_bits(), 0);
  EXPECT_EQ(set.shard_count(), 1u);
  EXPECT_EQ(set.shard_slots(0).size(), FingerprintSet::kProbeWindow);
  for (uint64_t v : set.shard_slots(0)) EXPECT_EQ(v, 0u);
  for (uint64_t fp : {uint64_t{0}, uint64_t{1}, FingerprintSet::kZeroStandIn,
                      std::numeric_limits<uint64_t>::max()}) {
    EXPECT_FALSE(set.Contains(fp)) << fp;
  }
  std::vector<uint64_t> batch = RandomFingerprints(100, 1);
  for (bool hit : BatchResults(set, batch)) EXPECT_FALSE(hit);
  set.ContainsBatch({}, nullptr);  // no-op
}

TEST(FingerprintSetTest, BuiltFromNothingIsEmpty) {
  FingerprintSet set = FingerprintSet::Build({});
  EXPECT_EQ(set.size(), 0u);
  EXPECT_FALSE(set.Contains(0));
  EXPECT_FALSE(set.Contains(42));
  FingerprintSet sharded = FingerprintSet::Build({}, 4);
  EXPECT_EQ(sharded.shard_count(), 16u);
  EXPECT_FALSE(sharded.Contains(42));
}

TEST(FingerprintSetTest, ZeroIsRemappedOnBuildAndLookup) {
  FingerprintSet set = FingerprintSet::Build({0});
  EXPECT_EQ(set.size(), 1u);
  EXPECT_TRUE(set.Contains(0));
  // The stand-in and 0 are one member (odds of a real collision: 2^-64).
  EXPECT_TRUE(set.Contains(FingerprintSet::kZeroStandIn));
  EXPECT_FALSE(set.Contains(1));
  // No slot holds a literal 0 as a member; it stays the empty marker.
  size_t occupied = 0;
  for (size_t s = 0; s < set.shard_count(); ++s) {
    for (uint64_t v : set.shard_slots(s)) occupied += v != 0;
  }
  EXPECT_EQ(occupied, 1u);

  FingerprintSet both =
      FingerprintSet::Build({0, FingerprintSet::kZeroStandIn});
  EXPECT_EQ(both.size(), 1u);
  FingerprintSet standin =
      FingerprintSet::Build({FingerprintSet::kZeroStandIn});
  EXPECT_TRUE(standin.Contains(0));
  EXPECT_EQ(FingerprintSet::Canonical(0), FingerprintSet::kZeroStandIn);
  EXPECT_EQ(FingerprintSet::Canonical(7), 7u);
}

TEST(FingerprintSetTest, DuplicatesAreDropped) {
  FingerprintSet set = FingerprintSet::Build({5, 5, 7, 5, 7, 9});
  EXPECT_EQ(set.size(), 3u);
  EXPECT_TRUE(set.Contains(5));
  EXPECT_TRUE(set.Contains(7));
  EXPECT_TRUE(set.Contains(9));
  EXPECT_FALSE(set.Contains(6));
  EXPECT_FALSE(set.Contains(8));
}

TEST(FingerprintSetTest, ExtremeValues) {
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  std::vector<uint64_t> fps = {
      1, 2, kMax, kMax - 1, uint64_t{1} << 63, (uint64_t{1} << 63) - 1};
  for (int bits : {0, 1, 3, 16}) {
    FingerprintSet set = FingerprintSet::Build(fps, bits);
    for (uint64_t fp : fps) EXPECT_TRUE(set.Contains(fp)) << bits << " " << fp;
    for (uint64_t fp : {uint64_t{3}, kMax - 2, (uint64_t{1} << 63) + 1}) {
      EXPECT_FALSE(set.Contains(fp)) << bits << " " << fp;
    }
  }
}

TEST(FingerprintSetTest, OneMillionRandom) {
  std::vector<uint64_t> members = RandomFingerprints(1'000'000, 42);
  FingerprintSet set = FingerprintSet::Build(members);
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  EXPECT_EQ(set.size(), members.size());

  size_t missing = 0;
  for (uint64_t fp : members) missing += !set.Contains(fp);
  EXPECT_EQ(missing, 0u);

  // Exact set: a non-member is never reported (no false positives at all).
  std::vector<uint64_t> others = NonMembers(1'000'000, 43, members);
  size_t false_positives = 0;
  for (uint64_t fp : others) false_positives += set.Contains(fp);
  EXPECT_EQ(false_positives, 0u);

  std::vector<bool> hits = BatchResults(set, members);
  EXPECT_EQ(std::count(hits.begin(), hits.end(), false), 0);
  std::vector<bool> misses = BatchResults(set, others);
  EXPECT_EQ(std::count(misses.begin(), misses.end(), true), 0);
}

TEST(FingerprintSetTest, MemoryPerEntryAtMostTwelveBytes) {
  FingerprintSet set = FingerprintSet::Build(RandomFingerprints(1'000'000, 7));
  const double per_entry =
      static_cast<double>(set.MemoryBytes()) / static_cast<double>(set.size());
  RecordProperty("bytes_per_entry", std::to_string(per_entry));
  std::printf("FingerprintSet: %.3f bytes per entry, shard_bits %d\n",
              per_entry, set.shard_bits());
  EXPECT_LE(per_entry, 12.0);
  // Load factor 0.85 => 9.41 bytes; the shard tails add a little.
  EXPECT_GE(per_entry, 8.0 / FingerprintSet::kLoadFactor);
  EXPECT_LE(per_entry, 8.0 / FingerprintSet::kLoadFactor + 0.2);
}

TEST(FingerprintSetTest, BatchMatchesSingle) {
  std::vector<uint64_t> members = RandomFingerprints(50'000, 11);
  FingerprintSet set = FingerprintSet::Build(members, 5);
  std::sort(members.begin(), members.end());
  std::vector<uint64_t> others = NonMembers(50'000, 12, members);
  // Interleave hits, misses and 0 in one batch.
  std::vector<uint64_t> mixed;
  for (size_t i = 0; i < 50'000; ++i) {
    mixed.push_back(i % 2 == 0 ? members[i] : others[i]);
    if (i % 997 == 0) mixed.push_back(0);
  }
  // Batch sizes around the internal chunk size.
  for (size_t len : {size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{129},
                     mixed.size()}) {
    std::vector<uint64_t> batch(mixed.begin(), mixed.begin() + len);
    std::vector<bool> got = BatchResults(set, batch);
    for (size_t i = 0; i < len; ++i) {
      ASSERT_EQ(got[i], set.Contains(batch[i])) << "len " << len << " i " << i;
    }
  }
}

TEST(FingerprintSetTest, ShardBitsVariants) {
  std::vector<uint64_t> members = RandomFingerprints(100'000, 21);
  std::vector<uint64_t> sorted = members;
  std::sort(sorted.begin(), sorted.end());
  std::vector<uint64_t> others = NonMembers(100'000, 22, sorted);
  for (int bits : {0, 1, 2, 5, 8, 12, 16, 40}) {
    FingerprintSet set = FingerprintSet::Build(members, bits);
    const int expected_bits = std::min(bits, FingerprintSet::kMaxShardBits);
    EXPECT_EQ(set.shard_bits(), expected_bits);
    EXPECT_EQ(set.shard_count(), size_t{1} << expected_bits);
    EXPECT_EQ(set.size(), 100'000u);
    size_t missing = 0, false_positives = 0;
    for (uint64_t fp : members) missing += !set.Contains(fp);
    for (uint64_t fp : others) false_positives += set.Contains(fp);
    EXPECT_EQ(missing, 0u) << bits;
    EXPECT_EQ(false_positives, 0u) << bits;
    // Shards hold exactly their own entries, ending with an empty slot.
    size_t total = 0;
    for (size_t s = 0; s < set.shard_count(); ++s) {
      absl::Span<const uint64_t> slots = set.shard_slots(s);
      ASSERT_FALSE(slots.empty());
      EXPECT_EQ(slots.back(), 0u);
      for (uint64_t v : slots) {
        if (v == 0) continue;
        ++total;
        if (expected_bits > 0) {
          EXPECT_EQ(v >> (64 - expected_bits), s);
        }
      }
    }
    EXPECT_EQ(total, set.size());
  }
}

TEST(FingerprintSetTest, AutomaticShardBits) {
  EXPECT_EQ(FingerprintSet::Build(RandomFingerprints(1000, 1)).shard_bits(), 0);
  FingerprintSet set = FingerprintSet::Build(RandomFingerprints(1'000'000, 2));
  EXPECT_EQ(set.shard_bits(), 2);  // 1M / 2^18 = 3.8 -> 4 shards
}

TEST(FingerprintSetTest, ClusteredFingerprints) {
  // Consecutive values share a home slot region: one long ordered run.
  std::vector<uint64_t> members;
  for (uint64_t v = 1; v <= 10'000; ++v) members.push_back(v);
  for (int bits : {0, 4}) {
    FingerprintSet set = FingerprintSet::Build(members, bits);
    for (uint64_t v : members) ASSERT_TRUE(set.Contains(v)) << v;
    EXPECT_FALSE(set.Contains(10'001));
    EXPECT_FALSE(set.Contains(std::numeric_limits<uint64_t>::max()));
    std::vector<uint64_t> probe = {5, 10'001, 1, 20'000, 10'000};
    EXPECT_THAT(BatchResults(set, probe),
                ::testing::ElementsAre(true, false, true, false, true));
  }
}

TEST(FingerprintSetTest, CopiesShareStorageAndOutliveOriginal) {
  std::vector<uint64_t> members = RandomFingerprints(10'000, 5);
  FingerprintSet copy;
  {
    FingerprintSet original = FingerprintSet::Build(members);
    copy = original;
    EXPECT_EQ(copy.all_slots().data(), original.all_slots().data());
  }
  for (uint64_t fp : members) ASSERT_TRUE(copy.Contains(fp));
}

// --- FromSlots --------------------------------------------------------------

struct Exported {
  int shard_bits;
  std::vector<FingerprintSet::ShardExtent> extents;
  std::vector<uint64_t> slots;
};

Exported Export(const FingerprintSet& set) {
  Exported e{set.shard_bits(), {}, {}};
  for (size_t s = 0; s < set.shard_count(); ++s) {
    e.extents.push_back(set.shard_extent(s));
    absl::Span<const uint64_t> slots = set.shard_slots(s);
    e.slots.insert(e.slots.end(), slots.begin(), slots.end());
  }
  return e;
}

absl::StatusOr<FingerprintSet> Import(const Exported& e) {
  auto owned = std::make_shared<std::vector<uint64_t>>(e.slots);
  return FingerprintSet::FromSlots(e.shard_bits, e.extents, *owned, owned);
}

TEST(FingerprintSetFromSlotsTest, RoundTrip) {
  std::vector<uint64_t> members = RandomFingerprints(20'000, 9);
  members.push_back(0);
  FingerprintSet built = FingerprintSet::Build(members, 3);
  Exported e = Export(built);
  EXPECT_EQ(e.slots.size(), built.all_slots().size());
  EXPECT_TRUE(
      std::equal(e.slots.begin(), e.slots.end(), built.all_slots().begin()));
  absl::StatusOr<FingerprintSet> loaded = Import(e);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->size(), built.size());
  EXPECT_EQ(loaded->shard_bits(), 3);
  EXPECT_EQ(loaded->MemoryBytes(), built.MemoryBytes());
  for (uint64_t fp : members) ASSERT_TRUE(loaded->Contains(fp));
  std::sort(members.begin(), members.end());
  for (uint64_t fp : NonMembers(20'000, 10, members)) {
    ASSERT_FALSE(loaded->Contains(fp));
  }
}

TEST(FingerprintSetFromSlotsTest, RejectsBadShardBits) {
  Exported e = Export(FingerprintSet::Build({1, 2, 3}, 1));
  e.shard_bits = 17;
  EXPECT_EQ(Import(e).status().message(),
            "fingerprint set: shard_bits 17 is outside [0, 16]");
  e.shard_bits = 2;
  EXPECT_EQ(Import(e).status().message(),
            "fingerprint set: 2 shards listed, 4 expected for shard_bits 2");
}

TEST(FingerprintSetFromSlotsTest, RejectsBadExtents) {
  Exported e = Export(FingerprintSet::Build({1, 2, 3}, 1));
  Exported zero = e;
  zero.extents[1].slot_count = 0;
  EXPECT_EQ(Import(zero).status().message(),
            "fingerprint set: shard 1 has 0 slots and " +
                std::to_string(e.extents[1].home_slots) + " home slots");
  Exported too_many = e;
  too_many.extents[1].slot_count += 5;
  too_many.extents[1].home_slots = 0;
  EXPECT_EQ(Import(too_many).status().message(),
            "fingerprint set: shards need more than the " +
                std::to_string(e.slots.size()) + " slots given");
  Exported too_few = e;
  too_few.slots.push_back(0);
  EXPECT_EQ(Import(too_few).status().message(),
            "fingerprint set: shards cover " + std::to_string(e.slots.size()) +
                " slots of " + std::to_string(e.slots.size() + 1));
}

TEST(FingerprintSetFromSlotsTest, RejectsShortLastShard) {
  for (std::vector<uint64_t> fps :
       {std::vector<uint64_t>{},
        std::vector<uint64_t>{1, 2, 3, ~uint64_t{0}}}) {
    Exported e = Export(FingerprintSet::Build(fps, 1));
    EXPECT_TRUE(Import(e).ok());
    const FingerprintSet::ShardExtent last = e.extents.back();
    EXPECT_GE(last.slot_count, std::max<uint64_t>(last.home_slots, 1) +
                                   FingerprintSet::kProbeWindow - 1);
    e.extents.back().slot_count -= 1;
    e.slots.pop_back();
    EXPECT_EQ(
        Import(e).status().message(),
        "fingerprint set: the last shard is too short for a probe window");
  }
}

TEST(FingerprintSetFromSlotsTest, RejectsCorruptSlots) {
  Exported e = Export(FingerprintSet::Build({1, 2, 3}, 1));
  // Shard 0 holds 1, 2, 3 in slots 0..2 (their homes are all 0).
  ASSERT_EQ(e.slots[0], 1u);
  ASSERT_EQ(e.slots[1], 2u);
  ASSERT_EQ(e.slots[2], 3u);

  Exported swapped = e;
  std::swap(swapped.slots[0], swapped.slots[1]);
  EXPECT_EQ(Import(swapped).status().message(),
            "fingerprint set: shard 0 slot 1 is out of order");

  Exported gap = e;
  gap.slots[1] = 0;
  EXPECT_EQ(Import(gap).status().message(),
            "fingerprint set: shard 0 slot 2 is out of order");

  Exported foreign = e;
  foreign.slots[2] = uint64_t{1} << 63;  // belongs to shard 1
  EXPECT_EQ(Import(foreign).status().message(),
            "fingerprint set: shard 0 slot 2 holds an entry of another shard");

  Exported unterminated = e;
  unterminated.slots[e.extents[0].slot_count - 1] = 4;
  EXPECT_EQ(Import(unterminated).status().message(),
            "fingerprint set: shard 0 does not end with an empty slot");
}

}  // namespace
}  // namespace rcptguard::directory
