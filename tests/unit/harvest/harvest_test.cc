#include "server/harvest/harvest.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/harvest_builders.h"

namespace rcptguard::harvest {
namespace {

using ::testing::ElementsAre;

HarvestRule Rule(std::string name, std::vector<std::string> scopes,
                 absl::Duration window, uint32_t min_unknown, Action action) {
  HarvestRule r;
  r.name = std::move(name);
  r.scopes = std::move(scopes);
  r.window = window;
  r.min_unknown = min_unknown;
  r.action = action;
  return r;
}

// A config with only the given rules, so each test sees one behaviour.
HarvestConfig With(std::vector<HarvestRule> rules) {
  HarvestConfig c = HarvestConfig::Defaults();
  c.rules = std::move(rules);
  return c;
}

using testing::Recipients;

std::string V4(uint32_t n) {
  return absl::StrCat(n >> 24 & 255, ".", n >> 16 & 255, ".", n >> 8 & 255, ".",
                      n & 255);
}

class HarvestTest : public ::testing::Test {
 protected:
  std::unique_ptr<Detector> Make(HarvestConfig config, size_t domains = 0) {
    auto d = Detector::Create(std::move(config), &clock_, domains);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *std::move(d) : nullptr;
  }

  // A whole hour since the epoch, so every bucket boundary (10 s, 1 min,
  // 5 min) falls on it and expected instants are exact.
  FakeClock clock_{absl::FromUnixSeconds(1'700'006'400)};
};

TEST_F(HarvestTest, CleanClientIsAccepted) {
  auto d = Make(HarvestConfig::Defaults());
  const Verdict v = d->Observe(Recipients("192.0.2.1", 0, 5));
  EXPECT_EQ(v.action, Action::kAccept);
  EXPECT_EQ(v.observed_action, Action::kAccept);
  EXPECT_EQ(v.rule, "");
  EXPECT_EQ(v.reply.code, 0u);
  EXPECT_EQ(v.exempt, Exemption::kNone);
  EXPECT_EQ(FormatPrefixKey(v.key), "192.0.2.1/32");
  EXPECT_EQ(v.blocked_until, absl::InfinitePast());
}

TEST_F(HarvestTest, WindowSlides) {
  auto d = Make(
      With({Rule("t", {"v4/32"}, absl::Minutes(10), 10, Action::kTarpit)}));
  // 10 minutes over 60 buckets of 10 s each.
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 5)).action, Action::kAccept);
  clock_.Advance(absl::Minutes(6));
  const Verdict v = d->Observe(Recipients("192.0.2.1", 5));
  EXPECT_EQ(v.action, Action::kTarpit);
  EXPECT_EQ(v.unknown_in_window, 10u);
  // The first 5 leave the window 10 minutes after they came.
  clock_.Advance(absl::Minutes(4) + absl::Seconds(10));
  Verdict peek = d->Peek("192.0.2.1");
  EXPECT_EQ(peek.action, Action::kAccept);
  EXPECT_EQ(peek.unknown_in_window, 5u);
  // And the rest six minutes later.
  clock_.Advance(absl::Minutes(6));
  peek = d->Peek("192.0.2.1");
  EXPECT_EQ(peek.unknown_in_window, 0u);
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 9)).action, Action::kAccept);
}

TEST_F(HarvestTest, LongIdleGapClearsTheWholeRing) {
  auto d = Make(
      With({Rule("t", {"v4/32"}, absl::Minutes(10), 10, Action::kTarpit)}));
  d->Observe(Recipients("192.0.2.1", 9));
  clock_.Advance(absl::Hours(50));
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 9)).unknown_in_window, 9u);
}

// Random traffic at random times against a plain model of the window:
// bucket b holds what arrived in [b * width, (b + 1) * width), and a window
// of n buckets at time t sums buckets floor(t / width) - n + 1 .. that one.
TEST_F(HarvestTest, WindowSumsMatchAModel) {
  auto d = Make(With({Rule("never", {"v4/32"}, absl::Hours(1), 4'000'000'000u,
                           Action::kTarpit)}));
  const int64_t width = 60;                        // seconds: 1 h / 60
  std::vector<std::pair<int64_t, uint32_t>> sent;  // (bucket, unknown)
  auto expected = [&](int64_t now_s) {
    const int64_t b = now_s / width;
    uint32_t sum = 0;
    for (const auto& [sb, n] : sent) {
      if (sb > b - 60 && sb <= b) sum += n;
    }
    return sum;
  };
  std::mt19937 rng(3);
  int64_t now_s = absl::ToUnixSeconds(clock_.Now());
  for (int i = 0; i < 3000; ++i) {
    const int64_t step = std::uniform_int_distribution<int64_t>(0, 400)(rng);
    now_s += (rng() % 50 == 0) ? 3 * 3600 : step;  // sometimes a long gap
    clock_.Set(absl::FromUnixSeconds(now_s));
    ASSERT_EQ(d->Peek("192.0.2.1").unknown_in_window, expected(now_s)) << i;
    const uint32_t n = rng() % 5;
    sent.emplace_back(now_s / width, n);
    ASSERT_EQ(d->Observe(Recipients("192.0.2.1", n, 1)).unknown_in_window,
              expected(now_s))
        << i;
  }
}

// The same for a short window (10 of the 60 buckets), read through a rule
// that fires whenever that window holds anything.
TEST_F(HarvestTest, ShortWindowSumsMatchAModel) {
  auto d = Make(
      With({Rule("never", {"v4/32"}, absl::Hours(1), 4'000'000'000u,
                 Action::kTarpit),
            Rule("short", {"v4/32"}, absl::Minutes(10), 1, Action::kTarpit)}));
  const int64_t width = 60;
  std::vector<std::pair<int64_t, uint32_t>> sent;
  auto sum = [&](int64_t now_s, int64_t n) {
    const int64_t b = now_s / width;
    uint32_t total = 0;
    for (const auto& [sb, k] : sent) {
      if (sb > b - n && sb <= b) total += k;
    }
    return total;
  };
  auto expected = [&](int64_t now_s) {
    const uint32_t short_sum = sum(now_s, 10);
    return short_sum > 0 ? short_sum : sum(now_s, 60);
  };
  std::mt19937 rng(5);
  int64_t now_s = absl::ToUnixSeconds(clock_.Now());
  for (int i = 0; i < 3000; ++i) {
    now_s += (rng() % 50 == 0) ? 2 * 3600 : rng() % 200;
    clock_.Set(absl::FromUnixSeconds(now_s));
    ASSERT_EQ(d->Peek("192.0.2.1").unknown_in_window, expected(now_s)) << i;
    const uint32_t n = rng() % 3;
    sent.emplace_back(now_s / width, n);
    const Verdict v = d->Observe(Recipients("192.0.2.1", n, 1));
    ASSERT_EQ(v.unknown_in_window, expected(now_s)) << i;
    ASSERT_EQ(v.rule, sum(now_s, 10) > 0 ? "short" : "") << i;
  }
}

