// End-to-end: several real rcptguardd replicas sharing harvest state
// through one real, private redis-server (harvest.shared): a harvester
// spread over them is counted once; a replica killed and restarted serves
// the boxes at once; Redis trouble never slows Validate; ForgetClient on
// one replica clears every replica.
#include <signal.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/http.h"
#include "tests/testutil/redis.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::RedisServer;
using ::rcptguard::testing::ScopedTempDir;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;

constexpr int kThreshold = 30;

// `shared_extra`: more fields of harvest.shared (e.g. the ACL user).
std::string Config(const std::string& redis_address,
                   const std::string& shared_extra = "") {
  return absl::StrCat(R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" }
directory { ldif_files: ")",
                      SourceDir(),
                      R"(/deploy/examples/sample.ldif" preset: "ad" }
shutdown { grace_ms: 0 }
harvest {
  rules { name: "block" scopes: "v4/32" window: "1m" min_unknown: )",
                      kThreshold, R"(
          action: HARVEST_ACTION_REJECT penalty_duration: "10m" }
  shared { address: ")",
                      redis_address, R"(" flush_interval: "100ms"
           connect_timeout: "200ms" command_timeout: "300ms" )",
                      shared_extra, R"( }
}
)");
}

class Replica {
 public:
  void Start(const std::string& redis_address,
             const std::string& shared_extra = "") {
    ASSERT_NO_FATAL_FAILURE(server_.Start(Config(redis_address, shared_extra)));
    ASSERT_TRUE(server_.WaitServing(absl::Seconds(30))) << server_.log();
    validate_ = v1::RecipientValidation::NewStub(server_.channel());
    admin_ = v1::Admin::NewStub(server_.channel());
  }

