// Tests of the harvest simulator itself (the anchors behave as specified,
// the generators produce what they claim, runs are deterministic), and
// issue 13's bar for the shipped defaults.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/harvest/harvest.h"
#include "tests/harvest_sim/policy.h"
#include "tests/harvest_sim/simulator.h"
#include "tests/harvest_sim/traffic.h"

namespace rcptguard::harvest_sim {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

Recipient R(bool valid, int i = 0) {
  return {absl::StrCat(valid ? "user" : "nobody", i, "@example.com"), 0, valid,
          true};
}

Transaction Txn(std::vector<bool> valid, std::string edge = "mx1",
                uint64_t session = 1,
                CallPattern pattern = CallPattern::kBatch) {
  Transaction t;
  t.edge = std::move(edge);
  t.session = session;
  t.pattern = pattern;
  t.mail_from = "a@b.example";
  for (size_t i = 0; i < valid.size(); ++i) {
    t.recipients.push_back(R(valid[i], static_cast<int>(i)));
  }
  return t;
}

std::unique_ptr<Policy> Make(const PolicySpec& spec, const Clock* clock,
                             std::vector<std::string> allowlist = {}) {
  absl::StatusOr<std::unique_ptr<Policy>> p = spec.make(clock, allowlist);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Asks for every recipient of `txn` as an edge with its pattern would.
std::vector<Answer> AskAll(Policy& p, const Transaction& txn,
                           std::string_view ip, absl::Time now) {
  std::vector<Answer> out;
  const size_t step =
      txn.pattern == CallPattern::kBatch ? txn.recipients.size() : 1;
  for (size_t i = 0; i < txn.recipients.size(); i += step) {
    p.Answer(
        {.txn = &txn, .client_ip = ip, .first = i, .count = step, .now = now},
        &out);
    if (!out.empty() && out.back().disconnect) break;
  }
  return out;
}

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

// ---- Anchors ---------------------------------------------------------------

TEST(PostfixPolicy, SoftLimitSleepsHardLimitDisconnectsPerSession) {
  std::unique_ptr<Policy> p = Make(PostfixPolicy(), nullptr);
  const Transaction txn = Txn(std::vector<bool>(25, false));
  const std::vector<Answer> a = AskAll(*p, txn, "192.0.2.1", kT0);
  ASSERT_THAT(a, SizeIs(21));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(a[i].reply, Reply::kTruthful) << i;
    EXPECT_EQ(a[i].delay, i < 10 ? absl::ZeroDuration() : absl::Seconds(1))
        << i;
    EXPECT_FALSE(a[i].disconnect) << i;
  }
  EXPECT_EQ(a[20].reply, Reply::kTempfail);
  EXPECT_TRUE(a[20].disconnect);

  // A new session starts from zero errors; valid recipients are no errors.
  const Transaction next = Txn({true, false, true}, "mx1", /*session=*/2);
  for (const Answer& x : AskAll(*p, next, "192.0.2.1", kT0)) {
    EXPECT_EQ(x.reply, Reply::kTruthful);
    EXPECT_EQ(x.delay, absl::ZeroDuration());
  }
}

TEST(ExchangePolicy, TarpitsEveryUnknownUnlessAuthenticated) {
  std::unique_ptr<Policy> p = Make(ExchangePolicy(), nullptr);
  Transaction txn = Txn({false, true, false});
  std::vector<Answer> a = AskAll(*p, txn, "192.0.2.1", kT0);
  ASSERT_THAT(a, SizeIs(3));
  EXPECT_EQ(a[0].delay, absl::Seconds(5));
  EXPECT_EQ(a[1].delay, absl::ZeroDuration());
  EXPECT_EQ(a[2].delay, absl::Seconds(5));
  for (const Answer& x : a) EXPECT_EQ(x.reply, Reply::kTruthful);

  txn.authenticated = true;
  for (const Answer& x : AskAll(*p, txn, "192.0.2.1", kT0)) {
    EXPECT_EQ(x.delay, absl::ZeroDuration());
  }
}

TEST(CiscoDhapPolicy, TwentyFiveInvalidPerHourPerSlash24PerMta) {
  std::unique_ptr<Policy> p = Make(CiscoDhapPolicy(), nullptr);
  const Transaction probe =
      Txn(std::vector<bool>(30, false), "mx1", 1, CallPattern::kPerRcpt);
  const std::vector<Answer> a = AskAll(*p, probe, "192.0.2.1", kT0);
  ASSERT_THAT(a, SizeIs(26));
  for (int i = 0; i < 25; ++i) EXPECT_EQ(a[i].reply, Reply::kTruthful) << i;
  EXPECT_EQ(a[25].reply, Reply::kReject);
  EXPECT_TRUE(a[25].disconnect);

  // The whole /24 is dropped on that MTA, valid recipients too...
  const Transaction legit = Txn({true, true}, "mx1", 2);
  const absl::Time later = kT0 + absl::Minutes(30);
  std::vector<Answer> n = AskAll(*p, legit, "192.0.2.200", later);
  ASSERT_THAT(n, SizeIs(1));
  EXPECT_EQ(n[0].reply, Reply::kReject);
  // ...but not on another MTA, nor another /24, nor authenticated sessions.
  EXPECT_EQ(AskAll(*p, Txn({true}, "mx2", 3), "192.0.2.200", later)[0].reply,
            Reply::kTruthful);
  EXPECT_EQ(AskAll(*p, Txn({true}, "mx1", 4), "192.0.3.1", later)[0].reply,
            Reply::kTruthful);
  Transaction auth = Txn({false}, "mx1", 5);
  auth.authenticated = true;
  EXPECT_EQ(AskAll(*p, auth, "192.0.2.1", later)[0].reply, Reply::kTruthful);
  // The window closes an hour after its first invalid recipient.
  EXPECT_EQ(AskAll(*p, Txn({false}, "mx1", 6), "192.0.2.1",
                   kT0 + absl::Minutes(61))[0]
                .reply,
            Reply::kTruthful);
}

// ---- rcptguard -------------------------------------------------------------

harvest::HarvestConfig TinyConfig() {
  harvest::HarvestConfig c;
  harvest::HarvestRule tarpit;
  tarpit.name = "tarpit";
  tarpit.scopes = {"v4/32"};
  tarpit.window = absl::Minutes(10);
  tarpit.min_unknown = 2;
  tarpit.action = harvest::Action::kTarpit;
  harvest::HarvestRule tempfail = tarpit;
  tempfail.name = "tempfail";
  tempfail.min_unknown = 5;
  tempfail.action = harvest::Action::kTempfail;
  c.rules = {tarpit, tempfail};
  return c;
}

TEST(RcptguardPolicy, MapsVerdictsAsTheServiceDoes) {
  FakeClock clock(kT0);
  std::unique_ptr<Policy> p =
      Make(RcptguardPolicy("rcptguard", TinyConfig()), &clock);
  // 1 unknown in the window: ACCEPT, truthful, no delay.
  std::vector<Answer> a = AskAll(*p, Txn({false, true}), "192.0.2.1", kT0);
  ASSERT_THAT(a, SizeIs(2));
  EXPECT_EQ(a[0].delay, absl::ZeroDuration());
  // 3: TARPIT 1 s per recipient of the call (3 s) before its first
  // answer, then truthful.
  a = AskAll(*p, Txn({false, false, true}), "192.0.2.1", kT0);
  ASSERT_THAT(a, SizeIs(3));
  EXPECT_EQ(a[0].delay, absl::Seconds(3));
  EXPECT_EQ(a[1].delay, absl::ZeroDuration());
  for (const Answer& x : a) EXPECT_EQ(x.reply, Reply::kTruthful);
  // 5 unknown in the window: TEMPFAIL, every recipient of the call, valid
  // ones too.
  a = AskAll(*p, Txn({true, false, false}), "192.0.2.1", kT0);
  ASSERT_THAT(a, SizeIs(3));
  for (const Answer& x : a) EXPECT_EQ(x.reply, Reply::kTempfail);
  // An allowlisted client never is.
  std::unique_ptr<Policy> q = Make(RcptguardPolicy("rcptguard", TinyConfig()),
                                   &clock, {"192.0.2.0/24"});
  for (int i = 0; i < 3; ++i) {
    for (const Answer& x :
         AskAll(*q, Txn({false, false, false}), "192.0.2.1", kT0)) {
      EXPECT_EQ(x.reply, Reply::kTruthful);
      EXPECT_EQ(x.delay, absl::ZeroDuration());
    }
  }
}

TEST(RcptguardPolicy, PerRcptEdgeCallsOncePerRecipient) {
  FakeClock clock(kT0);
  std::unique_ptr<Policy> p =
      Make(RcptguardPolicy("rcptguard", TinyConfig()), &clock);
  const Transaction txn =
      Txn(std::vector<bool>(6, false), "mx2", 1, CallPattern::kPerRcpt);
  const std::vector<Answer> a = AskAll(*p, txn, "192.0.2.1", kT0);
  ASSERT_THAT(a, SizeIs(6));
  EXPECT_EQ(a[0].delay, absl::ZeroDuration());  // 1 unknown
  EXPECT_GT(a[1].delay, absl::ZeroDuration());  // 2: tarpit
  // One transaction: the delay per recipient does not escalate per call.
  EXPECT_EQ(a[3].delay, a[1].delay);
  EXPECT_EQ(a[4].reply, Reply::kTempfail);  // 5
}

// ---- Fingerprints and transaction ids
// ----------------------------------------

TEST(Traffic, FingerprintsAndTransactionIdsAreStable) {
  EXPECT_EQ(Fingerprint("a@example.com"), Fingerprint("a@example.com"));
  EXPECT_NE(Fingerprint("a@example.com"), Fingerprint("b@example.com"));
  Transaction a = Txn({true}, "mx1", 7);
  Transaction b = Txn({false, false}, "mx1", 7);
  EXPECT_EQ(TransactionId(a), TransactionId(b));  // recipients do not matter
  b.edge = "mx2";
  EXPECT_NE(TransactionId(a), TransactionId(b));
  b = a;
  b.session = 8;
  EXPECT_NE(TransactionId(a), TransactionId(b));
  b = a;
  b.mail_from = "";
  EXPECT_NE(TransactionId(a), TransactionId(b));
  EXPECT_NE(TransactionId(a), 0u);
}

TEST(Traffic, NetworkOf) {
  EXPECT_EQ(NetworkOf("192.0.2.77"), "192.0.2.0/24");
  EXPECT_EQ(NetworkOf("2001:db8:5:5:0:0:0:25"), "2001:db8:5:5::/64");
}

// ---- Generators
// ----------------------------------------------------------------

class Generators : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    worlds_ = new std::vector<World>(BuildWorlds(absl::Hours(3)));
  }
  static void TearDownTestSuite() {
    delete worlds_;
    worlds_ = nullptr;
  }
  static std::vector<World>* worlds_;
};
std::vector<World>* Generators::worlds_ = nullptr;

