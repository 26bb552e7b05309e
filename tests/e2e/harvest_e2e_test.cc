// End-to-end harvest detection: several edges (distinct edge_ids over their
// own connections) each send a few unknown recipients for the same client;
// the server sees them all, so the edge that asks last already gets the
// escalated verdict although it alone saw too few.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::testing::HasSubstr;

std::string HarvestConfig(const std::string& extra) {
  return absl::StrCat(
      R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" }
directory { ldif_files: ")",
      SourceDir(),
      R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
shutdown { grace_ms: 0 }
harvest {
  )",
      extra, R"(
  rules { name: "tarpit" scopes: "v4/32" window: "10m" min_unknown: 3
          action: HARVEST_ACTION_TARPIT base_delay: "2s" factor: 2 max_delay: "8s" }
  rules { name: "block" scopes: "v4/32" window: "10m" min_unknown: 6
          action: HARVEST_ACTION_REJECT penalty_duration: "1h" }
  rules { name: "net" scopes: "v4/24" window: "10m" min_unknown: 100
          action: HARVEST_ACTION_TEMPFAIL }
}
)");
}

const v1::Offender* FindOffender(const v1::ListOffendersResponse& r,
                                 const std::string& key) {
  for (const v1::Offender& o : r.offenders()) {
    if (o.key() == key) return &o;
  }
  return nullptr;
}

