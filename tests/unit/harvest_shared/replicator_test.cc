// The Replicator against a real, private redis-server (unix socket): two
// detectors standing for two replicas exchange state through it.
#include "server/harvest_shared/replicator.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/harvest/harvest.h"
#include "tests/testutil/harvest_builders.h"
#include "tests/testutil/redis.h"

namespace rcptguard::harvest_shared {
namespace {

using harvest::Action;
using harvest::Detector;
using harvest::HarvestConfig;
using harvest::Observation;

HarvestConfig Config() {
  return testing::OneClientRule(Action::kReject, 20, absl::Minutes(1),
                                absl::Minutes(5));
}

using testing::Recipients;

bool Eventually(const std::function<bool()>& cond,
                absl::Duration timeout = absl::Seconds(3)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return cond();
}

struct Replica {
  std::unique_ptr<Detector> detector;
  std::unique_ptr<Replicator> replicator;
};

class ReplicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start(dir_.path());
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
  }

  Replica Make(size_t max_queued = 1000,
               absl::Duration flush_interval = absl::Milliseconds(50)) {
    Replica r;
    auto d = Detector::Create(Config(), RealClock::Get(), 0);
    EXPECT_TRUE(d.ok());
    r.detector = *std::move(d);
    Replicator::Options o;
    o.address = redis_->address();
    o.flush_interval = flush_interval;
    o.command_timeout = absl::Milliseconds(300);
    o.connect_timeout = absl::Milliseconds(300);
    o.max_queued_deltas = max_queued;
    o.min_backoff = absl::Milliseconds(20);
    o.max_backoff = absl::Milliseconds(200);
    auto made = Replicator::Create(o, r.detector.get());
    EXPECT_TRUE(made.ok()) << made.status();
    r.replicator = *std::move(made);
    r.replicator->Start();
    return r;
  }

  testing::ScopedTempDir dir_{"rg-redis-unit"};
  std::unique_ptr<testing::RedisServer> redis_;
};

TEST_F(ReplicatorTest, CountsAndBoxesReachTheOtherReplica) {
  Replica a = Make();
  Replica b = Make();
  ASSERT_TRUE(Eventually([&] { return a.replicator->status().connected; }));
  a.detector->Observe(Recipients("192.0.2.9", 12));
  b.detector->Observe(Recipients("192.0.2.9", 5));
  ASSERT_TRUE(Eventually([&] {
    return b.detector->Peek("192.0.2.9").unknown_in_window == 17 &&
           a.detector->Peek("192.0.2.9").unknown_in_window == 17;
  }));
  // 20 in all: a fires and boxes the client; b holds the box without
  // having counted the last probes.
  EXPECT_EQ(a.detector->Observe(Recipients("192.0.2.9", 3)).action,
            Action::kReject);
  ASSERT_TRUE(Eventually(
      [&] { return b.detector->Peek("192.0.2.9").action == Action::kReject; }));
  // A replica that starts now loads the box within an interval or two.
  Replica c = Make();
  ASSERT_TRUE(Eventually(
      [&] { return c.detector->Peek("192.0.2.9").action == Action::kReject; }));
  EXPECT_GT(a.replicator->status().flushes, 0u);
  EXPECT_EQ(a.replicator->status().dropped_deltas, 0u);
}

TEST_F(ReplicatorTest, EveryKeyHasATtl) {
  Replica a = Make();
  a.detector->Observe(Recipients("198.51.100.1", 2));
  a.detector->Observe(Recipients("198.51.100.2", 30));  // boxed
  ASSERT_TRUE(Eventually([&] {
    auto n = redis_->Cli({"DBSIZE"});
    // Two /32, one /24, the active set and its score clock.
    return n.ok() && *n == "5";
  })) << redis_->Cli({"KEYS", "*"}).value_or("");
  auto keys = redis_->Cli({"KEYS", "*"});
  ASSERT_TRUE(keys.ok());
  for (absl::string_view key : absl::StrSplit(*keys, '\n')) {
    auto ttl = redis_->Cli({"PTTL", std::string(key)});
    ASSERT_TRUE(ttl.ok());
    EXPECT_GT(std::stoll(*ttl), 0) << key;
  }
}

TEST_F(ReplicatorTest, ForgetClearsEveryReplica) {
  Replica a = Make();
  Replica b = Make();
  a.detector->Observe(Recipients("203.0.113.4", 25));
  // a writes the /32 and the /24 as two commands; b's poll may fall between
  // them and fetch the /24 one flush later. Wait for both.
  ASSERT_TRUE(Eventually([&] {
    return b.detector->Peek("203.0.113.4").action == Action::kReject &&
           b.detector->Stats().tracked_keys == 2;
  }));
  auto removed = b.replicator->Forget("203.0.113.4");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 2u);
  ASSERT_TRUE(Eventually([&] {
    return a.detector->Peek("203.0.113.4").action == Action::kAccept &&
           a.detector->Stats().tracked_keys == 0;
  }));
  EXPECT_EQ(
      redis_->Cli({"EXISTS", "rcptguard:1000:k:203.0.113.4/32"}).value_or("?"),
      "0");
  EXPECT_EQ(a.replicator->status().forgets_applied, 1u);
}