TEST_F(Generators, ScenariosHaveTheLabelledSharesTheyClaim) {
  std::set<std::string> names;
  int legit = 0, harvesters = 0;
  for (const World& w : *worlds_) {
    for (const Scenario& s : w.scenarios) {
      SCOPED_TRACE(s.name);
      EXPECT_TRUE(names.insert(s.name).second) << "duplicate name";
      EXPECT_EQ(
          s.name.rfind(s.label == Label::kHarvester ? "harv-" : "legit-", 0),
          0u);
      (s.label == Label::kHarvester ? harvesters : legit)++;
      ASSERT_FALSE(s.transactions.empty());
      uint64_t total = 0, unknown = 0, probes = 0, valid_probes = 0;
      absl::Duration last;
      std::vector<bool> used(s.sources.size());
      for (const Transaction& t : s.transactions) {
        EXPECT_GE(t.at, last);
        last = t.at;
        EXPECT_LT(t.at, absl::Hours(3));
        ASSERT_LT(t.source, s.sources.size());
        used[t.source] = true;
        EXPECT_FALSE(t.recipients.empty());
        for (const Recipient& r : t.recipients) {
          ++total;
          unknown += !r.valid;
          probes += r.probe;
          valid_probes += r.probe && r.valid;
          EXPECT_EQ(r.address.substr(r.address.find('@') + 1),
                    kDomains[r.domain]);
        }
      }
      // Poisson senders may stay silent over a short run, but not many.
      EXPECT_GE(std::count(used.begin(), used.end(), true),
                0.95 * static_cast<double>(used.size()));
      const double share = static_cast<double>(unknown) / total;
      EXPECT_GE(share, s.min_unknown_share);
      EXPECT_LE(share, s.max_unknown_share);
      if (s.label == Label::kLegitimate) {
        EXPECT_EQ(probes, 0u);
      } else {
        EXPECT_GT(probes, 0u);
        if (probes >= 1000) {  // about 2 % of guesses exist
          const double hit = static_cast<double>(valid_probes) / probes;
          EXPECT_GT(hit, 0.01);
          EXPECT_LT(hit, 0.03);
        }
      }
    }
  }
  EXPECT_GE(legit, 10);
  EXPECT_GE(harvesters, 11);
}