v1::ValidateResponse Ask(ServerProcess& server,
                         std::shared_ptr<grpc::Channel> channel,
                         const std::string& edge, const std::string& ip,
                         std::vector<std::string> recipients,
                         bool dry_run = false) {
  auto stub = v1::RecipientValidation::NewStub(channel);
  v1::ValidateRequest request;
  request.mutable_context()->set_client_ip(ip);
  request.mutable_context()->set_edge_id(edge);
  request.mutable_context()->set_mail_from("spammer@bulk.example.net");
  request.set_dry_run(dry_run);
  for (const std::string& r : recipients) request.add_recipients(r);
  grpc::ClientContext ctx;
  v1::ValidateResponse response;
  grpc::Status status = stub->Validate(&ctx, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

TEST(HarvestE2eTest, ThirdEdgeSeesTheEscalatedVerdict) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(HarvestConfig("")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  const std::string ip = "203.0.113.77";

  // Each edge alone sends 2 unknown recipients: below every threshold.
  auto e1 = Ask(server, server.NewChannel(), "edge-1", ip,
                {"guess1@example.com", "guess2@example.com"});
  EXPECT_EQ(e1.client().action(), v1::CLIENT_ACTION_ACCEPT);
  auto e2 = Ask(server, server.NewChannel(), "edge-2", ip,
                {"guess3@example.com", "guess4@example.com"});
  EXPECT_EQ(e2.client().action(), v1::CLIENT_ACTION_TARPIT);
  EXPECT_EQ(e2.client().rule(), "tarpit");
  // Each of the call's 2 recipients costs the first delay, 2 s.
  EXPECT_EQ(e2.client().delay_ms(), 4000u);
  auto e3 = Ask(server, server.NewChannel(), "edge-3", ip,
                {"guess5@example.com", "guess6@example.com"});
  EXPECT_EQ(e3.client().action(), v1::CLIENT_ACTION_REJECT);
  EXPECT_EQ(e3.client().rule(), "block");
  EXPECT_EQ(e3.client().unknown_in_window(), 6u);
  EXPECT_EQ(e3.client().reply().code(), 550u);
  EXPECT_EQ(e3.client().reply().enhanced_status(), "5.7.1");
  EXPECT_TRUE(e3.client().has_blocked_until());

  // While blocked, even a valid recipient gets the block reply: the
  // answers reveal nothing about which addresses exist.
  auto blocked =
      Ask(server, server.NewChannel(), "edge-1", ip, {"alice@example.com"});
  EXPECT_EQ(blocked.client().action(), v1::CLIENT_ACTION_REJECT);
  EXPECT_EQ(blocked.verdicts(0).reply().code(), 550u);
  EXPECT_EQ(blocked.verdicts(0).reply().enhanced_status(), "5.7.1");

  // Another client is unaffected.
  auto other = Ask(server, server.channel(), "edge-1", "198.51.100.1",
                   {"alice@example.com", "nope@example.com"});
  EXPECT_EQ(other.client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(other.verdicts(0).reply().code(), 250u);

  // Admin sees the offender and can forget it.
  auto admin = v1::Admin::NewStub(server.channel());
  {
    grpc::ClientContext ctx;
    v1::ListOffendersResponse offenders;
    ASSERT_TRUE(
        admin->ListOffenders(&ctx, v1::ListOffendersRequest(), &offenders)
            .ok());
    const v1::Offender* client = FindOffender(offenders, "203.0.113.77/32");
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(client->unknown(), 6u);
    EXPECT_EQ(client->verdict().action(), v1::CLIENT_ACTION_REJECT);
    EXPECT_EQ(client->verdict().rule(), "block");
    const v1::Offender* network = FindOffender(offenders, "203.0.113.0/24");
    ASSERT_NE(network, nullptr);
    EXPECT_EQ(network->unknown(), 6u);
    EXPECT_EQ(network->verdict().action(), v1::CLIENT_ACTION_ACCEPT);
  }
  {
    grpc::ClientContext ctx;
    v1::ForgetClientRequest request;
    request.set_client(ip);
    v1::ForgetClientResponse response;
    ASSERT_TRUE(admin->ForgetClient(&ctx, request, &response).ok());
    EXPECT_GE(response.removed(), 1u);
  }
  auto forgiven =
      Ask(server, server.channel(), "edge-1", ip, {"alice@example.com"});
  EXPECT_EQ(forgiven.client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(forgiven.verdicts(0).reply().code(), 250u);
  {
    grpc::ClientContext ctx;
    v1::ForgetClientRequest request;
    request.set_client("not-an-ip");
    v1::ForgetClientResponse response;
    grpc::Status status = admin->ForgetClient(&ctx, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST(HarvestE2eTest, DryRunsAndObserveOnlyNeverPenalize) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(HarvestConfig("observe_only: true")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  const std::string ip = "203.0.113.9";
  for (int i = 0; i < 5; ++i) {
    auto dry = Ask(server, server.channel(), "edge-1", ip,
                   {absl::StrCat("dry", i, "@example.com")}, /*dry_run=*/true);
    EXPECT_EQ(dry.client().action(), v1::CLIENT_ACTION_ACCEPT);
  }
  for (int i = 0; i < 10; ++i) {
    auto r = Ask(server, server.channel(), "edge-1", ip,
                 {absl::StrCat("probe", i, "@example.com")});
    EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_ACCEPT);
    EXPECT_EQ(r.verdicts(0).reply().code(), 550u);
  }
  auto admin = v1::Admin::NewStub(server.channel());
  grpc::ClientContext ctx;
  v1::ListOffendersResponse offenders;
  ASSERT_TRUE(
      admin->ListOffenders(&ctx, v1::ListOffendersRequest(), &offenders).ok());
  // Dry runs were not counted; the 10 real probes were, and the verdict
  // that was withheld is visible.
  const v1::Offender* client = FindOffender(offenders, "203.0.113.9/32");
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->unknown(), 10u);
  EXPECT_EQ(client->verdict().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(client->observed_action(), v1::CLIENT_ACTION_REJECT);

  grpc::ClientContext ctx2;
  v1::GetStatusResponse status;
  ASSERT_TRUE(admin->GetStatus(&ctx2, v1::GetStatusRequest(), &status).ok());
  EXPECT_TRUE(status.harvest().enabled());
  EXPECT_TRUE(status.harvest().observe_only());
  EXPECT_GE(status.harvest().tracked_keys(), 2u);
}

TEST(HarvestE2eTest, InvalidHarvestConfigNamesTheField) {
  const std::string dir = testing::MakeTempDir("rg-harvest-bad");
  const std::string config = dir + "/bad.textproto";
  std::string text = HarvestConfig("");
  text.replace(text.find("window: \"10m\""), 13, "window: \"10 minutes\"");
  ASSERT_TRUE(testing::WriteFile(config, text).ok());
  std::string output;
  auto status = testing::RunCommand(
      {testing::BinaryDir() + "/server/rcptguardd", "--config=" + config},
      &output);
  ASSERT_TRUE(status.ok());
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_THAT(output, HasSubstr("harvest.rules[0].window: invalid duration"));
}

}  // namespace
}  // namespace rcptguard
