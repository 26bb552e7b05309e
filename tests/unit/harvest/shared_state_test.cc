// Deltas and merges between replicas (Detector::TakeDeltas / MergeShared),
// with a fake clock and no Redis: two detectors exchange state by hand the
// way server/harvest_shared does through Redis.
#include "server/harvest/shared_state.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/harvest/harvest.h"
#include "tests/testutil/harvest_builders.h"

namespace rcptguard::harvest {
namespace {

HarvestConfig OneRule(Action action, uint32_t min_unknown,
                      absl::Duration penalty = absl::ZeroDuration()) {
  return testing::OneClientRule(action, min_unknown, absl::Minutes(10),
                                penalty);
}

using testing::Recipients;

// A toy Redis: per key, the sum of every delta (counts added, sketches
// ORed, boxes: the latest), so tests can check the merge rules.
class FakeStore {
 public:
  // Applies deltas; returns the global state of each delta's key.
  std::vector<SharedKey> Apply(const std::vector<SharedKey>& deltas) {
    std::vector<SharedKey> out;
    for (const SharedKey& d : deltas) {
      SharedKey& g = Find(d.key);
      for (const SharedBucket& b : d.buckets) {
        SharedBucket& gb = BucketOf(g, b.epoch);
        gb.valid += b.valid;
        gb.unknown += b.unknown;
        gb.not_served += b.not_served;
        gb.malformed += b.malformed;
      }
      for (const SharedSlot& s : d.slots) {
        SharedSlot& gs = SlotOf(g, s.epoch);
        gs.null_unknown += s.null_unknown;
        gs.null_total += s.null_total;
        gs.recipients |= s.recipients;
        gs.clients |= s.clients;
      }
      if (d.has_boxes) {
        g.has_boxes = true;
        for (int m = 0; m < 2; ++m) {
          if (d.boxes[m].until_ms > g.boxes[m].until_ms) {
            g.boxes[m] = d.boxes[m];
          }
        }
      }
      out.push_back(g);
    }
    return out;
  }
  std::vector<SharedKey> All() const { return keys_; }
  void Clear() { keys_.clear(); }

 private:
  SharedKey& Find(const PrefixKey& k) {
    for (SharedKey& g : keys_) {
      if (g.key == k) return g;
    }
    SharedKey& g = keys_.emplace_back();
    g.key = k;
    return g;
  }
  static SharedBucket& BucketOf(SharedKey& g, int64_t e) {
    for (SharedBucket& b : g.buckets) {
      if (b.epoch == e) return b;
    }
    SharedBucket& b = g.buckets.emplace_back();
    b.epoch = e;
    return b;
  }
  static SharedSlot& SlotOf(SharedKey& g, int64_t e) {
    for (SharedSlot& s : g.slots) {
      if (s.epoch == e) return s;
    }
    SharedSlot& s = g.slots.emplace_back();
    s.epoch = e;
    return s;
  }
  std::vector<SharedKey> keys_;
};

class SharedStateTest : public ::testing::Test {
 protected:
  std::unique_ptr<Detector> Make(const HarvestConfig& config) {
    auto d = Detector::Create(config, &clock_, 0);
    EXPECT_TRUE(d.ok()) << d.status();
    (*d)->RecordDeltas([this] { ++box_wakes_; });
    return *std::move(d);
  }
  // One flush of `d`: its deltas into the store, the global state back.
  void Flush(Detector& d) { d.MergeShared(store_.Apply(d.TakeDeltas(1000))); }
  // Fetch of everything (what a poll of the active set brings).
  void Fetch(Detector& d) { d.MergeShared(store_.All()); }