TEST_F(HarvestTest, TarpitDelayGrowsAndCaps) {
  HarvestRule r = Rule("t", {"v4/32"}, absl::Minutes(10), 3, Action::kTarpit);
  r.base_delay = absl::Seconds(1);
  r.factor = 2;
  r.max_delay = absl::Seconds(5);
  auto d = Make(With({r}));
  d->Observe(Recipients("192.0.2.1", 2));
  std::vector<absl::Duration> delays;
  for (int i = 0; i < 5; ++i) {
    const Verdict v = d->Observe(Recipients("192.0.2.1", 1));
    EXPECT_EQ(v.action, Action::kTarpit);
    EXPECT_EQ(v.rule, "t");
    EXPECT_EQ(v.reply.code, 0u);
    delays.push_back(v.delay);
  }
  EXPECT_THAT(delays,
              ElementsAre(absl::Seconds(1), absl::Seconds(2), absl::Seconds(4),
                          absl::Seconds(5), absl::Seconds(5)));
  // Peek reports the current level without advancing it.
  EXPECT_EQ(d->Peek("192.0.2.1").delay, absl::Seconds(5));
  EXPECT_EQ(d->Peek("192.0.2.1").delay, absl::Seconds(5));
  // Once the window is quiet the streak ends and starts over.
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 1)).action, Action::kAccept);
  d->Observe(Recipients("192.0.2.1", 1));
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 1)).delay, absl::Seconds(1));
}

TEST_F(HarvestTest, TempfailUntilTheWindowDrains) {
  auto d = Make(
      With({Rule("tf", {"v4/32"}, absl::Hours(1), 25, Action::kTempfail)}));
  const absl::Time start = clock_.Now();
  d->Observe(Recipients("198.51.100.7", 20));
  clock_.Advance(absl::Minutes(30));
  const Verdict v = d->Observe(Recipients("198.51.100.7", 5));
  EXPECT_EQ(v.action, Action::kTempfail);
  EXPECT_EQ(v.rule, "tf");
  EXPECT_EQ(v.unknown_in_window, 25u);
  EXPECT_EQ(v.reply.code, 451u);
  EXPECT_EQ(v.reply.enhanced_status, "4.7.1");
  EXPECT_FALSE(v.reply.text.empty());
  // The first 20 leave the window an hour after they came.
  EXPECT_EQ(v.blocked_until, start + absl::Hours(1));
  clock_.Set(start + absl::Hours(1) - absl::Seconds(1));
  EXPECT_EQ(d->Peek("198.51.100.7").action, Action::kTempfail);
  clock_.Set(start + absl::Hours(1));
  EXPECT_EQ(d->Peek("198.51.100.7").action, Action::kAccept);
}

TEST_F(HarvestTest, RejectPenaltyBoxOutlivesTheWindow) {
  HarvestRule r = Rule("rej", {"v4/32"}, absl::Minutes(10), 5, Action::kReject);
  r.penalty_duration = absl::Hours(1);
  r.reply_text = "Go away";
  auto d = Make(With({r}));
  const absl::Time fired_at = clock_.Now();
  const Verdict v = d->Observe(Recipients("203.0.113.5", 5));
  EXPECT_EQ(v.action, Action::kReject);
  EXPECT_EQ(v.reply.code, 550u);
  EXPECT_EQ(v.reply.enhanced_status, "5.7.1");
  EXPECT_EQ(v.reply.text, "Go away");
  EXPECT_EQ(v.blocked_until, fired_at + absl::Hours(1));
  EXPECT_EQ(d->Stats().active_penalties, 1u);

  clock_.Advance(absl::Minutes(30));  // window long empty
  Verdict peek = d->Peek("203.0.113.5");
  EXPECT_EQ(peek.action, Action::kReject);
  EXPECT_EQ(peek.rule, "rej");
  EXPECT_EQ(peek.unknown_in_window, 0u);
  EXPECT_EQ(peek.blocked_until, fired_at + absl::Hours(1));
  // A clean transaction from a boxed client is still refused.
  EXPECT_EQ(d->Observe(Recipients("203.0.113.5", 0, 1)).action,
            Action::kReject);

  clock_.Set(fired_at + absl::Hours(1));
  EXPECT_EQ(d->Peek("203.0.113.5").action, Action::kAccept);
  EXPECT_EQ(d->Stats().active_penalties, 0u);
}

TEST_F(HarvestTest, ProbingWhileBoxedExtendsTheBox) {
  HarvestRule r = Rule("rej", {"v4/32"}, absl::Minutes(10), 5, Action::kReject);
  r.penalty_duration = absl::Hours(1);
  auto d = Make(With({r}));
  d->Observe(Recipients("203.0.113.5", 5));
  clock_.Advance(absl::Minutes(5));
  const Verdict v = d->Observe(Recipients("203.0.113.5", 1));
  EXPECT_EQ(v.blocked_until, clock_.Now() + absl::Hours(1));
}

TEST_F(HarvestTest, MostSevereRuleWins) {
  HarvestRule reject =
      Rule("rej", {"v4/32"}, absl::Hours(1), 20, Action::kReject);
  auto d = Make(With({
      Rule("tar", {"v4/32"}, absl::Minutes(10), 5, Action::kTarpit),
      Rule("tf", {"v4/32"}, absl::Hours(1), 10, Action::kTempfail),
      reject,
  }));
  EXPECT_EQ(d->Observe(Recipients("192.0.2.9", 5)).rule, "tar");
  EXPECT_EQ(d->Observe(Recipients("192.0.2.9", 5)).rule, "tf");
  const Verdict v = d->Observe(Recipients("192.0.2.9", 10));
  EXPECT_EQ(v.action, Action::kReject);
  EXPECT_EQ(v.rule, "rej");
  EXPECT_EQ(v.delay, absl::ZeroDuration());
  EXPECT_EQ(v.unknown_in_window, 20u);
}