TEST_F(Generators, GuessesAreDistinctAndPeopleStable) {
  for (const World& w : *worlds_) {
    for (const Scenario& s : w.scenarios) {
      if (s.label != Label::kHarvester || s.name == "harv-mixing") continue;
      SCOPED_TRACE(s.name);
      std::set<std::string> unknown_guesses;
      for (const Transaction& t : s.transactions) {
        for (const Recipient& r : t.recipients) {
          if (r.probe && !r.valid) {
            EXPECT_TRUE(unknown_guesses.insert(r.address).second) << r.address;
          }
        }
      }
    }
  }
  // The departed address is one address, sent again and again.
  for (const World& w : *worlds_) {
    for (const Scenario& s : w.scenarios) {
      if (s.name != "legit-saas-retry") continue;
      std::set<std::string> unknown;
      for (const Transaction& t : s.transactions) {
        for (const Recipient& r : t.recipients) {
          if (!r.valid) unknown.insert(r.address);
        }
      }
      EXPECT_THAT(unknown, SizeIs(1));
    }
  }
}

TEST(Determinism, SameWorldsAndSameResults) {
  const std::vector<World> a = BuildWorlds(absl::Hours(2));
  const std::vector<World> b = BuildWorlds(absl::Hours(2));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].scenarios.size(), b[i].scenarios.size());
    for (size_t j = 0; j < a[i].scenarios.size(); ++j) {
      const Scenario& x = a[i].scenarios[j];
      const Scenario& y = b[i].scenarios[j];
      ASSERT_EQ(x.transactions.size(), y.transactions.size()) << x.name;
      for (size_t k = 0; k < x.transactions.size(); ++k) {
        ASSERT_EQ(x.transactions[k].at, y.transactions[k].at);
        ASSERT_EQ(x.transactions[k].session, y.transactions[k].session);
        ASSERT_EQ(x.transactions[k].recipients.size(),
                  y.transactions[k].recipients.size());
        for (size_t r = 0; r < x.transactions[k].recipients.size(); ++r) {
          ASSERT_EQ(x.transactions[k].recipients[r].address,
                    y.transactions[k].recipients[r].address);
        }
      }
    }
  }
  const std::vector<PolicySpec> policies = {
      RcptguardPolicy("rcptguard defaults", harvest::HarvestConfig::Defaults()),
      PostfixPolicy(), ExchangePolicy(), CiscoDhapPolicy()};
  absl::StatusOr<SimResults> r1 =
      Simulate(a, policies, {.run = absl::Hours(2)});
  absl::StatusOr<SimResults> r2 =
      Simulate(b, policies, {.run = absl::Hours(2)});
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(FormatTable(*r1), FormatTable(*r2));
}

