// The stream transports of the C++ client library and the server's
// ValidateBatchStream against a real rcptguardd: group commit across SMTP
// sessions without mixing clients, each request of a batch judged as a
// unary Validate would judge it, and the failure policy when the server
// restarts mid-stream, freezes (SIGSTOP: the client's per-request deadline,
// then the policy for everything pending) or drains on SIGTERM.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clients/cpp/client.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::client {
namespace {

using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::testing::HasSubstr;

std::string Config(const std::string& listen = "127.0.0.1:0",
                   int drain_timeout_ms = 500) {
  return absl::StrCat(R"(
listen_address: ")",
                      listen, R"("
domains { name: "example.com" subaddress_delimiters: "+" }
directory { ldif_files: ")",
                      SourceDir(),
                      R"(/deploy/examples/sample.ldif" preset: "ad" }
limits { max_address_length: 300 }
shutdown { grace_ms: 0 drain_timeout_ms: )",
                      drain_timeout_ms, R"( }
harvest {
  rules { name: "block" scopes: "v4/32" window: "10m" min_unknown: 6
          action: HARVEST_ACTION_REJECT penalty_duration: "1h" }
}
)");
}

v1::SmtpContext Context(const std::string& ip) {
  v1::SmtpContext c;
  c.set_client_ip(ip);
  c.set_helo("mx.example.net");
  c.set_mail_from("sender@example.net");
  return c;
}

std::unique_ptr<Client> Make(const std::string& target,
                             ClientOptions options = {}) {
  options.target = target;
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(options);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

// One check of a valid recipient from `ip`, answered by the server (not
// by the failure policy).
bool AnsweredByServer(Client& client, const std::string& ip) {
  return client.CheckRecipientSync(Context(ip), "alice@example.com").source ==
         RecipientResult::Source::kService;
}

// Starts every check at once (policy-style: no identical-context merging)
// and waits for all answers.
std::vector<RecipientResult> Burst(
    Client& client,
    const std::vector<std::pair<v1::SmtpContext, std::string>>& checks) {
  std::vector<RecipientResult> out(checks.size());
  absl::BlockingCounter done(static_cast<int>(checks.size()));
  for (size_t i = 0; i < checks.size(); ++i) {
    client.CheckRecipient(checks[i].first, checks[i].second,
                          CheckOptions{.dry_run = false, .batch = false},
                          [&out, &done, i](RecipientResult r) {
                            out[i] = std::move(r);
                            done.DecrementCount();
                          });
  }
  done.Wait();
  return out;
}

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(server_.Start(Config()));
    ASSERT_TRUE(server_.WaitServing(absl::Seconds(30))) << server_.log();
  }
  ServerProcess server_;
};

// Lookups of a harvester and of eight ordinary clients leave in shared
// stream messages; the harvester is blocked on its own unknown recipients
// and nobody else is blamed for them.
TEST_F(StreamTest, GroupCommitAcrossClientsKeepsEachClientsVerdict) {
  auto client = Make(server_.target());
  std::vector<std::pair<v1::SmtpContext, std::string>> checks;
  for (int i = 0; i < 8; ++i) {
    checks.push_back(
        {Context("203.0.113.66"), absl::StrCat("guess", i, "@example.com")});
    checks.push_back(
        {Context(absl::StrCat("198.51.100.", i + 1)), "alice@example.com"});
  }
  std::vector<RecipientResult> results = Burst(*client, checks);
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_EQ(results[i].source, RecipientResult::Source::kService)
        << results[i].error;
    EXPECT_EQ(results[i].batch_size, 1);  // one recipient per request
    if (i % 2 == 1) {
      EXPECT_EQ(results[i].verdict.status(), v1::RECIPIENT_STATUS_VALID);
      EXPECT_EQ(results[i].client.action(), v1::CLIENT_ACTION_ACCEPT) << i;
    }
  }
  const ClientStats stats = client->stats();
  EXPECT_EQ(stats.calls, 16u);
  EXPECT_EQ(stats.streams, 1u);
  EXPECT_LT(stats.stream_messages, stats.calls);  // requests were grouped

  RecipientResult harvester =
      client->CheckRecipientSync(Context("203.0.113.66"), "alice@example.com");
  ASSERT_EQ(harvester.source, RecipientResult::Source::kService);
  EXPECT_EQ(harvester.client.action(), v1::CLIENT_ACTION_REJECT);
  EXPECT_EQ(harvester.client.rule(), "block");
  for (int i = 0; i < 8; ++i) {
    RecipientResult r = client->CheckRecipientSync(
        Context(absl::StrCat("198.51.100.", i + 1)), "alice@example.com");
    EXPECT_EQ(r.client.action(), v1::CLIENT_ACTION_ACCEPT) << i;
  }
}