TEST_F(HarvestTest, RatioThresholdNeedsMinTotal) {
  HarvestRule r = Rule("ratio", {"v4/32"}, absl::Hours(1), 5, Action::kReject);
  r.min_unknown_ratio = 0.5;
  r.min_total = 20;
  auto d = Make(With({r}));
  // 10 unknown of 10: ratio 100% but below min_total.
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 10)).action, Action::kAccept);
  // 10 unknown of 20: exactly 50%.
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 0, 10)).action, Action::kReject);

  // A busy legitimate sender: plenty of unknowns, a low share.
  EXPECT_EQ(d->Observe(Recipients("192.0.2.2", 10, 100)).action,
            Action::kAccept);
  EXPECT_EQ(d->Observe(Recipients("192.0.2.2", 40, 0)).action,
            Action::kAccept);  // 50/150
  EXPECT_EQ(d->Observe(Recipients("192.0.2.2", 50, 0)).action,
            Action::kReject);  // 100/200
}

TEST_F(HarvestTest, RelayAttemptsAndMalformedCountInTheTotal) {
  HarvestRule r = Rule("ratio", {"v4/32"}, absl::Hours(1), 5, Action::kReject);
  r.min_unknown_ratio = 0.5;
  auto d = Make(With({r}));
  Observation o = Recipients("192.0.2.1", 5);
  o.not_served = 4;
  o.malformed = 2;
  EXPECT_EQ(d->Observe(o).action, Action::kAccept);  // 5 of 11
  const std::vector<Offender> top = d->ListOffenders(1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].counts.not_served, 4u);
  EXPECT_EQ(top[0].counts.malformed, 2u);
  EXPECT_EQ(top[0].counts.total(), 11u);
}

TEST_F(HarvestTest, V4SlashTwentyFourGathersItsAddresses) {
  auto d = Make(
      With({Rule("net", {"v4/24"}, absl::Hours(1), 10, Action::kTempfail)}));
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 4)).action, Action::kAccept);
  EXPECT_EQ(d->Observe(Recipients("192.0.2.2", 4)).action, Action::kAccept);
  const Verdict v = d->Observe(Recipients("192.0.2.3", 4));
  EXPECT_EQ(v.action, Action::kTempfail);
  EXPECT_EQ(FormatPrefixKey(v.key), "192.0.2.0/24");
  EXPECT_EQ(v.unknown_in_window, 12u);
  // A fresh address in the same /24 inherits the verdict; the next /24 not.
  EXPECT_EQ(d->Peek("192.0.2.200").action, Action::kTempfail);
  EXPECT_EQ(d->Peek("192.0.3.1").action, Action::kAccept);
}

TEST_F(HarvestTest, V6SlashSixtyFourGathersItsAddresses) {
  auto d = Make(
      With({Rule("net", {"v6/64"}, absl::Hours(1), 10, Action::kTempfail)}));
  d->Observe(Recipients("2001:db8:1:2::1", 5));
  const Verdict v = d->Observe(Recipients("2001:db8:1:2:ffff::9", 5));
  EXPECT_EQ(v.action, Action::kTempfail);
  EXPECT_EQ(FormatPrefixKey(v.key), "2001:db8:1:2::/64");
  EXPECT_EQ(d->Peek("2001:db8:1:2:abcd::1").action, Action::kTempfail);
  EXPECT_EQ(d->Peek("2001:db8:1:3::1").action, Action::kAccept);
}

TEST_F(HarvestTest, Ipv4MappedCountsAsIpv4) {
  auto d = Make(With(
      {Rule("c", {"v4/32", "v6/128"}, absl::Hours(1), 10, Action::kTempfail)}));
  d->Observe(Recipients("::ffff:192.0.2.1", 5));
  const Verdict v = d->Observe(Recipients("192.0.2.1", 5));
  EXPECT_EQ(v.action, Action::kTempfail);
  EXPECT_EQ(FormatPrefixKey(v.key), "192.0.2.1/32");
  EXPECT_EQ(d->Peek("::ffff:192.0.2.1").action, Action::kTempfail);
  EXPECT_EQ(d->Stats().tracked_keys, 2u);  // the /32 and the /24
}

TEST_F(HarvestTest, AllowlistedCidrsAreCountedNeverPenalized) {
  HarvestConfig c =
      With({Rule("c", {"v4/32", "v6/128"}, absl::Hours(1), 5, Action::kReject),
            Rule("n", {"v4/24", "v6/64"}, absl::Hours(1), 5, Action::kReject)});
  c.allowlist = {"10.1.0.0/16", "2001:db8:aa::/48", "192.0.2.10"};
  auto d = Make(c);
  for (const char* ip : {"10.1.2.3", "2001:db8:aa:1::5", "192.0.2.10"}) {
    const Verdict v = d->Observe(Recipients(ip, 100));
    EXPECT_EQ(v.action, Action::kAccept) << ip;
    EXPECT_EQ(v.observed_action, Action::kAccept) << ip;
    EXPECT_EQ(v.exempt, Exemption::kAllowlisted) << ip;
    EXPECT_EQ(v.unknown_in_window, 100u) << ip;
  }
  EXPECT_EQ(d->Stats().exempt_allowlisted, 3u);
  // Counted under their own keys only: a neighbour in 192.0.2.0/24 is clean.
  EXPECT_EQ(d->Observe(Recipients("192.0.2.11", 1)).action, Action::kAccept);
  EXPECT_EQ(d->Observe(Recipients("10.2.0.1", 5)).action, Action::kReject);
  const std::vector<Offender> top = d->ListOffenders(10);
  ASSERT_GE(top.size(), 3u);
  EXPECT_EQ(top[0].counts.unknown, 100u);
}

