// One case per validation failure, each asserting the exact message.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/harvest/harvest.h"

namespace rcptguard::harvest {
namespace {

TEST(HarvestConfigTest, DefaultsAreValid) {
  const HarvestConfig c = HarvestConfig::Defaults();
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
  EXPECT_EQ(c.rules.size(), 7u);
  EXPECT_EQ(c.max_tracked_keys, 1'000'000u);
  EXPECT_FALSE(c.observe_only);
  FakeClock clock;
  EXPECT_TRUE(Detector::Create(c, &clock, 10).ok());
}

TEST(HarvestConfigTest, DefaultsMatchTheDocumentedNumbers) {
  const HarvestConfig c = HarvestConfig::Defaults();
  const HarvestRule& tarpit = c.rules[0];
  EXPECT_EQ(tarpit.name, "client-tarpit");
  EXPECT_EQ(tarpit.window, absl::Minutes(10));
  EXPECT_EQ(tarpit.min_distinct_unknown, 8u);
  EXPECT_EQ(tarpit.min_unknown_ratio, 0.1);
  EXPECT_EQ(tarpit.base_delay, absl::Seconds(2));
  EXPECT_EQ(tarpit.max_delay, absl::Seconds(20));
  EXPECT_EQ(c.rules[1].name, "client-tempfail");
  EXPECT_EQ(c.rules[1].min_distinct_unknown, 15u);
  EXPECT_EQ(c.rules[1].min_unknown_ratio, 0.1);
  EXPECT_EQ(c.rules[2].name, "client-reject");
  EXPECT_EQ(c.rules[2].min_distinct_unknown, 40u);
  EXPECT_EQ(c.rules[2].min_unknown_ratio, 0.5);
  EXPECT_EQ(c.rules[2].penalty_duration, absl::Hours(1));
  EXPECT_EQ(c.rules[3].name, "network-tempfail");
  EXPECT_EQ(c.rules[3].min_distinct_clients, 3u);
  EXPECT_TRUE(c.rules[3].new_client_accept_all);
  EXPECT_EQ(c.rules[4].name, "network-reject");
  EXPECT_EQ(c.rules[4].min_distinct_unknown, 60u);
  EXPECT_EQ(c.rules[4].min_distinct_clients, 5u);
  EXPECT_TRUE(c.rules[4].new_client_accept_all);
  EXPECT_FALSE(c.rules[0].new_client_accept_all);
  EXPECT_EQ(c.rules[5].name, "null-sender-accept-all");
  EXPECT_EQ(c.rules[5].traffic, Traffic::kNullSender);
  EXPECT_EQ(c.rules[5].action, Action::kAccept);
  EXPECT_TRUE(c.rules[5].accept_all);
  EXPECT_EQ(c.rules[6].name, "null-sender-network-accept-all");
  EXPECT_EQ(c.domain_attack_action, Action::kTempfail);
}

TEST(HarvestConfigTest, EmptyRuleSetIsValid) {
  HarvestConfig c = HarvestConfig::Defaults();
  c.rules.clear();
  EXPECT_TRUE(c.Validate().ok());
}

struct BadCase {
  const char* label;
  std::function<void(HarvestConfig&)> mutate;
  std::string message;
};

class HarvestConfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(HarvestConfigErrorTest, NamesTheField) {
  HarvestConfig c = HarvestConfig::Defaults();
  GetParam().mutate(c);
  const absl::Status s = c.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), GetParam().message);
  FakeClock clock;
  auto d = Detector::Create(c, &clock, 1);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status(), s);
}