  FakeClock clock_;
  FakeStore store_;
  int box_wakes_ = 0;
};

TEST_F(SharedStateTest, DeltasHoldWhatWasCountedSinceTheLastTake) {
  auto d = Make(OneRule(Action::kTarpit, 100));
  d->Observe(Recipients("192.0.2.7", 3));
  d->Observe(Recipients("192.0.2.7", 2));
  std::vector<SharedKey> deltas = d->TakeDeltas(100);
  // The /32 and the /24 (default prefixes).
  ASSERT_EQ(deltas.size(), 2u);
  for (const SharedKey& k : deltas) {
    ASSERT_EQ(k.buckets.size(), 1u);
    EXPECT_EQ(k.buckets[0].unknown, 5u);
    ASSERT_EQ(k.slots.size(), 1u);
    EXPECT_NE(k.slots[0].recipients, 0u);  // unfingerprinted: distinct
    EXPECT_TRUE(k.Suspicious());
    EXPECT_FALSE(k.has_boxes);
  }
  EXPECT_TRUE(d->TakeDeltas(100).empty());
  d->Observe(Recipients("192.0.2.7", 1));
  deltas = d->TakeDeltas(100);
  ASSERT_EQ(deltas.size(), 2u);
  EXPECT_EQ(deltas[0].buckets[0].unknown, 1u);
}

TEST_F(SharedStateTest, TakeDeltasIsBounded) {
  auto d = Make(OneRule(Action::kTarpit, 100));
  for (int i = 0; i < 10; ++i) {
    d->Observe(Recipients("10.0.0." + std::to_string(i), 1));
  }
  // 10 /32 keys and one /24.
  EXPECT_EQ(d->TakeDeltas(4).size(), 4u);
  EXPECT_EQ(d->TakeDeltas(100).size(), 7u);
}

TEST_F(SharedStateTest, NothingRecordedWithoutRecordDeltas) {
  auto made = Detector::Create(OneRule(Action::kTarpit, 100), &clock_, 0);
  ASSERT_TRUE(made.ok());
  (*made)->Observe(Recipients("192.0.2.7", 3));
  EXPECT_TRUE((*made)->TakeDeltas(100).empty());
}

TEST_F(SharedStateTest, ThreeReplicasCountAHarvesterOnce) {
  // Threshold 10 on the /32. Spread over three replicas that flush after
  // every probe, the fourth replica-local probe already sees the global
  // count; without sharing each replica would wait for 10 of its own.
  std::unique_ptr<Detector> r[3] = {Make(OneRule(Action::kTempfail, 10)),
                                    Make(OneRule(Action::kTempfail, 10)),
                                    Make(OneRule(Action::kTempfail, 10))};
  int first_block = -1;
  for (int i = 0; i < 30 && first_block < 0; ++i) {
    Detector& d = *r[i % 3];
    Fetch(d);  // what the poll of the active set brings
    const Verdict v = d.Observe(Recipients("198.51.100.9", 1));
    Flush(d);
    if (v.action == Action::kTempfail) first_block = i;
  }
  EXPECT_EQ(first_block, 9);  // the 10th probe, as in one process
}

TEST_F(SharedStateTest, MergeKeepsWhatWasCountedAfterTheTake) {
  auto a = Make(OneRule(Action::kTarpit, 100));
  auto b = Make(OneRule(Action::kTarpit, 100));
  a->Observe(Recipients("192.0.2.7", 4));
  std::vector<SharedKey> in_flight = a->TakeDeltas(100);
  b->Observe(Recipients("192.0.2.7", 5));
  Flush(*b);
  // While a's deltas are in flight, a counts 2 more.
  a->Observe(Recipients("192.0.2.7", 2));
  a->MergeShared(store_.Apply(in_flight));
  // Global 9 plus the 2 not yet sent.
  EXPECT_EQ(a->Peek("192.0.2.7").unknown_in_window, 11u);
  Flush(*a);
  EXPECT_EQ(a->Peek("192.0.2.7").unknown_in_window, 11u);
  Fetch(*b);
  EXPECT_EQ(b->Peek("192.0.2.7").unknown_in_window, 11u);
}

TEST_F(SharedStateTest, MergeNeverLowersLocalCounts) {
  // Redis restarted empty, or refused the write: the global state is
  // smaller than what this replica counted; it keeps its own.
  auto a = Make(OneRule(Action::kTarpit, 100));
  a->Observe(Recipients("192.0.2.7", 6));
  a->TakeDeltas(100);  // lost
  SharedKey empty;
  ASSERT_TRUE(ParseCidr("192.0.2.7/32").ok());
  empty.key = *ParseCidr("192.0.2.7/32");
  empty.last_seen_ms = absl::ToUnixMillis(clock_.Now());
  SharedBucket b;
  b.epoch = absl::ToUnixNanos(clock_.Now()) /
            absl::ToInt64Nanoseconds(a->bucket_width());
  b.unknown = 1;
  empty.buckets = {b};
  a->MergeShared({empty});
  EXPECT_EQ(a->Peek("192.0.2.7").unknown_in_window, 6u);
}

TEST_F(SharedStateTest, SketchesAreOrMergedAcrossReplicas) {
  // Distinct unknown recipients: the same five addresses probed on two
  // replicas are five, not ten; five others make ten.
  HarvestConfig config = OneRule(Action::kTempfail, 1);
  config.rules[0].min_distinct_unknown = 8;
  auto a = Make(config);
  auto b = Make(config);
  std::vector<uint64_t> fp_a = {11, 22, 33, 44, 55};
  std::vector<uint64_t> fp_b = {11, 22, 33, 44, 55};
  Observation oa = Recipients("203.0.113.5", 5);
  oa.unknown_fingerprints = fp_a;
  Observation ob = Recipients("203.0.113.5", 5);
  ob.unknown_fingerprints = fp_b;
  a->Observe(oa);
  Flush(*a);
  b->Observe(ob);
  Flush(*b);
  EXPECT_EQ(b->Peek("203.0.113.5").action, Action::kAccept);  // 5 distinct
  std::vector<uint64_t> fp_c = {66, 77, 88, 99, 111};
  Observation oc = Recipients("203.0.113.5", 5);
  oc.unknown_fingerprints = fp_c;
  b->Observe(oc);
  Flush(*b);
  Fetch(*a);
  EXPECT_EQ(a->Peek("203.0.113.5").action, Action::kTempfail);
}

TEST_F(SharedStateTest, BoxesAreWrittenThroughAndHeldEverywhere) {
  auto a = Make(OneRule(Action::kReject, 3, absl::Minutes(30)));
  auto b = Make(OneRule(Action::kReject, 3, absl::Minutes(30)));
  EXPECT_EQ(a->Observe(Recipients("192.0.2.66", 3)).action, Action::kReject);
  EXPECT_EQ(box_wakes_, 1);  // the caller is told at once
  Flush(*a);
  // Much later the window is empty, the box still holds on b, which never
  // saw the client.
  clock_.Advance(absl::Minutes(20));
  Fetch(*b);
  const Verdict v = b->Peek("192.0.2.66");
  EXPECT_EQ(v.action, Action::kReject);
  EXPECT_EQ(v.rule, "probe");
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(b->Peek("192.0.2.66").action, Action::kAccept);
}

TEST_F(SharedStateTest, BoxesOfUnknownRulesAreIgnored) {
  auto a = Make(OneRule(Action::kReject, 3, absl::Minutes(30)));
  a->Observe(Recipients("192.0.2.66", 3));
  std::vector<SharedKey> deltas = a->TakeDeltas(10);
  for (SharedKey& k : deltas) {
    for (SharedBox& box : k.boxes) {
      if (box.until_ms > 0) box.rule = "no-such-rule";
    }
    k.buckets.clear();
  }
  auto b = Make(OneRule(Action::kReject, 3, absl::Minutes(30)));
  b->MergeShared(deltas);
  EXPECT_EQ(b->Peek("192.0.2.66").action, Action::kAccept);
}

TEST_F(SharedStateTest, StaleStateIsNotInserted) {
  auto a = Make(OneRule(Action::kTarpit, 100));
  a->Observe(Recipients("192.0.2.7", 4));
  Flush(*a);
  clock_.Advance(absl::Hours(2));  // past every window
  auto b = Make(OneRule(Action::kTarpit, 100));
  const MergeStats stats = b->MergeShared(store_.All());
  EXPECT_EQ(stats.merged, 0u);
  EXPECT_EQ(stats.skipped, 2u);
  EXPECT_EQ(b->Stats().tracked_keys, 0u);
}

TEST_F(SharedStateTest, ForgetKeysNamesEveryKeyOfAnAddress) {
  auto a = Make(OneRule(Action::kTarpit, 100));
  a->Observe(Recipients("192.0.2.7", 4));
  absl::StatusOr<Detector::Forgotten> f = a->ForgetKeys("192.0.2.7");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->removed, 2u);
  ASSERT_EQ(f->keys.size(), 2u);
  EXPECT_EQ(FormatPrefixKey(f->keys[0]), "192.0.2.7/32");
  EXPECT_EQ(FormatPrefixKey(f->keys[1]), "192.0.2.0/24");
  // Forgotten keys leave no delta behind.
  EXPECT_TRUE(a->TakeDeltas(10).empty());
  // Not seen here: nothing removed, the keys still named for the others.
  f = a->ForgetKeys("192.0.2.8");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->removed, 0u);
  EXPECT_EQ(f->keys.size(), 2u);
  f = a->ForgetKeys("192.0.2.0/24");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->keys.empty());
}

TEST_F(SharedStateTest, UnparsableClientsAreNotShared) {
  auto a = Make(OneRule(Action::kTarpit, 100));
  a->Observe(Recipients("not an ip", 4));
  EXPECT_TRUE(a->TakeDeltas(10).empty());
}

}  // namespace
}  // namespace rcptguard::harvest