// Issue 13: null-sender traffic is counted in windows of its own and judged
// by null-sender rules only: it is no bypass (a null-sender harvester is
// caught by them) and never weighs on the same client's normal mail.
// Authenticated traffic is counted in Stats() only.
TEST_F(HarvestTest, NullSenderHasItsOwnWindowsAndAuthenticatedFeedsNone) {
  HarvestRule r = Rule("c", {"v4/32"}, absl::Hours(1), 5, Action::kReject);
  r.penalty_duration = absl::Hours(1);
  HarvestRule null_rule =
      Rule("null", {"v4/32"}, absl::Hours(1), 8, Action::kTempfail);
  null_rule.traffic = Traffic::kNullSender;
  auto d = Make(With({r, null_rule}));
  for (int i = 0; i < 7; ++i) {
    Observation dsn = Recipients("192.0.2.1", 1);
    dsn.dsn = true;
    const Verdict v = d->Observe(dsn);
    EXPECT_EQ(v.action, Action::kAccept) << i;
    EXPECT_EQ(v.exempt, Exemption::kDsn);
    Observation auth = Recipients("192.0.2.2", 3);
    auth.authenticated = true;
    EXPECT_EQ(d->Observe(auth).exempt, Exemption::kAuthenticated);
  }
  // The eighth bounce to an unknown address fires the null-sender rule...
  Observation dsn = Recipients("192.0.2.1", 1);
  dsn.dsn = true;
  Verdict v = d->Observe(dsn);
  EXPECT_EQ(v.action, Action::kTempfail);
  EXPECT_EQ(v.rule, "null");
  // ...which holds that client's null-sender traffic only: its normal mail
  // is judged by its normal windows, which hold nothing.
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 0, 1)).action, Action::kAccept);
  EXPECT_EQ(d->Peek("192.0.2.1").unknown_in_window, 0u);
  const DetectorStats st = d->Stats();
  EXPECT_EQ(st.exempt_dsn, 8u);
  EXPECT_EQ(st.exempt_authenticated, 7u);
  EXPECT_EQ(st.active_penalties, 0u);
  // Authenticated recipients feed no window at all.
  EXPECT_EQ(d->Peek("192.0.2.2").unknown_in_window, 0u);
  EXPECT_EQ(d->Observe(Recipients("192.0.2.2", 0, 1)).action, Action::kAccept);
  // Listed with their null-sender counts: the client and its /24.
  std::vector<Offender> offenders = d->ListOffenders(10);
  ASSERT_EQ(offenders.size(), 2u);
  EXPECT_EQ(offenders[0].key_text, "192.0.2.0/24");
  EXPECT_EQ(offenders[1].key_text, "192.0.2.1/32");
  EXPECT_EQ(offenders[1].null_sender.unknown, 8u);
  EXPECT_EQ(offenders[1].counts.unknown, 0u);

  // A null sender with many recipients is no bounce: normal traffic.
  Observation many = Recipients("192.0.2.3", 5);
  many.dsn = true;
  EXPECT_EQ(d->Observe(many).exempt, Exemption::kNone);
  EXPECT_EQ(d->Peek("192.0.2.3").action, Action::kReject);
}

// A client in a penalty box for normal traffic gets no answers by switching
// to a null sender (issue 13: the DSN exemption was a bypass).
TEST_F(HarvestTest, PenaltyBoxHoldsNullSenderTrafficToo) {
  HarvestRule r = Rule("c", {"v4/32"}, absl::Hours(1), 5, Action::kReject);
  r.penalty_duration = absl::Hours(1);
  auto d = Make(With({r}));
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 5)).action, Action::kReject);
  Observation dsn = Recipients("192.0.2.1", 0, 1);
  dsn.dsn = true;
  const Verdict v = d->Observe(dsn);
  EXPECT_EQ(v.action, Action::kReject);
  EXPECT_EQ(v.rule, "c");
}

TEST_F(HarvestTest, ExemptionsCanBeTurnedOff) {
  HarvestConfig c =
      With({Rule("c", {"v4/32"}, absl::Hours(1), 1, Action::kTempfail)});
  c.exempt_dsn = false;
  c.exempt_authenticated = false;
  auto d = Make(c);
  Observation o = Recipients("192.0.2.1", 1);
  o.dsn = true;
  o.authenticated = true;
  EXPECT_EQ(d->Observe(o).action, Action::kTempfail);
}

TEST_F(HarvestTest, ObserveOnlyReportsButAccepts) {
  HarvestConfig c = HarvestConfig::Defaults();
  c.observe_only = true;
  auto d = Make(c);
  Verdict v;
  for (int i = 0; i < 60; ++i) v = d->Observe(Recipients("192.0.2.1", 1));
  EXPECT_EQ(v.action, Action::kAccept);
  EXPECT_EQ(v.rule, "");
  EXPECT_EQ(v.reply.code, 0u);
  EXPECT_EQ(v.observed_action, Action::kReject);
  EXPECT_EQ(v.observed_rule, "client-reject");
  const DetectorStats st = d->Stats();
  EXPECT_EQ(st.verdicts[static_cast<int>(Action::kAccept)], 60u);
  EXPECT_GT(st.observed_verdicts[static_cast<int>(Action::kReject)], 0u);
  EXPECT_EQ(st.active_penalties, 0u);
  EXPECT_EQ(st.active_observed_penalties, 1u);
}

TEST_F(HarvestTest, ObserveOnlyPenaltyBoxPersistsLikeARealOne) {
  HarvestRule r = Rule("rej", {"v4/32"}, absl::Minutes(10), 5, Action::kReject);
  r.penalty_duration = absl::Hours(1);
  HarvestConfig c = With({r});
  c.observe_only = true;
  auto d = Make(c);
  d->Observe(Recipients("192.0.2.1", 5));
  clock_.Advance(absl::Minutes(30));
  Verdict v = d->Peek("192.0.2.1");
  EXPECT_EQ(v.action, Action::kAccept);
  EXPECT_EQ(v.observed_action, Action::kReject);
  EXPECT_EQ(v.observed_rule, "rej");
  clock_.Advance(absl::Minutes(31));
  EXPECT_EQ(d->Peek("192.0.2.1").observed_action, Action::kAccept);
}

TEST_F(HarvestTest, OneRuleInShadowMode) {
  HarvestRule shadow =
      Rule("new-reject", {"v4/32"}, absl::Hours(1), 10, Action::kReject);
  shadow.observe_only = true;
  auto d = Make(With(
      {Rule("tar", {"v4/32"}, absl::Hours(1), 5, Action::kTarpit), shadow}));
  const Verdict v = d->Observe(Recipients("192.0.2.1", 10));
  EXPECT_EQ(v.action, Action::kTarpit);
  EXPECT_EQ(v.rule, "tar");
  // Each of the call's 10 recipients costs the first delay, 1 s.
  EXPECT_EQ(v.delay, absl::Seconds(10));
  EXPECT_EQ(v.observed_action, Action::kReject);
  EXPECT_EQ(v.observed_rule, "new-reject");
}