std::vector<BadCase> Cases() {
  return {
      {"window_zero",
       [](HarvestConfig& c) { c.rules[1].window = absl::ZeroDuration(); },
       "rules[1].window: must be between 1s and 24h"},
      {"window_too_long",
       [](HarvestConfig& c) { c.rules[1].window = absl::Hours(25); },
       "rules[1].window: must be between 1s and 24h"},
      {"window_shorter_than_bucket",
       [](HarvestConfig& c) { c.rules[0].window = absl::Seconds(30); },
       "rules[0].window: 30s is shorter than one counting bucket (1m = longest "
       "rule window 1h / 60)"},
      {"name_empty", [](HarvestConfig& c) { c.rules[0].name = ""; },
       "rules[0].name: must be 1 to 64 characters of A-Z a-z 0-9 _ . -"},
      {"name_space", [](HarvestConfig& c) { c.rules[2].name = "my rule"; },
       "rules[2].name: must be 1 to 64 characters of A-Z a-z 0-9 _ . -"},
      {"name_duplicate",
       [](HarvestConfig& c) { c.rules[1].name = c.rules[0].name; },
       "rules[1].name: duplicate of rules[0].name"},
      {"scopes_empty", [](HarvestConfig& c) { c.rules[0].scopes.clear(); },
       "rules[0].scopes: must not be empty"},
      {"scope_untracked",
       [](HarvestConfig& c) { c.rules[0].scopes[0] = "v4/16"; },
       "rules[0].scopes[0]: \"v4/16\" is not a tracked prefix (v4/32, v4/24, "
       "v6/128, v6/64)"},
      {"scope_malformed",
       [](HarvestConfig& c) { c.rules[0].scopes[1] = "ipv6"; },
       "rules[0].scopes[1]: \"ipv6\" must look like v4/LEN or v6/LEN"},
      {"scope_duplicate",
       [](HarvestConfig& c) {
         c.rules[0].scopes = {"v4/32", "v4/32"};
       },
       "rules[0].scopes[1]: duplicate of rules[0].scopes[0]"},
      {"scope_after_prefix_removed",
       [](HarvestConfig& c) { c.v4_prefixes = {32}; },
       "rules[3].scopes[0]: \"v4/24\" is not a tracked prefix (v4/32, v6/128, "
       "v6/64)"},
      {"min_unknown_zero", [](HarvestConfig& c) { c.rules[1].min_unknown = 0; },
       "rules[1].min_unknown: must be at least 1"},
      {"ratio_above_one",
       [](HarvestConfig& c) { c.rules[2].min_unknown_ratio = 1.5; },
       "rules[2].min_unknown_ratio: must be between 0 and 1"},
      {"ratio_nan",
       [](HarvestConfig& c) { c.rules[2].min_unknown_ratio = std::nan(""); },
       "rules[2].min_unknown_ratio: must be between 0 and 1"},
      {"action_accept",
       [](HarvestConfig& c) { c.rules[1].action = Action::kAccept; },
       "rules[1].action: must be TARPIT, TEMPFAIL or REJECT"},
      {"base_delay_zero",
       [](HarvestConfig& c) { c.rules[0].base_delay = absl::ZeroDuration(); },
       "rules[0].base_delay: must be between 1ms and 5m"},
      {"factor_below_one", [](HarvestConfig& c) { c.rules[0].factor = 0.5; },
       "rules[0].factor: must be between 1 and 10"},
      {"max_delay_below_base",
       [](HarvestConfig& c) { c.rules[0].max_delay = absl::Milliseconds(500); },
       "rules[0].max_delay: must be between base_delay and 5m"},
      {"max_delay_too_long",
       [](HarvestConfig& c) { c.rules[0].max_delay = absl::Minutes(6); },
       "rules[0].max_delay: must be between base_delay and 5m"},
      {"tarpit_penalty",
       [](HarvestConfig& c) { c.rules[0].penalty_duration = absl::Minutes(1); },
       "rules[0].penalty_duration: only TEMPFAIL and REJECT rules keep a "
       "penalty box"},
      {"penalty_too_long",
       [](HarvestConfig& c) {
         c.rules[2].penalty_duration = absl::Hours(24 * 8);
       },
       "rules[2].penalty_duration: must be between 0s and 7d"},
      {"penalty_negative",
       [](HarvestConfig& c) {
         c.rules[2].penalty_duration = -absl::Seconds(1);
       },
       "rules[2].penalty_duration: must be between 0s and 7d"},
      {"reply_text_crlf",
       [](HarvestConfig& c) { c.rules[2].reply_text = "go away\r\n250 OK"; },
       "rules[2].reply_text: must be printable ASCII, at most 200 characters"},
      {"reply_text_long",
       [](HarvestConfig& c) { c.rules[2].reply_text = std::string(201, 'x'); },
       "rules[2].reply_text: must be printable ASCII, at most 200 characters"},
      {"new_client_on_client_scope",
       [](HarvestConfig& c) { c.rules[1].new_client_accept_all = true; },
       "rules[1].new_client_action: ACCEPT_ALL is for NORMAL rules with a "
       "network scope (e.g. v4/24) only"},
      {"new_client_on_null_sender",
       [](HarvestConfig& c) { c.rules[6].new_client_accept_all = true; },
       "rules[6].new_client_action: ACCEPT_ALL is for NORMAL rules with a "
       "network scope (e.g. v4/24) only"},
      {"too_many_rules",
       [](HarvestConfig& c) {
         for (int i = 0; i < 40; ++i) {
           c.rules.push_back(c.rules[0]);
           c.rules.back().name = "r" + std::to_string(i);
         }
       },
       "rules: at most 32 rules"},
      {"v4_prefixes_empty", [](HarvestConfig& c) { c.v4_prefixes.clear(); },
       "v4_prefixes: must list 1 to 4 prefix lengths"},
      {"v4_prefixes_too_many",
       [](HarvestConfig& c) {
         c.v4_prefixes = {32, 28, 24, 20, 16};
       },
       "v4_prefixes: must list 1 to 4 prefix lengths"},
      {"v4_prefix_range",
       [](HarvestConfig& c) {
         c.v4_prefixes = {32, 33};
       },
       "v4_prefixes[1]: must be between 8 and 32"},
      {"v4_prefix_duplicate",
       [](HarvestConfig& c) {
         c.v4_prefixes = {24, 24};
       },
       "v4_prefixes[1]: duplicate of v4_prefixes[0]"},
      {"v6_prefix_range",
       [](HarvestConfig& c) {
         c.v6_prefixes = {128, 8};
       },
       "v6_prefixes[1]: must be between 16 and 128"},
      {"allowlist_host_bits",
       [](HarvestConfig& c) {
         c.allowlist = {"192.0.2.0/24", "10.0.0.1/8"};
       },
       "allowlist[1]: \"10.0.0.1/8\": host bits set (did you mean "
       "10.0.0.0/8?)"},
      {"allowlist_garbage",
       [](HarvestConfig& c) { c.allowlist = {"relay.example"}; },
       "allowlist[0]: \"relay.example\" is not an IP address or CIDR"},
      {"allowlist_length",
       [](HarvestConfig& c) { c.allowlist = {"10.0.0.0/33"}; },
       "allowlist[0]: \"10.0.0.0/33\": prefix length must be between 0 and 32"},
      {"max_tracked_keys_zero",
       [](HarvestConfig& c) { c.max_tracked_keys = 0; },
       "max_tracked_keys: must be between 1 and 100000000"},
      {"shards_zero", [](HarvestConfig& c) { c.shards = 0; },
       "shards: must be between 1 and 4096"},
      {"domain_window_short",
       [](HarvestConfig& c) { c.domain_window = absl::Seconds(30); },
       "domain_window: must be between 1m and 24h"},
      {"domain_threshold_high",
       [](HarvestConfig& c) { c.domain_min_distinct_clients = 5000; },
       "domain_min_distinct_clients: must be at most 1000"},
  };
}

INSTANTIATE_TEST_SUITE_P(AllFields, HarvestConfigErrorTest,
                         ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.label; });

TEST(HarvestConfigTest, NullClockIsRefused) {
  auto d = Detector::Create(HarvestConfig::Defaults(), nullptr, 0);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(), "clock: must not be null");
}

}  // namespace
}  // namespace rcptguard::harvest