// Each request of a ValidateBatchStream message gets exactly the answer a
// unary Validate gives it (dry lookups: the answers are then repeatable),
// and a refused request gets its own error while the others are answered
// and the stream goes on.
TEST_F(StreamTest, BatchRequestsAreJudgedAsUnaryCalls) {
  auto stub = v1::RecipientValidation::NewStub(server_.channel());
  std::vector<v1::ValidateRequest> requests;
  for (const char* r :
       {"alice@example.com", "nobody@example.com", "x@other.example.net",
        "bad@@example.com", "alice+tag@example.com"}) {
    v1::ValidateRequest q;
    q.set_request_id(requests.size() + 7);
    *q.mutable_context() = Context("192.0.2.10");
    q.add_recipients(r);
    q.add_recipients("nobody2@example.com");
    q.set_dry_run(true);
    requests.push_back(q);
  }
  v1::ValidateRequest too_long = requests[0];
  too_long.set_recipients(0, std::string(400, 'a') + "@example.com");
  v1::ValidateRequest bad_utf8 = requests[0];
  bad_utf8.mutable_context()->set_session_id("\xc3");

  grpc::ClientContext ctx;
  auto stream = stub->ValidateBatchStream(&ctx);
  v1::ValidateBatchRequest batch;
  batch.set_batch_id(42);
  for (const auto& q : requests) *batch.add_requests() = q;
  *batch.add_requests() = too_long;
  *batch.add_requests() = bad_utf8;
  ASSERT_TRUE(stream->Write(batch));
  v1::ValidateBatchResponse answer;
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.batch_id(), 42u);
  ASSERT_EQ(answer.results_size(), static_cast<int>(requests.size()) + 2);
  for (size_t i = 0; i < requests.size(); ++i) {
    grpc::ClientContext unary_ctx;
    v1::ValidateResponse unary;
    ASSERT_TRUE(stub->Validate(&unary_ctx, requests[i], &unary).ok());
    ASSERT_TRUE(answer.results(i).has_response()) << i;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        answer.results(i).response(), unary))
        << i << ": " << answer.results(i).response().DebugString() << " vs "
        << unary.DebugString();
  }
  const v1::ValidateBatchResult& refused = answer.results(5);
  ASSERT_TRUE(refused.has_error());
  EXPECT_EQ(refused.error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error().message(), HasSubstr("exceeds the limit of 300"));
  const v1::ValidateBatchResult& unparsable = answer.results(6);
  ASSERT_TRUE(unparsable.has_error());
  EXPECT_EQ(unparsable.error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(unparsable.error().message(),
            "not a valid rcptguard.v1.ValidateRequest: context.session_id: "
            "not valid UTF-8");

  // The stream goes on; a message over the request limit ends it.
  batch.set_batch_id(43);
  ASSERT_TRUE(stream->Write(batch));
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.batch_id(), 43u);
  v1::ValidateBatchRequest huge;
  for (int i = 0; i < 1001; ++i) *huge.add_requests() = requests[0];
  stream->Write(huge);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&answer));
  grpc::Status end = stream->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(end.error_message(),
            "message 3 of the stream: ValidateBatchRequest.requests: more "
            "than 1000 requests in one message");
}