// A replica that has not yet learned of a forget extends its old box on
// the client's next probe; that delta is newer than the forget, but its
// box must not go back into Redis (where the other replicas would fetch
// it for the whole penalty).
TEST_F(ReplicatorTest, AReplicaThatHasNotHeardOfAForgetDoesNotPutTheBoxBack) {
  Replica a = Make();
  Replica b = Make(1000, /*flush_interval=*/absl::Seconds(2));
  a.detector->Observe(Recipients("203.0.113.8", 25));
  ASSERT_TRUE(Eventually(
      [&] { return b.detector->Peek("203.0.113.8").action == Action::kReject; },
      absl::Seconds(10)));
  ASSERT_TRUE(a.replicator->Forget("203.0.113.8").ok());
  const std::string tomb = "rcptguard:1000:t:203.0.113.8/32";
  ASSERT_TRUE(Eventually([&] {
    return redis_->Cli({"EXISTS", tomb}).value_or("") == "1";
  })) << redis_->Cli({"KEYS", "*"}).value_or("");
  // b still holds the box (its next flush is up to 2 s away) and the
  // client probes it: the box is extended there, after the forget.
  const bool b_boxed =
      b.detector->Peek("203.0.113.8").action == Action::kReject;
  b.detector->Observe(Recipients("203.0.113.8", 1));
  // b flushes (and learns of the forget); a fetches what b wrote.
  const uint64_t flushes = b.replicator->status().flushes;
  ASSERT_TRUE(
      Eventually([&] { return b.replicator->status().flushes >= flushes + 2; },
                 absl::Seconds(10)));
  EXPECT_EQ(redis_->Cli({"HEXISTS", "rcptguard:1000:k:203.0.113.8/32", "p0"})
                .value_or("?"),
            "0");
  absl::SleepFor(absl::Milliseconds(300));  // a few of a's flushes
  EXPECT_EQ(a.detector->Peek("203.0.113.8").action, Action::kAccept);
  EXPECT_EQ(b.detector->Peek("203.0.113.8").action, Action::kAccept);
  if (!b_boxed) {
    GTEST_LOG_(INFO) << "b had learned of the forget before the probe: the "
                        "stale box was not exercised this run";
  }
}

TEST_F(ReplicatorTest, RedisGoneMeansLocalCountingAndABoundedQueue) {
  Replica a = Make(/*max_queued=*/5);
  ASSERT_TRUE(Eventually([&] { return a.replicator->status().connected; }));
  redis_->Kill();
  ASSERT_TRUE(Eventually([&] { return !a.replicator->status().connected; }));
  EXPECT_EQ(a.replicator->status().state, "disconnected");
  // Local counting goes on; deltas of 20 keys wait in a queue of 5.
  for (int i = 0; i < 10; ++i) {
    a.detector->Observe(Recipients(absl::StrCat("10.1.", i, ".1"), 1));
  }
  EXPECT_EQ(a.detector->Observe(Recipients("10.9.9.9", 20)).action,
            Action::kReject);
  ASSERT_TRUE(
      Eventually([&] { return a.replicator->status().dropped_deltas >= 15; }));
  EXPECT_LE(a.replicator->status().queued_deltas, 5u);
  // Back, empty: reconnects and writes what was queued.
  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(Eventually([&] { return a.replicator->status().connected; },
                         absl::Seconds(5)));
  EXPECT_GT(a.replicator->status().reconnects, 0u);
  ASSERT_TRUE(Eventually([&] {
    return a.replicator->status().queued_deltas == 0 &&
           redis_->Cli({"DBSIZE"}).value_or("0") != "0";
  }));
  // Redis lost everything; the local view is intact.
  EXPECT_EQ(a.detector->Peek("10.9.9.9").action, Action::kReject);
}

TEST_F(ReplicatorTest, FrozenRedisTimesOutAndRecovers) {
  Replica a = Make();
  ASSERT_TRUE(Eventually([&] { return a.replicator->status().connected; }));
  redis_->Pause();
  ASSERT_TRUE(Eventually([&] { return !a.replicator->status().connected; }));
  EXPECT_GT(a.replicator->status().errors, 0u);
  a.detector->Observe(Recipients("192.0.2.200", 3));  // never blocks
  redis_->Resume();
  ASSERT_TRUE(Eventually([&] { return a.replicator->status().connected; },
                         absl::Seconds(5)));
}

