#include "server/service/access.h"

#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/config/config.h"

namespace rcptguard::service {
namespace {

v1::ServerConfig TlsConfig(const std::string& access) {
  auto config = ParseConfig(
      R"(domains { name: "a.com" } directory { ldif_files: "a" preset: "ad" }
         tls { cert_file: "c" key_file: "k" client_ca_file: "ca" } )" +
          access,
      "t", "/");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : v1::ServerConfig();
}

TEST(AccessPolicyTest, DefaultsLetAnyCertificateValidateAndReadButNoneAdmin) {
  AccessPolicy policy(TlsConfig(""));
  EXPECT_TRUE(policy.tls());
  EXPECT_TRUE(policy.Allowed("edge1.example.net", Role::kValidate));
  EXPECT_TRUE(policy.Allowed("edge1.example.net", Role::kRead));
  EXPECT_FALSE(policy.Allowed("edge1.example.net", Role::kAdmin));
}

TEST(AccessPolicyTest, ListsAreExactAndAdminsMayRead) {
  AccessPolicy policy(TlsConfig(
      R"(access { validate: "edge1" read: "monitor" admin: "ops" })"));
  EXPECT_TRUE(policy.Allowed("edge1", Role::kValidate));
  EXPECT_FALSE(policy.Allowed("EDGE1", Role::kValidate));
  EXPECT_FALSE(policy.Allowed("edge1", Role::kRead));
  EXPECT_FALSE(policy.Allowed("edge1", Role::kAdmin));
  EXPECT_TRUE(policy.Allowed("monitor", Role::kRead));
  EXPECT_FALSE(policy.Allowed("monitor", Role::kAdmin));
  EXPECT_TRUE(policy.Allowed("ops", Role::kAdmin));
  EXPECT_TRUE(policy.Allowed("ops", Role::kRead));
  EXPECT_FALSE(policy.Allowed("ops", Role::kValidate));
  EXPECT_FALSE(policy.Allowed("", Role::kValidate));
}

TEST(AccessPolicyTest, PlaintextAllowsEveryone) {
  v1::ServerConfig config;
  config.set_insecure_plaintext(true);
  AccessPolicy policy(config);
  EXPECT_FALSE(policy.tls());
  EXPECT_TRUE(policy.Allowed("", Role::kAdmin));
}

TEST(RateLimiterTest, TokenBucketPerIdentityWithDebt) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  RateLimiter limiter(100, 2, &clock);  // holds 200
  EXPECT_TRUE(limiter.Admit("a", 150));
  EXPECT_TRUE(limiter.Admit("a", 150));    // 50 left: admitted into debt
  EXPECT_FALSE(limiter.Admit("a", 1));     // -100
  EXPECT_TRUE(limiter.Admit("b", 200));    // its own bucket
  clock.Advance(absl::Milliseconds(500));  // +50: still -50
  EXPECT_FALSE(limiter.Admit("a", 1));
  clock.Advance(absl::Milliseconds(600));  // +60: +10
  EXPECT_TRUE(limiter.Admit("a", 1));
  clock.Advance(absl::Seconds(60));  // refills to the cap, not beyond
  EXPECT_TRUE(limiter.Admit("a", 200));
  EXPECT_TRUE(limiter.Admit("a", 1));
  EXPECT_FALSE(limiter.Admit("a", 1));
  clock.Advance(-absl::Seconds(30));  // a clock going back refills nothing
  EXPECT_FALSE(limiter.Admit("a", 1));
}

TEST(RateLimiterTest, ZeroRateAdmitsEverything) {
  RateLimiter limiter(0, 2);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.Admit("a", 100000));
}

TEST(RateLimiterTest, IdentitiesBeyondTheBoundShareABucket) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  RateLimiter limiter(10, 1, &clock);
  // Fill every shard past its share of kMaxIdentities.
  int refused = 0;
  for (size_t i = 0; i < 2 * RateLimiter::kMaxIdentities; ++i) {
    if (!limiter.Admit("id" + std::to_string(i), 11)) ++refused;
  }
  // The first identities of each shard had their own bucket; the rest
  // shared "other" per shard, which went into debt at once.
  EXPECT_GT(refused, static_cast<int>(RateLimiter::kMaxIdentities / 2));
}

}  // namespace
}  // namespace rcptguard::service