// A request the server refuses (over max_address_length) among others in
// flight on the same stream: it alone is answered kInvalid. On
// ValidateStream the refusal ends the stream, and the requests written
// after it, never read by the server, are sent again on a new one.
TEST_F(StreamTest, RefusedRequestIsOnlyItsOwnProblem) {
  for (Transport transport : {Transport::kStream, Transport::kBatchStream}) {
    ClientOptions options;
    options.transport = transport;
    auto client = Make(server_.target(), options);
    std::vector<std::pair<v1::SmtpContext, std::string>> checks;
    for (int i = 0; i < 12; ++i) {
      checks.push_back(
          {Context(absl::StrCat("198.51.100.", 40 + i)),
           i == 3 ? std::string(400, 'a') + "@example.com"
                  : (i % 2 == 0 ? "alice@example.com" : "nobody@example.com")});
    }
    std::vector<RecipientResult> results = Burst(*client, checks);
    for (size_t i = 0; i < results.size(); ++i) {
      if (i == 3) {
        EXPECT_EQ(results[i].source, RecipientResult::Source::kInvalid);
        EXPECT_THAT(std::string(results[i].error.message()),
                    HasSubstr("exceeds the limit of 300"));
        continue;
      }
      ASSERT_EQ(results[i].source, RecipientResult::Source::kService)
          << TransportName(transport) << " " << i << " " << results[i].error;
      EXPECT_EQ(results[i].verdict.status(),
                i % 2 == 0 ? v1::RECIPIENT_STATUS_VALID
                           : v1::RECIPIENT_STATUS_UNKNOWN);
    }
    EXPECT_EQ(client->stats().policy_answers, 0u);
  }
}

// The server goes away with the stream open and comes back on the same
// port: checks meanwhile get the failure policy quickly, and once it is
// back the client opens a new stream by itself.
TEST(StreamRestartTest, ServerRestartMidStream) {
  ServerProcess first;
  ASSERT_NO_FATAL_FAILURE(first.Start(Config()));
  ASSERT_TRUE(first.WaitServing(absl::Seconds(30))) << first.log();
  const std::string target = first.target();
  ClientOptions options;
  options.deadline = absl::Milliseconds(400);
  options.max_reconnect_backoff = absl::Milliseconds(200);
  auto client = Make(target, options);
  ASSERT_TRUE(AnsweredByServer(*client, "198.51.100.3"));
  ASSERT_TRUE(first.process().Stop(absl::Seconds(10)).has_value());

  const absl::Time start = absl::Now();
  RecipientResult r =
      client->CheckRecipientSync(Context("198.51.100.3"), "alice@example.com");
  EXPECT_EQ(r.source, RecipientResult::Source::kFailOpen);
  // The deadline (400 ms) bounds it; slack for a loaded test machine.
  EXPECT_LE(absl::Now() - start, absl::Milliseconds(1500));

  ServerProcess second;
  ASSERT_NO_FATAL_FAILURE(
      second.Start(Config(absl::StrCat("127.0.0.1:", first.port()))));
  ASSERT_TRUE(second.WaitServing(absl::Seconds(30))) << second.log();
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    back = AnsweredByServer(*client, "198.51.100.3");
    if (!back) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(back);
  EXPECT_GE(client->stats().streams, 2u);
}

// The server restarts while the stream is idle: the client sees the
// stream end at once (not on its next lookup), so the first lookup after
// the restart opens a new stream and gets a real answer. (With one
// message in flight, each message and its answer travel as one round
// trip with no read standing between lookups: Finish, posted when the
// stream starts, is what notices the end.)
TEST(StreamRestartTest, RestartWhileIdleLosesNoLookup) {
  ServerProcess first;
  ASSERT_NO_FATAL_FAILURE(first.Start(Config()));
  ASSERT_TRUE(first.WaitServing(absl::Seconds(30))) << first.log();
  ClientOptions options;
  options.deadline = absl::Seconds(5);
  auto client = Make(first.target(), options);
  ASSERT_TRUE(AnsweredByServer(*client, "198.51.100.4"));
  ASSERT_TRUE(first.process().Stop(absl::Seconds(10)).has_value());
  absl::SleepFor(absl::Milliseconds(300));  // the client notices the end

  ServerProcess second;
  ASSERT_NO_FATAL_FAILURE(
      second.Start(Config(absl::StrCat("127.0.0.1:", first.port()))));
  ASSERT_TRUE(second.WaitServing(absl::Seconds(30))) << second.log();
  RecipientResult r =
      client->CheckRecipientSync(Context("198.51.100.4"), "alice@example.com");
  EXPECT_EQ(r.source, RecipientResult::Source::kService) << r.error;
  EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_VALID);
  EXPECT_EQ(client->stats().streams, 2u);
}