  v1::ValidateResponse Probe(const std::string& ip, int n) {
    v1::ValidateRequest request;
    request.mutable_context()->set_client_ip(ip);
    request.mutable_context()->set_mail_from("x@sender.example");
    request.mutable_context()->set_session_id(absl::StrCat("s", n));
    request.mutable_context()->set_edge_id("edge");
    request.add_recipients(absl::StrCat("guess", n, "@example.com"));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
    v1::ValidateResponse response;
    const grpc::Status status = validate_->Validate(&ctx, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::SharedHarvestStatus Shared() {
    grpc::ClientContext ctx;
    v1::GetStatusResponse response;
    EXPECT_TRUE(
        admin_->GetStatus(&ctx, v1::GetStatusRequest(), &response).ok());
    return response.harvest().shared();
  }

  uint32_t UnknownOf(const std::string& key) {
    grpc::ClientContext ctx;
    v1::ListOffendersRequest request;
    request.set_limit(1000);
    v1::ListOffendersResponse response;
    EXPECT_TRUE(admin_->ListOffenders(&ctx, request, &response).ok());
    for (const v1::Offender& o : response.offenders()) {
      if (o.key() == key) return o.unknown();
    }
    return 0;
  }

  uint64_t Forget(const std::string& client) {
    grpc::ClientContext ctx;
    v1::ForgetClientRequest request;
    request.set_client(client);
    v1::ForgetClientResponse response;
    EXPECT_TRUE(admin_->ForgetClient(&ctx, request, &response).ok());
    return response.removed();
  }

  ServerProcess& server() { return server_; }

 private:
  ServerProcess server_;
  std::unique_ptr<v1::RecipientValidation::Stub> validate_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

bool Eventually(const std::function<bool()>& cond,
                absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return cond();
}

bool Rejected(const v1::ValidateResponse& r) {
  return r.client().action() == v1::CLIENT_ACTION_REJECT;
}

class HarvestSharedE2eTest : public ::testing::Test {
 protected:
  void StartRedis(bool tcp = false) {
    auto redis = RedisServer::Start(dir_.path(), tcp);
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
  }
  void StartReplicas(int n, const std::string& shared_extra = "") {
    for (int i = 0; i < n; ++i) {
      replicas_.push_back(std::make_unique<Replica>());
      ASSERT_NO_FATAL_FAILURE(
          replicas_.back()->Start(redis_->address(), shared_extra));
    }
    for (auto& r : replicas_) {
      ASSERT_TRUE(Eventually([&] { return r->Shared().connected(); }))
          << r->server().log();
    }
  }

  ScopedTempDir dir_{"rg-redis-e2e"};
  std::unique_ptr<RedisServer> redis_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

// Probes round-robin over three replicas, ten per flush interval: blocked
// after about the single-process threshold plus one interval's worth, not
// three times the threshold; then blocked on every replica.
TEST_F(HarvestSharedE2eTest, ThreeReplicasCountOneHarvesterOnce) {
  ASSERT_NO_FATAL_FAILURE(StartRedis());
  ASSERT_NO_FATAL_FAILURE(StartReplicas(3));
  int first_block = -1;
  for (int i = 0; i < 3 * kThreshold && first_block < 0; ++i) {
    if (Rejected(replicas_[i % 3]->Probe("198.51.100.23", i))) {
      first_block = i + 1;  // probes sent when the first REJECT came
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GT(first_block, 0) << "never blocked";
  EXPECT_GE(first_block, kThreshold);
  // One interval (100 ms) lets about 10 more through, plus scheduling.
  EXPECT_LE(first_block, kThreshold + 15);
  // The box is written through: every replica holds it within an interval.
  absl::SleepFor(absl::Milliseconds(250));
  for (int r = 0; r < 3; ++r) {
    EXPECT_TRUE(Rejected(replicas_[r]->Probe("198.51.100.23", 1000 + r)))
        << "replica " << r;
  }
  // ForgetClient on one replica clears it on all of them.
  EXPECT_EQ(replicas_[0]->Forget("198.51.100.23"), 2u);
  absl::SleepFor(absl::Milliseconds(400));
  for (int r = 0; r < 3; ++r) {
    EXPECT_FALSE(Rejected(replicas_[r]->Probe("198.51.100.23", 2000 + r)))
        << "replica " << r;
  }
}

// The ACL that deploy/kubernetes/components/redis ships (taken verbatim
// from its secret.yaml, password filled in; plus a user for the test to
// look at the keys): the default user off, user rcptguard limited to its
// key prefix and the commands it needs. Two
// replicas log in as that user: counting, the shared box, ForgetClient
// and the flushes all work, with no permission error anywhere.
TEST_F(HarvestSharedE2eTest, ShippedKubernetesAclIsEnough) {
  const std::string secret = testing::ReadFile(
      SourceDir() + "/deploy/kubernetes/components/redis/secret.yaml");
  const size_t at = secret.find("users.acl: |\n");
  ASSERT_NE(at, std::string::npos) << "users.acl not found in secret.yaml";
  const std::string password = "acl-test-7f3a9c";
  std::string acl;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(secret).substr(at + 13), '\n')) {
    if (!absl::StartsWith(line, "    ")) break;  // the block ends
    acl += absl::StrReplaceAll(line.substr(4), {{"REPLACE-ME", password}});
    acl += "\n";
  }
  ASSERT_TRUE(absl::StrContains(acl, "user default off")) << acl;
  // docs/harvest-shared.md gives the same rules for an existing Redis.
  const size_t rules = acl.find(absl::StrCat(">", password, " "));
  ASSERT_NE(rules, std::string::npos) << acl;
  const std::string rule_text =
      acl.substr(rules + password.size() + 2,
                 acl.find('\n', rules) - rules - password.size() - 2);
  EXPECT_TRUE(absl::StrContains(
      testing::ReadFile(SourceDir() + "/docs/harvest-shared.md"),
      absl::StrCat("ACL SETUSER rcptguard on >PASSWORD ", rule_text)))
      << "docs/harvest-shared.md should give: " << rule_text;
  ASSERT_TRUE(absl::StrContains(acl, "user rcptguard on")) << acl;
  // The test's own user, to look at every key (rcptguard may not SCAN).
  acl += "user inspector on >inspector-pw ~* &* +@all\n";
  const std::string acl_file = dir_.path() + "/users.acl";
  const std::string password_file = dir_.path() + "/redis-password";
  ASSERT_TRUE(testing::WriteFile(acl_file, acl).ok());
  ASSERT_TRUE(testing::WriteFile(password_file, password + "\n").ok());
  auto redis =
      RedisServer::Start(dir_.path(), /*tcp=*/false, {"--aclfile", acl_file},
                         {"inspector", "inspector-pw"});
  ASSERT_TRUE(redis.ok()) << redis.status();
  redis_ = *std::move(redis);
  // The default user is really off.
  std::string anonymous;
  ASSERT_TRUE(testing::RunCommand({"/usr/bin/redis-cli", "-s", redis_->socket(),
                                   "SET", "x", "1"},
                                  &anonymous)
                  .ok());
  EXPECT_TRUE(absl::StrContains(anonymous, "NOAUTH")) << anonymous;
  ASSERT_NO_FATAL_FAILURE(
      StartReplicas(2, absl::StrCat(R"(username: "rcptguard" password_file: ")",
                                    password_file, R"(")")));

  int first_block = -1;
  for (int i = 0; i < 2 * kThreshold && first_block < 0; ++i) {
    if (Rejected(replicas_[i % 2]->Probe("203.0.113.77", i))) {
      first_block = i + 1;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GT(first_block, 0) << replicas_[0]->server().log();
  EXPECT_LE(first_block, kThreshold + 15);
  EXPECT_TRUE(Eventually(
      [&] { return Rejected(replicas_[1]->Probe("203.0.113.77", 500)); }));
  EXPECT_EQ(replicas_[1]->Forget("203.0.113.77"), 2u);
  EXPECT_TRUE(Eventually(
      [&] { return !Rejected(replicas_[0]->Probe("203.0.113.77", 600)); }));
  // Every key lives under the prefix the ACL allows, and no command was
  // refused.
  absl::StatusOr<std::string> keys = redis_->Cli({"--scan"});
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_FALSE(keys->empty());
  for (absl::string_view key : absl::StrSplit(*keys, '\n', absl::SkipEmpty())) {
    EXPECT_TRUE(absl::StartsWith(key, "rcptguard:")) << key;
  }
  for (auto& r : replicas_) {
    const v1::SharedHarvestStatus shared = r->Shared();
    EXPECT_TRUE(shared.connected()) << shared.ShortDebugString();
    EXPECT_EQ(shared.errors(), 0u) << shared.ShortDebugString();
    EXPECT_GT(shared.flushes(), 0u);
    EXPECT_EQ(shared.last_error(), "");
    EXPECT_FALSE(absl::StrContains(r->server().log(), "NOPERM"))
        << r->server().log();
  }
}

// A replica killed (SIGKILL) during a harvest and started again serves the
// box and the windows of other clients within an interval of starting.
TEST_F(HarvestSharedE2eTest, RestartedReplicaServesBoxesAndWindows) {
  ASSERT_NO_FATAL_FAILURE(StartRedis());
  ASSERT_NO_FATAL_FAILURE(StartReplicas(2));
  for (int i = 0; i < kThreshold; ++i) replicas_[0]->Probe("192.0.2.50", i);
  for (int i = 0; i < 12; ++i) replicas_[0]->Probe("192.0.2.51", i);
  ASSERT_TRUE(Eventually(
      [&] { return Rejected(replicas_[1]->Probe("192.0.2.50", 100)); }));
  replicas_[1]->server().process().Signal(SIGKILL);
  replicas_[1]->server().process().Wait(absl::Seconds(5));
  // The harvest goes on at the other replica while this one is down.
  for (int i = 0; i < 5; ++i) replicas_[0]->Probe("192.0.2.51", 50 + i);
  replicas_[1] = std::make_unique<Replica>();
  ASSERT_NO_FATAL_FAILURE(replicas_[1]->Start(redis_->address()));
  const absl::Time started = absl::Now();
  ASSERT_TRUE(Eventually([&] {
    return Rejected(replicas_[1]->Probe("192.0.2.50", 200)) &&
           replicas_[1]->UnknownOf("192.0.2.51/32") == 17;
  })) << replicas_[1]->server().log();
  // Connect, load, one interval: well under a second here.
  EXPECT_LT(absl::Now() - started, absl::Seconds(2));
}

// Redis frozen, killed, back empty, refusing writes: every Validate is
// answered in the usual time from local state, the status says what is
// wrong, and sharing resumes. Over TCP on 127.0.0.1.
TEST_F(HarvestSharedE2eTest, RedisTroubleIsNotAnOutage) {
  ASSERT_NO_FATAL_FAILURE(StartRedis(/*tcp=*/true));
  ASSERT_NO_FATAL_FAILURE(StartReplicas(1));
  Replica& r = *replicas_[0];
  auto slowest = [&](int from) {
    absl::Duration worst;
    for (int i = 0; i < 20; ++i) {
      const absl::Time t = absl::Now();
      r.Probe(absl::StrCat("10.20.", from, ".", i), i);
      worst = std::max(worst, absl::Now() - t);
      absl::SleepFor(absl::Milliseconds(15));
    }
    return worst;
  };
  // Frozen (SIGSTOP): the flush times out, Validate does not wait.
  redis_->Pause();
  EXPECT_LT(slowest(1), absl::Milliseconds(100));
  EXPECT_TRUE(Eventually([&] { return !r.Shared().connected(); }));
  EXPECT_EQ(r.Shared().state(), "disconnected");
  redis_->Resume();
  ASSERT_TRUE(Eventually([&] { return r.Shared().connected(); }));
  // Killed, then back empty.
  redis_->Kill();
  EXPECT_LT(slowest(2), absl::Milliseconds(100));
  EXPECT_FALSE(r.Shared().connected());
  EXPECT_FALSE(r.Shared().last_error().empty());
  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(Eventually([&] { return r.Shared().connected(); }));
  // Local counts survived Redis' loss.
  EXPECT_EQ(r.UnknownOf("10.20.2.5/32"), 1u);
  // Out of memory with noeviction: writes refused, reported, recovered.
  ASSERT_TRUE(
      redis_->Cli({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).ok());
  ASSERT_TRUE(redis_->Cli({"CONFIG", "SET", "maxmemory", "1"}).ok());
  EXPECT_LT(slowest(3), absl::Milliseconds(100));
  EXPECT_TRUE(
      Eventually([&] { return r.Shared().state() == "writes failing"; }));
  EXPECT_TRUE(absl::StrContains(r.Shared().last_error(), "OOM"))
      << r.Shared().last_error();
  ASSERT_TRUE(redis_->Cli({"CONFIG", "SET", "maxmemory", "0"}).ok());
  r.Probe("10.20.4.1", 1);
  EXPECT_TRUE(Eventually([&] { return r.Shared().state() == "connected"; }));
  EXPECT_GT(r.Shared().errors(), 0u);
  EXPECT_GT(r.Shared().reconnects(), 0u);
  // One log line per state change, not one per failed attempt.
  const std::string log = r.server().log();
  size_t lines = 0;
  for (size_t at = log.find("harvest_shared_state"); at != std::string::npos;
       at = log.find("harvest_shared_state", at + 1)) {
    ++lines;
  }
  EXPECT_GE(lines, 6u);
  EXPECT_LE(lines, 12u) << log;
  // The metrics say the same.
  const std::string metrics =
      testing::HttpGet(r.server().metrics_port(), "/metrics");
  EXPECT_TRUE(
      absl::StrContains(metrics, "rcptguard_harvest_shared_connected 1"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, "rcptguard_harvest_shared_flush_duration_seconds_count"));
}

}  // namespace
}  // namespace rcptguard
