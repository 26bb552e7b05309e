// End-to-end, over gRPC against the real rcptguardd with the default
// harvest rules: the cases of issue 13 that the old defaults got wrong,
// each with the verdicts an administrator should expect. (The full
// labelled-traffic comparison is tests/harvest_sim.)
#include <sys/wait.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;

class HarvestDefaultsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(server_.Start(absl::StrCat(
        R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" }
directory { ldif_files: ")",
        SourceDir(),
        R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
shutdown { grace_ms: 0 }
)")));
    ASSERT_TRUE(server_.WaitServing(absl::Seconds(30))) << server_.log();
    stub_ = v1::RecipientValidation::NewStub(server_.channel());
  }

  v1::ValidateResponse Ask(const std::string& ip, const std::string& mail_from,
                           const std::string& session,
                           const std::vector<std::string>& recipients) {
    v1::ValidateRequest request;
    request.mutable_context()->set_client_ip(ip);
    request.mutable_context()->set_mail_from(mail_from);
    request.mutable_context()->set_session_id(session);
    request.mutable_context()->set_edge_id("edge-1");
    for (const std::string& r : recipients) request.add_recipients(r);
    grpc::ClientContext ctx;
    v1::ValidateResponse response;
    grpc::Status status = stub_->Validate(&ctx, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Whether the answer tells a valid recipient from an unknown one.
  static bool Truthful(const v1::ValidateResponse& r) {
    return r.client().action() == v1::CLIENT_ACTION_ACCEPT ||
           r.client().action() == v1::CLIENT_ACTION_TARPIT;
  }

  ServerProcess server_;
  std::unique_ptr<v1::RecipientValidation::Stub> stub_;
};

// A harvester posing as a bounce (MAIL FROM:<>, one recipient per
// transaction) used to get a true answer to every probe. Now, after a
// handful, every recipient of its null-sender transactions is answered as
// accepted: it cannot tell a valid address from an unknown one any more.
TEST_F(HarvestDefaultsE2eTest, NullSenderHarvesterLearnsNothing) {
  int truthful = 0;  // 550 5.1.1 answers: "this address does not exist"
  v1::ValidateResponse last;
  for (int i = 0; i < 60; ++i) {
    last = Ask("203.0.113.66", "", absl::StrCat("s", i),
               {absl::StrCat("guess", i, "@example.com")});
    truthful += last.verdicts(0).reply().code() == 550 ? 1 : 0;
  }
  // The rule fires at 10 distinct unknown recipients as estimated by the
  // 64-bit sketch (linear counting, keyed per process): when guesses share
  // a bit it takes a few more. 14 holds for all but 0.03 % of keys (13 %
  // of runs needed more than 10; CI once saw 12).
  EXPECT_LE(truthful, 14);
  EXPECT_EQ(last.client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(last.client().rule(), "null-sender-accept-all");
  EXPECT_EQ(last.verdicts(0).status(), v1::RECIPIENT_STATUS_UNKNOWN);
  EXPECT_TRUE(last.verdicts(0).monitor_only());
  EXPECT_EQ(last.verdicts(0).reply().code(), 250u);
  // A valid address gets the same answer: nothing to learn.
  const v1::ValidateResponse valid =
      Ask("203.0.113.66", "", "s-valid", {"alice@example.com"});
  EXPECT_EQ(valid.verdicts(0).reply().code(), 250u);
  // ListOffenders (and the CLI) say why: null-sender unknowns, the
  // distinct estimate and the null-sender verdict; the key's verdict for
  // normal mail, which the bounces do not touch, stays ACCEPT.
  std::string output;
  absl::StatusOr<int> rc =
      testing::RunCommand({testing::BinaryDir() + "/clients/rcptguard",
                           "offenders", "5", "--server=" + server_.target()},
                          &output);
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_EQ(WEXITSTATUS(*rc), 0) << output;
  EXPECT_THAT(output, ::testing::HasSubstr("NULL-UNK"));
  EXPECT_THAT(output,
              ::testing::ContainsRegex(
                  "203\\.0\\.113\\.66/32 +0 +0 +0 +0 +6[0-9] +[0-9]+ +0 +"
                  "ACCEPT +ACCEPT_ALL/null-sender-accept-all"));
  // Its normal mail is judged apart and answered truthfully.
  const v1::ValidateResponse normal =
      Ask("203.0.113.66", "someone@sender.example", "s-normal",
          {"nobody-here@example.com"});
  EXPECT_EQ(normal.verdicts(0).reply().code(), 550u);
}

// A provider relays backscatter (bounces to forged, unknown addresses) and
// then sends normal mail: the bounces never weigh on its normal mail.
TEST_F(HarvestDefaultsE2eTest, BackscatterThenNormalMailIsAccepted) {
  const std::string ip = "198.51.100.25";
  for (int i = 0; i < 30; ++i) {
    Ask(ip, "", absl::StrCat("b", i),
        {absl::StrCat("forged", i, "@example.com")});
  }
  for (int i = 0; i < 5; ++i) {
    const v1::ValidateResponse r =
        Ask(ip, "newsletter@provider.example", absl::StrCat("n", i),
            {"alice@example.com", "info@example.com"});
    EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_ACCEPT) << i;
    EXPECT_EQ(r.verdicts(0).reply().code(), 250u);
    EXPECT_EQ(r.client().delay_ms(), 0u);
  }
}

// A list server with 2 % stale subscribers (1000 valid and 20 unknown
// recipients in 50 transactions) used to be tarpitted on half of them.
TEST_F(HarvestDefaultsE2eTest, BulkSenderWithTwoPercentUnknownIsLeftAlone) {
  for (int t = 0; t < 50; ++t) {
    std::vector<std::string> recipients(20, "alice@example.com");
    if (t % 5 == 0) {
      for (int k = 0; k < 2; ++k) {
        recipients.push_back(absl::StrCat("stale", t, "-", k, "@example.com"));
      }
    }
    const v1::ValidateResponse r = Ask("192.0.2.50", "list@lists.example.org",
                                       absl::StrCat("l", t), recipients);
    EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_ACCEPT) << t;
    EXPECT_EQ(r.client().delay_ms(), 0u) << t;
  }
}

// One attacker's unknowns no longer make an innocent host of the same /24
// wait or fail: one address cannot fire its network's rules.
TEST_F(HarvestDefaultsE2eTest, NeighbourInTheSame24IsNotPenalized) {
  v1::ValidateResponse attacker;
  for (int t = 0; t < 10; ++t) {
    std::vector<std::string> guesses;
    for (int k = 0; k < 5; ++k) {
      guesses.push_back(absl::StrCat("g", t, "-", k, "@example.com"));
    }
    attacker =
        Ask("192.0.2.1", "x@spam.example", absl::StrCat("a", t), guesses);
  }
  EXPECT_NE(attacker.client().action(), v1::CLIENT_ACTION_ACCEPT);
  const v1::ValidateResponse neighbour =
      Ask("192.0.2.2", "boss@neighbour.example", "n1", {"alice@example.com"});
  EXPECT_EQ(neighbour.client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(neighbour.client().delay_ms(), 0u);
  EXPECT_EQ(neighbour.verdicts(0).reply().code(), 250u);
}

// A harvester rotating through fresh addresses of a /64: once the network
// rule fires, a fresh address is answered accept-all (its guesses tell
// nothing), an address that has guessed before is deferred, and a
// neighbour's first mail from that /64 is accepted, not deferred.
TEST_F(HarvestDefaultsE2eTest, RotationInA64TellsNothingAndSparesTheNeighbour) {
  int host = 1;
  auto guesses = [](int h) {
    std::vector<std::string> out;
    for (int k = 0; k < 6; ++k) {
      out.push_back(absl::StrCat("rot", h, "-", k, "@example.com"));
    }
    return out;
  };
  for (; host <= 6; ++host) {
    Ask(absl::StrCat("2001:db8:5:5::", host), "x@spam.example",
        absl::StrCat("r", host), guesses(host));
  }
  const std::string fresh = "2001:db8:5:5::99";
  v1::ValidateResponse r = Ask(fresh, "x@spam.example", "r-fresh", guesses(99));
  EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(r.client().rule(), "network-tempfail");
  for (const auto& v : r.verdicts()) {
    EXPECT_EQ(v.status(), v1::RECIPIENT_STATUS_UNKNOWN);
    EXPECT_EQ(v.reply().code(), 250u);
  }
  r = Ask(fresh, "x@spam.example", "r-again", {"alice@example.com"});
  EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_TEMPFAIL);
  EXPECT_EQ(r.verdicts(0).reply().code(), 451u);

  const std::string neighbour = "2001:db8:5:5::25";
  r = Ask(neighbour, "orders@neighbour.example", "n1", {"alice@example.com"});
  EXPECT_EQ(r.verdicts(0).reply().code(), 250u);
  EXPECT_EQ(r.client().delay_ms(), 0u);
  r = Ask(neighbour, "orders@neighbour.example", "n2", {"alice@example.com"});
  EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(r.client().rule(), "");
  EXPECT_EQ(r.verdicts(0).reply().code(), 250u);
}

}  // namespace
}  // namespace rcptguard