TEST_F(HarvestTest, FloodOfRandomAddressesStaysBoundedAndKeepsTheOffender) {
  HarvestConfig c = HarvestConfig::Defaults();
  c.max_tracked_keys = 1000;
  c.shards = 8;
  auto d = Make(c);
  std::mt19937 rng(42);
  const std::string offender = "198.51.100.66";
  int probes = 0;
  size_t max_seen = 0;
  for (int i = 0; i < 10 * 1000; ++i) {
    d->Observe(Recipients(V4(rng()), 1));
    if (i % 20 == 0) {
      d->Observe(Recipients(offender, 1));
      ++probes;
    }
    if (i % 97 == 0) max_seen = std::max(max_seen, d->Stats().tracked_keys);
  }
  const DetectorStats st = d->Stats();
  EXPECT_LE(max_seen, 1000u);
  EXPECT_LE(st.tracked_keys, 1000u);
  EXPECT_GE(st.tracked_keys, 990u);
  EXPECT_GT(st.evictions, 15'000u);
  const Verdict v = d->Peek(offender);
  EXPECT_EQ(v.action, Action::kReject);
  EXPECT_EQ(v.rule, "client-reject");
  EXPECT_EQ(v.unknown_in_window, static_cast<uint32_t>(probes));
}

TEST_F(HarvestTest, BoxedKeysAreEvictedLast) {
  HarvestConfig c = With({[] {
    HarvestRule r = Rule("rej", {"v4/32"}, absl::Hours(1), 5, Action::kReject);
    r.penalty_duration = absl::Hours(2);
    return r;
  }()});
  c.max_tracked_keys = 100;
  c.shards = 1;
  auto d = Make(c);
  d->Observe(Recipients("203.0.113.1", 5));
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) d->Observe(Recipients(V4(rng()), 1, 1));
  EXPECT_EQ(d->Peek("203.0.113.1").action, Action::kReject);
  EXPECT_EQ(d->Stats().evictions_penalized, 0u);
  EXPECT_EQ(d->Stats().tracked_keys, 100u);
}

TEST_F(HarvestTest, GarbageClientIpIsCountedNeverBlocked) {
  auto d = Make(HarvestConfig::Defaults());
  const std::string long_ip(5000, '9');
  const std::string with_nul("192.0.2.1\0x", 11);
  const std::vector<std::string> garbage = {
      "", "abc", "1.2.3.4.5", "::g", long_ip, with_nul, "192.0.2.1/32"};
  for (int round = 0; round < 20; ++round) {
    for (const std::string& ip : garbage) {
      const Verdict v = d->Observe(Recipients(ip, 10));
      EXPECT_EQ(v.action, Action::kAccept);
      EXPECT_EQ(v.observed_action, Action::kAccept);
      EXPECT_EQ(v.exempt, Exemption::kUnparsableIp);
      EXPECT_EQ(FormatPrefixKey(v.key), "unparsable");
    }
  }
  const DetectorStats st = d->Stats();
  EXPECT_EQ(st.unparsable_ip, 140u);
  EXPECT_EQ(st.missing_ip, 20u);
  EXPECT_EQ(st.tracked_keys, 1u);
  const std::vector<Offender> top = d->ListOffenders(1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].key_text, "unparsable");
  EXPECT_EQ(top[0].counts.unknown, 1400u);
  EXPECT_EQ(top[0].verdict.action, Action::kAccept);
  // Nobody else is affected.
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 1)).action, Action::kAccept);
  EXPECT_EQ(d->Peek("").exempt, Exemption::kUnparsableIp);
}

TEST_F(HarvestTest, ForgetRemovesEveryKeyOfAnAddress) {
  HarvestRule r =
      Rule("rej", {"v4/32", "v6/128"}, absl::Hours(1), 5, Action::kReject);
  r.penalty_duration = absl::Hours(1);
  auto d = Make(With({r}));
  d->Observe(Recipients("192.0.2.1", 5));
  d->Observe(Recipients("192.0.2.2", 1));
  d->Observe(Recipients("2001:db8::1", 1));
  d->Observe(Recipients("garbage", 1));
  EXPECT_EQ(d->Stats().tracked_keys, 6u);
  ASSERT_EQ(d->Peek("192.0.2.1").action, Action::kReject);

  EXPECT_EQ(*d->Forget("192.0.2.1"), 2u);  // its /32 and its /24
  EXPECT_EQ(d->Peek("192.0.2.1").action, Action::kAccept);
  EXPECT_EQ(d->Stats().active_penalties, 0u);
  EXPECT_EQ(*d->Forget("192.0.2.1"), 0u);
  EXPECT_EQ(*d->Forget("192.0.2.2"), 1u);  // the /24 is gone already
  EXPECT_EQ(*d->Forget("::ffff:192.0.2.2"), 0u);
  EXPECT_EQ(*d->Forget("2001:db8::/32"), 2u);  // its /128 and /64
  EXPECT_EQ(*d->Forget("unparsable"), 1u);
  EXPECT_EQ(d->Stats().tracked_keys, 0u);
  EXPECT_FALSE(d->Forget("not an ip").ok());
  EXPECT_FALSE(d->Forget("10.0.0.1/8").ok());
  // Forgotten slots are reused.
  d->Observe(Recipients("192.0.2.1", 1));
  EXPECT_EQ(d->Stats().tracked_keys, 2u);
}