// AUTH: the right password connects; a wrong one is reported, retried
// with backoff, and never counts as connected.
TEST(ReplicatorAuthTest, PasswordIsSentAndAWrongOneIsReported) {
  testing::ScopedTempDir dir("rg-redis-auth");
  auto redis = testing::RedisServer::Start(dir.path(), /*tcp=*/false,
                                           {"--requirepass", "s3cret"});
  ASSERT_TRUE(redis.ok()) << redis.status();
  for (const std::string password : {"s3cret", "wrong"}) {
    auto d = Detector::Create(Config(), RealClock::Get(), 0);
    ASSERT_TRUE(d.ok());
    Replicator::Options o;
    o.address = (*redis)->address();
    o.password = password;
    o.flush_interval = absl::Milliseconds(20);
    o.min_backoff = absl::Milliseconds(20);
    auto r = Replicator::Create(o, d->get());
    ASSERT_TRUE(r.ok());
    (*r)->Start();
    if (password == "s3cret") {
      ASSERT_TRUE(Eventually([&] { return (*r)->status().connected; }));
      (*d)->Observe(Recipients("192.0.2.1", 2));
      ASSERT_TRUE(Eventually(
          [&] { return (*redis)->Cli({"DBSIZE"}).value_or("0") != "0"; }));
    } else {
      ASSERT_TRUE(Eventually([&] { return (*r)->status().errors >= 2; }));
      const ReplicatorStatus st = (*r)->status();
      EXPECT_FALSE(st.connected);
      EXPECT_EQ(st.state, "disconnected");
      EXPECT_NE(st.last_error.find("AUTH"), std::string::npos) << st.last_error;
    }
  }
}

// Regression: over TCP, a Redis frozen (the pipeline times out), thawed,
// then killed while a flush was under way crashed the process.
TEST(ReplicatorTcpTest, FrozenThawedThenKilled) {
  testing::ScopedTempDir dir("rg-redis-tcp");
  auto redis = testing::RedisServer::Start(dir.path(), /*tcp=*/true);
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto d = Detector::Create(Config(), RealClock::Get(), 0);
  ASSERT_TRUE(d.ok());
  Replicator::Options o;
  o.address = (*redis)->address();
  o.flush_interval = absl::Milliseconds(20);
  o.command_timeout = absl::Milliseconds(200);
  o.connect_timeout = absl::Milliseconds(200);
  o.min_backoff = absl::Milliseconds(20);
  auto r = Replicator::Create(o, d->get());
  ASSERT_TRUE(r.ok());
  (*r)->Start();
  ASSERT_TRUE(Eventually([&] { return (*r)->status().connected; }));
  for (int round = 0; round < 3; ++round) {
    (*redis)->Pause();
    for (int i = 0; i < 30; ++i) {
      (*d)->Observe(Recipients(absl::StrCat("10.7.", round, ".", i), 1));
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_TRUE(Eventually([&] { return !(*r)->status().connected; }));
    (*redis)->Resume();
    ASSERT_TRUE(Eventually([&] { return (*r)->status().connected; }));
    for (int i = 0; i < 30; ++i) {
      (*d)->Observe(Recipients(absl::StrCat("10.8.", round, ".", i), 1));
    }
    (*redis)->Kill();
    for (int i = 0; i < 30; ++i) {
      (*d)->Observe(Recipients(absl::StrCat("10.9.", round, ".", i), 1));
      absl::SleepFor(absl::Milliseconds(2));
    }
    ASSERT_TRUE(Eventually([&] { return !(*r)->status().connected; }));
    ASSERT_TRUE((*redis)->Restart().ok());
    ASSERT_TRUE(Eventually([&] { return (*r)->status().connected; }));
  }
}

TEST_F(ReplicatorTest, RefusedWritesAreReportedAndRetried) {
  Replica a = Make();
  ASSERT_TRUE(Eventually([&] { return a.replicator->status().connected; }));
  ASSERT_TRUE(
      redis_->Cli({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).ok());
  ASSERT_TRUE(redis_->Cli({"CONFIG", "SET", "maxmemory", "1"}).ok());
  a.detector->Observe(Recipients("192.0.2.77", 3));
  ASSERT_TRUE(Eventually(
      [&] { return a.replicator->status().state == "writes failing"; }));
  EXPECT_NE(a.replicator->status().last_error.find("OOM"), std::string::npos)
      << a.replicator->status().last_error;
  ASSERT_TRUE(redis_->Cli({"CONFIG", "SET", "maxmemory", "0"}).ok());
  a.detector->Observe(Recipients("192.0.2.78", 1));
  ASSERT_TRUE(
      Eventually([&] { return a.replicator->status().state == "connected"; }));
}

}  // namespace
}  // namespace rcptguard::harvest_shared