// ---- The simulator's time model
// ------------------------------------------------

// Delays every answer by a fixed time; disconnects at the given recipient.
class FixedPolicy final : public Policy {
 public:
  FixedPolicy(absl::Duration delay, Reply reply = Reply::kTruthful)
      : delay_(delay), reply_(reply) {}
  void Answer(const Call& call,
              std::vector<harvest_sim::Answer>* out) override {
    for (size_t i = 0; i < call.count; ++i) {
      out->push_back({.reply = reply_,
                      .delay = delay_,
                      .disconnect = reply_ != Reply::kTruthful});
      if (reply_ != Reply::kTruthful) return;
    }
  }

 private:
  absl::Duration delay_;
  Reply reply_;
};

PolicySpec Fixed(absl::Duration delay, Reply reply = Reply::kTruthful) {
  return {"fixed",
          [=](const Clock*, const std::vector<std::string>&)
              -> absl::StatusOr<std::unique_ptr<Policy>> {
            return std::make_unique<FixedPolicy>(delay, reply);
          }};
}

// One source meaning to send one guess per second for an hour.
World OneSource(Label label) {
  Scenario s;
  s.name = "one";
  s.label = label;
  s.sources = {{"192.0.2.1", "192.0.2.1"}};
  for (int i = 0; i < 3600; ++i) {
    Transaction t = Txn({false});
    t.at = absl::Seconds(i);
    t.session = i;
    t.pattern = CallPattern::kPerRcpt;
    s.transactions.push_back(std::move(t));
  }
  return {"one", {std::move(s)}};
}