TEST_F(HarvestTest, ListOffendersOrdering) {
  auto d = Make(HarvestConfig::Defaults());
  d->Observe(Recipients("192.0.2.1", 3));
  d->Observe(Recipients("198.51.100.1", 7));
  d->Observe(Recipients("203.0.113.1", 5));
  d->Observe(Recipients("203.0.113.2", 5));
  d->Observe(Recipients("192.0.2.99", 0, 50));  // clean: not an offender
  std::vector<Offender> top = d->ListOffenders(4);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].key_text, "203.0.113.0/24");
  EXPECT_EQ(top[0].counts.unknown, 10u);
  EXPECT_EQ(top[1].key_text, "198.51.100.0/24");  // 7, ties by key order
  EXPECT_EQ(top[2].key_text, "198.51.100.1/32");
  EXPECT_EQ(top[3].key_text, "203.0.113.1/32");
  EXPECT_EQ(top[3].counts.unknown, 5u);
  EXPECT_EQ(top[0].last_seen, clock_.Now());
  EXPECT_EQ(d->ListOffenders(100).size(), 7u);
  EXPECT_TRUE(d->ListOffenders(0).empty());

  // Verdicts are each key's own.
  for (int i = 0; i < 10; ++i) d->Observe(Recipients("198.51.100.1", 1));
  top = d->ListOffenders(1);
  EXPECT_EQ(top[0].key_text, "198.51.100.0/24");
  // One address cannot fire its network's rule (3 distinct clients needed).
  EXPECT_EQ(top[0].verdict.action, Action::kAccept);
  top = d->ListOffenders(2);
  EXPECT_EQ(top[1].key_text, "198.51.100.1/32");
  // 17 distinct unknown recipients, all of what it sent: client-tempfail.
  EXPECT_EQ(top[1].verdict.action, Action::kTempfail);
  EXPECT_GE(top[1].distinct_unknown, 14u);
}

TEST_F(HarvestTest, DomainUnderAttackFromManyQuietClients) {
  HarvestConfig c = HarvestConfig::Defaults();
  c.domain_min_distinct_clients = 20;
  auto d = Make(c, /*domains=*/4);
  const std::pair<int32_t, uint32_t> probe[] = {{2, 1}, {3, 1}};
  for (int i = 0; i < 30; ++i) {
    const std::string ip = V4(0x0a000001u + (i << 8));  // 30 different /24s
    Observation o = Recipients(ip, 2);
    o.unknown_by_domain = probe;
    EXPECT_EQ(d->Observe(o).action, Action::kAccept);
    if (i == 10) {
      EXPECT_FALSE(d->DomainStatuses()[2].under_attack);
    }
  }
  std::vector<DomainStatus> ds = d->DomainStatuses();
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_FALSE(ds[0].under_attack);
  EXPECT_EQ(ds[0].distinct_clients, 0u);
  EXPECT_TRUE(ds[2].under_attack);
  EXPECT_TRUE(ds[3].under_attack);
  EXPECT_NEAR(ds[2].distinct_clients, 30, 5);  // linear counting: sd ~1 here
  EXPECT_EQ(d->Stats().domains_under_attack, 2u);

  // One client probing a lot is one client.
  for (int i = 0; i < 40; ++i) {
    Observation o = Recipients("192.0.2.1", 1);
    const std::pair<int32_t, uint32_t> one[] = {{1, 1}};
    o.unknown_by_domain = one;
    d->Observe(o);
  }
  EXPECT_EQ(d->DomainStatuses()[1].distinct_clients, 1u);

  clock_.Advance(absl::Minutes(61));
  ds = d->DomainStatuses();
  EXPECT_FALSE(ds[2].under_attack);
  EXPECT_EQ(ds[2].distinct_clients, 0u);
}

TEST_F(HarvestTest, BadDomainIndexesAreCountedAndIgnored) {
  auto d = Make(HarvestConfig::Defaults(), /*domains=*/2);
  const std::pair<int32_t, uint32_t> bad[] = {{-1, 1}, {2, 1}, {1, 1}};
  Observation o = Recipients("192.0.2.1", 3);
  o.unknown_by_domain = bad;
  d->Observe(o);
  EXPECT_EQ(d->Stats().bad_domain_index, 2u);
  EXPECT_EQ(d->DomainStatuses()[1].distinct_clients, 1u);
}

TEST_F(HarvestTest, ExemptTrafficDoesNotFeedTheDomainSignal) {
  HarvestConfig c = HarvestConfig::Defaults();
  c.domain_min_distinct_clients = 1;
  auto d = Make(c, 1);
  const std::pair<int32_t, uint32_t> probe[] = {{0, 1}};
  Observation o = Recipients("192.0.2.1", 1);
  o.dsn = true;
  o.unknown_by_domain = probe;
  d->Observe(o);
  EXPECT_EQ(d->DomainStatuses()[0].distinct_clients, 0u);
}

TEST_F(HarvestTest, DryRunCountsNothing) {
  auto d = Make(HarvestConfig::Defaults(), 1);
  const std::pair<int32_t, uint32_t> probe[] = {{0, 100}};
  Observation o = Recipients("192.0.2.1", 100);
  o.dry_run = true;
  o.unknown_by_domain = probe;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(d->Observe(o).action, Action::kAccept);
  DetectorStats st = d->Stats();
  EXPECT_EQ(st.tracked_keys, 0u);
  EXPECT_EQ(st.observations, 0u);
  EXPECT_EQ(st.dry_runs, 5u);
  EXPECT_EQ(d->DomainStatuses()[0].distinct_clients, 0u);

  // On a known offender a dry run reports the verdict without moving it.
  for (int i = 0; i < 12; ++i) d->Observe(Recipients("192.0.2.1", 1));
  const Verdict before = d->Peek("192.0.2.1");
  EXPECT_EQ(before.action, Action::kTarpit);
  for (int i = 0; i < 5; ++i) {
    const Verdict v = d->Observe(o);
    EXPECT_EQ(v.action, Action::kTarpit);
    // The streak did not move: the delay is the same per recipient (this
    // call has 100, capped at the rule's max_delay).
    EXPECT_EQ(v.delay, std::min(before.delay * 100, absl::Seconds(20)));
    EXPECT_EQ(v.unknown_in_window, 12u);
  }
  EXPECT_EQ(d->Peek("192.0.2.1").unknown_in_window, 12u);
  EXPECT_EQ(d->Stats().tracked_keys, 2u);
}

TEST_F(HarvestTest, ZeroRecipientObservationCreatesNothing) {
  auto d = Make(HarvestConfig::Defaults());
  d->Observe(Recipients("192.0.2.1", 0));
  EXPECT_EQ(d->Stats().tracked_keys, 0u);
  EXPECT_EQ(d->Stats().observations, 1u);
}

TEST_F(HarvestTest, ClockGoingBackwardsIsHarmless) {
  auto d = Make(
      With({Rule("t", {"v4/32"}, absl::Minutes(10), 10, Action::kTarpit)}));
  d->Observe(Recipients("192.0.2.1", 5));
  clock_.Advance(-absl::Hours(3));
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 5)).action, Action::kTarpit);
  clock_.Set(absl::UnixEpoch() - absl::Hours(1));  // before 1970
  EXPECT_EQ(d->Observe(Recipients("192.0.2.1", 1)).unknown_in_window, 11u);
}