// A frozen server (SIGSTOP) keeps its connection open but answers
// nothing: every pending check ends at its deadline with the failure
// policy, the stream is cancelled, and after SIGCONT answers flow again.
TEST_F(StreamTest, FrozenServerDeadlineThenFailurePolicy) {
  ClientOptions options;
  options.deadline = absl::Milliseconds(300);
  options.failure_policy = FailurePolicy::kTempfail;
  auto client = Make(server_.target(), options);
  ASSERT_TRUE(AnsweredByServer(*client, "198.51.100.5"));
  ASSERT_TRUE(server_.process().Freeze());
  const absl::Time start = absl::Now();
  std::vector<std::pair<v1::SmtpContext, std::string>> checks;
  for (int i = 0; i < 6; ++i) {
    checks.push_back(
        {Context(absl::StrCat("198.51.100.", 10 + i)), "alice@example.com"});
  }
  std::vector<RecipientResult> results = Burst(*client, checks);
  const absl::Duration took = absl::Now() - start;
  kill(server_.process().pid(), SIGCONT);
  for (const RecipientResult& r : results) {
    EXPECT_EQ(r.source, RecipientResult::Source::kTempfail);
    EXPECT_EQ(r.error.code(), absl::StatusCode::kDeadlineExceeded) << r.error;
  }
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Milliseconds(2000));  // slack for a loaded machine
  EXPECT_GE(client->stats().stream_cancels, 1u);

  RecipientResult after =
      client->CheckRecipientSync(Context("198.51.100.5"), "alice@example.com");
  EXPECT_EQ(after.source, RecipientResult::Source::kService) << after.error;
}

// rcptguardd drains on SIGTERM: checks on the open stream are answered
// (by the server, or by the failure policy once it is gone), none waits
// past its deadline, and the server exits long before its drain timeout
// (10 s): the client half-closes its idle stream once the server's GOAWAY
// makes the channel leave READY.
TEST(StreamDrainTest, ServerDrainsOnSigterm) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config("127.0.0.1:0", 10000)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  ClientOptions options;
  options.deadline = absl::Milliseconds(300);
  auto client = Make(server.target(), options);
  ASSERT_TRUE(AnsweredByServer(*client, "198.51.100.7"));
  server.process().Signal(SIGTERM);
  const absl::Time start = absl::Now();
  std::optional<int> exit;
  int service = 0, policy = 0;
  absl::Duration slowest;
  while (absl::Now() - start < absl::Milliseconds(1500)) {
    const absl::Time t = absl::Now();
    RecipientResult r = client->CheckRecipientSync(Context("198.51.100.7"),
                                                   "alice@example.com");
    slowest = std::max(slowest, absl::Now() - t);
    if (r.source == RecipientResult::Source::kService) {
      EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_VALID);
      ++service;
    } else {
      EXPECT_EQ(r.source, RecipientResult::Source::kFailOpen);
      ++policy;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  // The deadline (300 ms, checked every 30 ms) bounds every check; slack
  // for a loaded machine.
  EXPECT_LE(slowest, absl::Milliseconds(1200));
  EXPECT_GT(policy, 0) << service << " answered";  // the server is gone
  exit = server.process().Wait(absl::Seconds(8));
  ASSERT_TRUE(exit.has_value());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << server.log();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << server.log();
}

}  // namespace
}  // namespace rcptguard::client