TEST(Simulator, TarpitsSlowASequentialSource) {
  absl::StatusOr<SimResults> r =
      Simulate({OneSource(Label::kHarvester)},
               {Fixed(absl::ZeroDuration()), Fixed(absl::Seconds(10))},
               {.run = absl::Hours(1)});
  ASSERT_TRUE(r.ok()) << r.status();
  const Measures& fast = r->scenarios[0].by_policy[0];
  const Measures& slow = r->scenarios[0].by_policy[1];
  EXPECT_EQ(fast.transactions, 3600u);
  EXPECT_EQ(fast.truthful, 3600u);
  EXPECT_EQ(fast.unsent, 0u);
  // 10 s + 50 ms per guess: 3600 / 10.05 of them fit in the hour.
  EXPECT_EQ(slow.transactions, 359u);
  EXPECT_EQ(slow.truthful, 359u);
  EXPECT_EQ(slow.unsent, 3600u - 359u);
  EXPECT_EQ(slow.worst_source_hour, 359u);
}

TEST(Simulator, LegitimateMeasuresCountTransactions) {
  World w = OneSource(Label::kLegitimate);
  w.scenarios[0].transactions.resize(10);
  for (Transaction& t : w.scenarios[0].transactions) {
    t.recipients = {R(true), R(false), R(true)};
    t.pattern = CallPattern::kBatch;
  }
  absl::StatusOr<SimResults> r =
      Simulate({w},
               {Fixed(absl::Milliseconds(500)),
                Fixed(absl::ZeroDuration(), Reply::kTempfail),
                Fixed(absl::ZeroDuration(), Reply::kReject)},
               {.run = absl::Hours(1)});
  ASSERT_TRUE(r.ok()) << r.status();
  const Measures& delayed = r->scenarios[0].by_policy[0];
  EXPECT_EQ(delayed.delayed, 10u);
  EXPECT_DOUBLE_EQ(delayed.delay_seconds, 15.0);  // 3 answers x 0.5 s x 10
  EXPECT_EQ(delayed.tempfailed + delayed.rejected, 0u);
  const Measures& tempfailed = r->scenarios[0].by_policy[1];
  EXPECT_EQ(tempfailed.tempfailed, 10u);
  EXPECT_EQ(tempfailed.recipients_tempfailed, 30u);  // the unsent ones too
  EXPECT_EQ(r->scenarios[0].by_policy[2].rejected, 10u);
  EXPECT_EQ(r->scenarios[0].by_policy[2].recipients_rejected, 30u);
}

TEST(Simulator, CheckBarNamesEachViolation) {
  SimResults r;
  r.run = absl::Hours(1);
  r.policies = {"rcptguard x", "anchor"};
  ScenarioResult legit;
  legit.name = "legit-a";
  legit.label = Label::kLegitimate;
  legit.by_policy.resize(2);
  legit.by_policy[0].tempfailed = 1;
  legit.by_policy[0].delay_seconds = 6;
  ScenarioResult harv;
  harv.name = "harv-b";
  harv.label = Label::kHarvester;
  harv.by_policy.resize(2);
  harv.by_policy[0].truthful = 60;
  harv.by_policy[0].truthful_by_hour = {60};
  harv.by_policy[0].worst_source_hour = 51;
  harv.by_policy[0].worst_group_hour = 60;
  harv.by_policy[1].truthful = 59;
  r.scenarios = {legit, harv};
  EXPECT_THAT(CheckBar(r, "rcptguard x"),
              ::testing::ElementsAre(
                  "legit-a: 1 transactions tempfailed (bar 0)",
                  "legit-a: 6 s of delay over 0 transactions (bar 5 s)",
                  "harv-b: 51 truthful answers to one source in an hour (bar "
                  "50)",
                  "harv-b: 60.0 truthful answers per hour, more than under "
                  "anchor (59.0)"));
  harv.by_policy[0] = Measures();
  r.scenarios = {harv};
  EXPECT_THAT(CheckBar(r, "rcptguard x"), IsEmpty());
}

// ---- Issue 13's bar
// --------------------------------------------------------------

// Issue 13's bar, on the shipped defaults over a whole simulated day (about
// a second): every legitimate profile gets no tempfail, no reject and at
// most a few seconds of delay; every harvester gets fewer truthful answers
// than under any anchor policy and at most 50 per source (150 per network
// or target domain) in any hour.
TEST(Bar, DefaultsMeetTheBar) {
  const absl::Duration run = absl::Hours(24);
  absl::StatusOr<SimResults> r =
      Simulate(BuildWorlds(run),
               {RcptguardPolicy("rcptguard defaults",
                                harvest::HarvestConfig::Defaults()),
                PostfixPolicy(), ExchangePolicy(), CiscoDhapPolicy()},
               {.run = run});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(CheckBar(*r, "rcptguard defaults"), IsEmpty()) << FormatTable(*r);
}

}  // namespace
}  // namespace rcptguard::harvest_sim