TEST_F(HarvestTest, CountsSaturateInsteadOfWrapping) {
  auto d = Make(
      With({Rule("t", {"v4/32"}, absl::Minutes(10), 10, Action::kTarpit)}));
  Observation o = Recipients("192.0.2.1", 4'000'000'000u, 4'000'000'000u);
  o.not_served = 4'000'000'000u;
  o.malformed = 4'000'000'000u;
  const Verdict v = d->Observe(o);
  EXPECT_EQ(v.action, Action::kTarpit);
  EXPECT_EQ(v.unknown_in_window, 65535u);
}

TEST_F(HarvestTest, ManyThreadsOnOverlappingKeys) {
  HarvestConfig c = HarvestConfig::Defaults();
  c.max_tracked_keys = 300;  // small enough to evict while hammered
  c.shards = 4;
  auto d = Make(c, 8);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    while (!stop.load()) {
      clock_.Advance(absl::Seconds(7));
      d->Stats();
      d->ListOffenders(5);
      d->DomainStatuses();
      (void)d->Forget("10.0.1.7");
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kPerThread; ++i) {
        const uint32_t r = rng();
        const std::string ip =
            (r & 1)
                ? absl::StrCat("10.0.", r >> 8 & 3, ".", r >> 16 & 255)
                : absl::StrCat("2001:db8:", r >> 8 & 3, "::", r >> 16 & 255);
        Observation o = Recipients(ip, r >> 24 & 3, r >> 26 & 3);
        const std::pair<int32_t, uint32_t> dom[] = {
            {static_cast<int32_t>(r >> 28 & 7), 1}};
        o.unknown_by_domain = dom;
        o.dsn = (r >> 27 & 15) == 0;
        o.dry_run = (r >> 20 & 31) == 0;
        d->Observe(o);
        if (i % 512 == 0) d->Peek(ip);
      }
    });
  }
  for (std::thread& w : workers) w.join();
  stop = true;
  ticker.join();
  const DetectorStats st = d->Stats();
  EXPECT_EQ(st.observations + st.dry_runs, uint64_t{kThreads} * kPerThread);
  EXPECT_LE(st.tracked_keys, 300u);
  uint64_t verdicts = 0;
  for (uint64_t n : st.verdicts) verdicts += n;
  EXPECT_EQ(verdicts, st.observations);
}

}  // namespace
}  // namespace rcptguard::harvest

namespace rcptguard::harvest {
namespace {

// The fixture of the tests above (same clock and detector factory).
using HarvestV2Test = HarvestTest;

// One departed address asked about all day is one distinct unknown
// recipient, not a dictionary (issue 13: "repeats are not harvesting").
TEST_F(HarvestV2Test, RepeatsOfOneAddressAreOneDistinctRecipient) {
  auto d = Make(HarvestConfig::Defaults());
  const uint64_t departed[] = {0x1234567890abcdefULL};
  for (int i = 0; i < 200; ++i) {
    Observation o;
    o.client_ip = "198.51.100.7";
    o.unknown = 1;
    o.unknown_fingerprints = departed;
    EXPECT_EQ(d->Observe(o).action, Action::kAccept) << i;
    clock_.Advance(absl::Minutes(5));
  }
}

// A bulk sender with 2 % unknown recipients stays below every share test,
// however large its volume (issue 13: 1000 valid and 20 unknown).
TEST_F(HarvestV2Test, BulkSenderWithAFewPercentUnknownIsLeftAlone) {
  auto d = Make(HarvestConfig::Defaults());
  uint64_t next = 1;
  for (int t = 0; t < 51; ++t) {
    std::vector<uint64_t> fps;
    const uint32_t unknown = t % 5 == 0 ? 2 : 0;
    for (uint32_t k = 0; k < unknown; ++k) fps.push_back(next++);
    Observation o;
    o.client_ip = "203.0.113.10";
    o.valid = 20;
    o.unknown = unknown;
    o.unknown_fingerprints = fps;
    const Verdict v = d->Observe(o);
    EXPECT_EQ(v.action, Action::kAccept) << t;
    EXPECT_EQ(v.delay, absl::ZeroDuration());
    clock_.Advance(absl::Seconds(70));
  }
}

// The tarpit streak counts transactions: an edge asking once per RCPT and
// one asking once per transaction pay the same (issue 13).
TEST_F(HarvestV2Test, TarpitEscalatesPerTransactionNotPerCall) {
  HarvestRule r;
  r.name = "t";
  r.scopes = {"v4/32"};
  r.window = absl::Minutes(10);
  r.min_unknown = 3;
  r.action = Action::kTarpit;
  r.base_delay = absl::Seconds(1);
  r.factor = 2;
  r.max_delay = absl::Seconds(60);
  HarvestConfig c;
  c.rules = {r};
  auto per_rcpt = Make(c);
  auto batch = Make(c);
  absl::Duration per_rcpt_total, batch_total;
  for (uint64_t txn = 1; txn <= 3; ++txn) {
    for (int k = 0; k < 4; ++k) {
      Observation o;
      o.client_ip = "192.0.2.1";
      o.unknown = 1;
      o.transaction = txn;
      per_rcpt_total += per_rcpt->Observe(o).delay;
    }
    Observation o;
    o.client_ip = "192.0.2.1";
    o.unknown = 4;
    o.transaction = txn;
    batch_total += batch->Observe(o).delay;
  }
  // Transaction 1: the rule fires from the third recipient (per RCPT: the
  // 3rd and 4th call, 1 s each; batch: 4 recipients x 1 s). Transactions 2
  // and 3: 2 s and 4 s per recipient.
  EXPECT_EQ(per_rcpt_total, absl::Seconds(2 + 4 * 2 + 4 * 4));
  EXPECT_EQ(batch_total, absl::Seconds(4 * 1 + 4 * 2 + 4 * 4));
}

// One address alone cannot fire its /24's rule, and an established
// neighbour is spared when several addresses of its /24 do (issue 13).
TEST_F(HarvestV2Test, NetworkRulesNeedSeveralAddressesAndSpareEstablishedOnes) {
  auto d = Make(HarvestConfig::Defaults());
  // The neighbour has sent clean mail.
  Observation clean;
  clean.client_ip = "192.0.2.200";
  clean.valid = 3;
  EXPECT_EQ(d->Observe(clean).action, Action::kAccept);
  // One attacker, 40 distinct unknowns: its own rules fire, not the /24's.
  uint64_t next = 1;
  auto probe = [&](const std::string& ip, uint32_t n) {
    std::vector<uint64_t> fps;
    for (uint32_t k = 0; k < n; ++k) fps.push_back(next++);
    Observation o;
    o.client_ip = ip;
    o.unknown = n;
    o.unknown_fingerprints = fps;
    return d->Observe(o);
  };
  for (int i = 0; i < 8; ++i) probe("192.0.2.1", 5);
  Observation fresh;
  fresh.client_ip = "192.0.2.77";  // a new host of the same /24
  fresh.valid = 1;
  EXPECT_EQ(d->Observe(fresh).action, Action::kAccept);
  // Rotation over several addresses of the /24 fires the network rule for
  // hosts that are not established...
  for (int host = 2; host <= 6; ++host)
    probe(absl::StrCat("192.0.2.", host), 6);
  // ...a host never seen before is answered accept-all (it may be the
  // attacker's next address or a neighbour's first mail: neither is told
  // anything nor deferred)...
  Verdict v = probe("192.0.2.9", 1);
  EXPECT_EQ(v.action, Action::kAccept);
  EXPECT_TRUE(v.accept_all);
  EXPECT_THAT(v.rule, ::testing::StartsWith("network-"));
  // ...and once it has sent unknown recipients, it is held.
  v = probe("192.0.2.9", 1);
  EXPECT_GE(v.action, Action::kTempfail);
  EXPECT_FALSE(v.accept_all);
  EXPECT_THAT(v.rule, ::testing::StartsWith("network-"));
  // ...never for the established neighbour.
  EXPECT_EQ(d->Observe(clean).action, Action::kAccept);
  EXPECT_FALSE(d->Observe(clean).accept_all);
}

// The first transaction of a host never seen before, inside a network under
// attack: accept-all, even when its own rules would tarpit it (a tarpit
// still answers truthfully); a neighbour whose first mail held valid
// recipients is established from then on. With new_client_accept_all off,
// the same host is deferred.
TEST_F(HarvestV2Test, FirstContactInANetworkUnderAttackIsAnsweredAcceptAll) {
  for (const bool lenient : {true, false}) {
    SCOPED_TRACE(lenient);
    HarvestConfig c = HarvestConfig::Defaults();
    for (HarvestRule& r : c.rules) {
      if (r.name.rfind("network-", 0) == 0) r.new_client_accept_all = lenient;
    }
    auto d = Make(c);
    uint64_t next = 1;
    auto probe = [&](const std::string& ip, uint32_t n) {
      std::vector<uint64_t> fps;
      for (uint32_t k = 0; k < n; ++k) fps.push_back(next++);
      Observation o;
      o.client_ip = ip;
      o.unknown = n;
      o.unknown_fingerprints = fps;
      return d->Observe(o);
    };
    for (int host = 1; host <= 6; ++host) {
      probe(absl::StrCat("2001:db8:5:5::", host), 6);
    }
    // A fresh attacker address with ten guesses: its own tarpit rule fires
    // too, yet the answer tells nothing.
    Verdict v = probe("2001:db8:5:5::99", 10);
    EXPECT_EQ(v.accept_all, lenient);
    EXPECT_EQ(v.action, lenient ? Action::kAccept : Action::kTempfail);
    // The neighbour's first mail.
    Observation first;
    first.client_ip = "2001:db8:5:5::25";
    first.valid = 2;
    v = d->Observe(first);
    EXPECT_EQ(v.accept_all, lenient);
    EXPECT_EQ(v.action, lenient ? Action::kAccept : Action::kTempfail);
    if (lenient) {
      v = d->Observe(first);
      EXPECT_EQ(v.action, Action::kAccept);
      EXPECT_FALSE(v.accept_all);
    }
  }
}

// A domain under attack from many addresses, each probing a little: clients
// that are not established get the domain rule's action, established ones
// are answered as usual.
TEST_F(HarvestV2Test, DomainUnderAttackHoldsClientsThatAreNotEstablished) {
  HarvestConfig c = HarvestConfig::Defaults();
  c.domain_min_distinct_clients = 20;
  auto d = Make(c, /*domains=*/1);
  const int32_t domain[] = {0};
  const std::pair<int32_t, uint32_t> probe[] = {{0, 2}};
  Observation regular;
  regular.client_ip = "203.0.113.5";
  regular.valid = 2;
  regular.domains = domain;
  EXPECT_EQ(d->Observe(regular).action, Action::kAccept);
  Verdict last;
  for (int i = 0; i < 60; ++i) {
    const std::string ip = V4(0x0a000001u + (i << 16));  // 60 different /16s
    Observation o;
    o.client_ip = ip;  // a view: the string must outlive Observe
    o.unknown = 2;
    o.unknown_by_domain = probe;
    o.domains = domain;
    last = d->Observe(o);
  }
  EXPECT_EQ(last.action, Action::kTempfail);
  EXPECT_EQ(last.rule, kDomainAttackRule);
  EXPECT_EQ(d->Observe(regular).action, Action::kAccept);
}

// A large domain gets typos from many clients every hour: a client with one
// unknown among valid recipients is no prober, and a thousand of them do
// not put the domain under attack.
TEST_F(HarvestV2Test, TyposFromManyClientsAreNoAttack) {
  HarvestConfig c = HarvestConfig::Defaults();
  auto d = Make(c, /*domains=*/1);
  const int32_t domain[] = {0};
  const std::pair<int32_t, uint32_t> typo[] = {{0, 1}};
  for (int i = 0; i < 1000; ++i) {
    const std::string ip = V4(0x0b000001u + (i << 8));
    Observation o;
    o.client_ip = ip;
    o.valid = 3;
    o.unknown = 1;
    o.unknown_by_domain = typo;
    o.domains = domain;
    EXPECT_EQ(d->Observe(o).action, Action::kAccept) << i;
  }
  EXPECT_FALSE(d->DomainStatuses()[0].under_attack);
}

}  // namespace
}  // namespace rcptguard::harvest
