// The C++ client library against a real rcptguardd (ServerProcess):
// answers, micro-batching by identical context, splitting a batch the
// server refuses, deadlines, retries of dry lookups only, and the failure
// policy with the server stopped or silent.
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
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::client {
namespace {

using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::testing::HasSubstr;

std::string Config() {
  return absl::StrCat(
      R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" subaddress_delimiters: "+" aliases: "mail.example.com" }
domains { name: "example.org" mode: DOMAIN_MODE_MONITOR }
directory { ldif_files: ")",
      SourceDir(),
      R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
limits { max_address_length: 300 }
shutdown { grace_ms: 0 drain_timeout_ms: 500 }
)");
}

// Every test of ClientTest runs on each transport: the failure policy,
// retries and answers must not depend on it.
class ClientTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(server_.Start(Config()));
    ASSERT_TRUE(server_.WaitServing(absl::Seconds(30))) << server_.log();
  }

  std::unique_ptr<Client> Make(ClientOptions options = {}) {
    options.target = server_.target();
    options.transport = GetParam();
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  ServerProcess server_;
};

v1::SmtpContext Context(const std::string& ip) {
  v1::SmtpContext c;
  c.set_client_ip(ip);
  c.set_helo("mx.example.net");
  c.set_mail_from("sender@example.net");
  return c;
}

TEST_P(ClientTest, ValidateAnswersInOrder) {
  ClientOptions options;
  options.edge_id = "test-edge";
  auto client = Make(options);
  v1::ValidateRequest request;
  *request.mutable_context() = Context("198.51.100.1");
  for (const char* r :
       {"alice@example.com", "nobody@example.com", "x@other.example.net",
        "bad@@example.com", "nobody@example.org"}) {
    request.add_recipients(r);
  }
  absl::StatusOr<v1::ValidateResponse> response = client->ValidateSync(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->verdicts_size(), 5);
  EXPECT_EQ(response->verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
  EXPECT_EQ(response->verdicts(1).status(), v1::RECIPIENT_STATUS_UNKNOWN);
  EXPECT_EQ(response->verdicts(1).reply().code(), 550u);
  EXPECT_EQ(response->verdicts(2).status(), v1::RECIPIENT_STATUS_NOT_SERVED);
  EXPECT_EQ(response->verdicts(3).status(), v1::RECIPIENT_STATUS_MALFORMED);
  EXPECT_TRUE(response->verdicts(4).monitor_only());
  EXPECT_EQ(response->client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_FALSE(response->directory_version().empty());
  EXPECT_EQ(client->stats().calls, 1u);
}

TEST_P(ClientTest, CheckRecipientSync) {
  auto client = Make();
  RecipientResult r =
      client->CheckRecipientSync(Context("198.51.100.2"), "Bob@Example.com");
  EXPECT_EQ(r.source, RecipientResult::Source::kService);
  EXPECT_TRUE(r.error.ok());
  EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_VALID);
  EXPECT_EQ(r.batch_size, 1);
  r = client->CheckRecipientSync(Context("198.51.100.2"), "who@example.com");
  EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_UNKNOWN);
}

// Fires `n` checks at once and waits for all answers.
std::vector<RecipientResult> Burst(Client& client,
                                   const std::vector<v1::SmtpContext>& contexts,
                                   const std::vector<std::string>& recipients,
                                   CheckOptions check = {}) {
  std::vector<RecipientResult> out(recipients.size());
  absl::BlockingCounter done(static_cast<int>(recipients.size()));
  for (size_t i = 0; i < recipients.size(); ++i) {
    client.CheckRecipient(contexts[i % contexts.size()], recipients[i], check,
                          [&out, &done, i](RecipientResult r) {
                            out[i] = std::move(r);
                            done.DecrementCount();
                          });
  }
  done.Wait();
  return out;
}

TEST_P(ClientTest, IdenticalContextsAreMergedDifferentOnesNever) {
  ClientOptions options;
  options.batch_window = absl::Milliseconds(5);
  options.max_batch = 8;
  auto client = Make(options);
  std::vector<std::string> recipients;
  for (int i = 0; i < 20; ++i) {
    recipients.push_back(i % 2 == 0 ? "alice@example.com"
                                    : absl::StrCat("nope", i, "@example.com"));
  }
  // One context (a socketmap-like edge): merged, at most 8 per call.
  std::vector<RecipientResult> results =
      Burst(*client, {v1::SmtpContext()}, recipients);
  int max_batch = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_EQ(results[i].source, RecipientResult::Source::kService)
        << results[i].error;
    EXPECT_EQ(results[i].verdict.status(), i % 2 == 0
                                               ? v1::RECIPIENT_STATUS_VALID
                                               : v1::RECIPIENT_STATUS_UNKNOWN)
        << i;
    max_batch = std::max(max_batch, results[i].batch_size);
  }
  EXPECT_GT(max_batch, 1);
  EXPECT_LE(max_batch, 8);
  ClientStats stats = client->stats();
  EXPECT_EQ(stats.checks, 20u);
  EXPECT_LT(stats.calls, 20u);
  EXPECT_GT(stats.merged_checks, 0u);

  // A context per check (a policy edge: one session each): never merged.
  std::vector<v1::SmtpContext> contexts;
  for (int i = 0; i < 10; ++i) {
    contexts.push_back(Context(absl::StrCat("192.0.2.", i + 1)));
  }
  results = Burst(*client, contexts,
                  std::vector<std::string>(10, "alice@example.com"));
  for (const RecipientResult& r : results) {
    EXPECT_EQ(r.batch_size, 1);
    EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_VALID);
  }
  // batch = false sends at once even for identical contexts.
  results = Burst(*client, {Context("192.0.2.99")},
                  std::vector<std::string>(6, "alice@example.com"),
                  CheckOptions{.dry_run = false, .batch = false});
  for (const RecipientResult& r : results) EXPECT_EQ(r.batch_size, 1);
}

TEST_P(ClientTest, OneRefusedRecipientDoesNotFailItsBatch) {
  ClientOptions options;
  options.batch_window = absl::Milliseconds(5);
  auto client = Make(options);
  // The server refuses recipients over max_address_length (300) as a whole
  // request; the client asks for each alone.
  const std::string huge = std::string(400, 'a') + "@example.com";
  std::vector<RecipientResult> results =
      Burst(*client, {v1::SmtpContext()},
            {"alice@example.com", huge, "nobody@example.com"});
  EXPECT_EQ(results[0].source, RecipientResult::Source::kService);
  EXPECT_EQ(results[0].verdict.status(), v1::RECIPIENT_STATUS_VALID);
  // Refused alone, it is the recipient's fault: kInvalid, never the
  // failure policy.
  EXPECT_EQ(results[1].source, RecipientResult::Source::kInvalid);
  EXPECT_EQ(results[1].error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(results[1].error.message()),
              HasSubstr("exceeds the limit of 300"));
  EXPECT_EQ(results[2].source, RecipientResult::Source::kService);
  EXPECT_EQ(results[2].verdict.status(), v1::RECIPIENT_STATUS_UNKNOWN);
}

// Octets that are not UTF-8 never turn a check into an outage: the remote
// client's text (helo, mail_from, recipients) is sent as received, and an
// edge string field that is not UTF-8 is left out.
TEST_P(ClientTest, InvalidUtf8IsNeverAnOutage) {
  auto client = Make();
  v1::SmtpContext context = Context("198.51.100.9");
  context.set_helo("\xff");
  context.set_mail_from("x\xff@b.example");
  context.set_session_id("\xc3");
  RecipientResult r = client->CheckRecipientSync(context, "nobody@example.com");
  EXPECT_EQ(r.source, RecipientResult::Source::kService) << r.error;
  EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_UNKNOWN);
  r = client->CheckRecipientSync(context, "al\xffice@example.com");
  EXPECT_EQ(r.source, RecipientResult::Source::kService) << r.error;
  EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_MALFORMED);
  context.set_client_ip("198.51.100.\xff");
  r = client->CheckRecipientSync(context, "alice@example.com");
  EXPECT_EQ(r.source, RecipientResult::Source::kService) << r.error;
  EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_VALID);
}

TEST_P(ClientTest, ServerStoppedFailOpenOrTempfail) {
  ClientOptions open_options;
  open_options.deadline = absl::Milliseconds(300);
  auto fail_open = Make(open_options);
  ClientOptions tempfail_options = open_options;
  tempfail_options.failure_policy = FailurePolicy::kTempfail;
  auto tempfail = Make(tempfail_options);
  ASSERT_EQ(
      fail_open
          ->CheckRecipientSync(Context("198.51.100.3"), "alice@example.com")
          .source,
      RecipientResult::Source::kService);
  ASSERT_TRUE(server_.process().Stop(absl::Seconds(10)).has_value());

  const absl::Time start = absl::Now();
  RecipientResult r =
      fail_open->CheckRecipientSync(Context("198.51.100.3"), "x@example.com");
  EXPECT_EQ(r.source, RecipientResult::Source::kFailOpen);
  EXPECT_FALSE(r.error.ok());
  EXPECT_LE(absl::Now() - start, absl::Milliseconds(1500));
  r = tempfail->CheckRecipientSync(Context("198.51.100.3"), "x@example.com");
  EXPECT_EQ(r.source, RecipientResult::Source::kTempfail);
  EXPECT_FALSE(r.error.ok());
  EXPECT_GE(fail_open->stats().policy_answers, 1u);

  v1::ValidateRequest request;
  request.add_recipients("alice@example.com");
  absl::StatusOr<v1::ValidateResponse> raw = fail_open->ValidateSync(request);
  EXPECT_FALSE(raw.ok());
  EXPECT_TRUE(raw.status().code() == absl::StatusCode::kUnavailable ||
              raw.status().code() == absl::StatusCode::kDeadlineExceeded)
      << raw.status();
}

TEST_P(ClientTest, OnlyDryLookupsAreRetried) {
  ClientOptions options;
  options.deadline = absl::Seconds(2);
  options.dry_run_attempts = 3;
  options.retry_backoff = absl::Milliseconds(10);
  options.batch_window = absl::ZeroDuration();
  auto client = Make(options);
  ASSERT_TRUE(server_.process().Stop(absl::Seconds(10)).has_value());

  RecipientResult r = client->CheckRecipientSync(
      v1::SmtpContext(), "alice@example.com", CheckOptions{.dry_run = true});
  EXPECT_EQ(r.source, RecipientResult::Source::kFailOpen);
  EXPECT_EQ(r.error.code(), absl::StatusCode::kUnavailable) << r.error;
  ClientStats stats = client->stats();
  EXPECT_EQ(stats.calls, 3u);
  EXPECT_EQ(stats.retries, 2u);

  r = client->CheckRecipientSync(v1::SmtpContext(), "alice@example.com",
                                 CheckOptions{.dry_run = false});
  EXPECT_EQ(r.source, RecipientResult::Source::kFailOpen);
  EXPECT_EQ(client->stats().calls, 4u);  // one attempt, no retry
}

// A server that takes a second per call: the call must end at its
// deadline with the failure policy's answer, and the client must not wait
// for the slow handler when it goes away.
class SlowService final : public v1::RecipientValidation::Service {
 public:
  grpc::Status Validate(grpc::ServerContext* context,
                        const v1::ValidateRequest* request,
                        v1::ValidateResponse* response) override {
    for (int i = 0; i < 100 && !context->IsCancelled(); ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return grpc::Status::OK;
  }
};

TEST(ClientDeadlineTest, SlowServerEndsAtTheDeadline) {
  SlowService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", port);
  options.deadline = absl::Milliseconds(200);
  options.failure_policy = FailurePolicy::kTempfail;
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  const absl::Time start = absl::Now();
  RecipientResult r =
      (*client)->CheckRecipientSync(Context("198.51.100.4"), "a@example.com");
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.source, RecipientResult::Source::kTempfail);
  EXPECT_EQ(r.error.code(), absl::StatusCode::kDeadlineExceeded) << r.error;
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Milliseconds(900));
  client->reset();
  server->Shutdown(std::chrono::system_clock::now());
}

TEST(ClientOptionsTest, BadOptionsAreRefused) {
  ClientOptions o;
  o.deadline = absl::ZeroDuration();
  EXPECT_EQ(Client::Create(o).status().message(), "deadline: must be positive");
  o = ClientOptions();
  o.batch_window = absl::Milliseconds(20);
  EXPECT_EQ(Client::Create(o).status().message(),
            "batch_window: must be 0..10ms");
  o = ClientOptions();
  o.max_batch = 0;
  EXPECT_EQ(Client::Create(o).status().message(), "max_batch: must be 1..1000");
  o = ClientOptions();
  o.tls.cert_file = "/x.pem";
  o.tls.enabled = true;
  EXPECT_EQ(Client::Create(o).status().message(),
            "tls: cert_file and key_file go together");
  o = ClientOptions();
  o.tls.ca_file = "/x.pem";
  EXPECT_EQ(Client::Create(o).status().message(),
            "tls: CA or certificate files given but TLS is off");
  o = ClientOptions();
  o.tls.enabled = true;
  o.tls.ca_file = "/nonexistent/ca.pem";
  absl::Status s = Client::Create(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "ca_file: cannot read \"/nonexistent/ca.pem\"");
  o.tls.ca_file = SourceDir() + "/deploy/examples/README.md";
  EXPECT_EQ(Client::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = ClientOptions();
  o.tls.enabled = true;  // system roots
  EXPECT_TRUE(Client::Create(o).ok());

  EXPECT_EQ(*ParseFailurePolicy("fail_open"), FailurePolicy::kFailOpen);
  EXPECT_EQ(*ParseFailurePolicy("TEMPFAIL"), FailurePolicy::kTempfail);
  EXPECT_EQ(ParseFailurePolicy("reject").status().message(),
            "failure policy \"reject\": expected fail_open or tempfail");
}

// A lookup that waits behind a call for its context leaves at the end of
// the batch window, not when that call returns: behind a frozen server it
// gets its failure-policy answer one deadline after it was asked, not two.
TEST_P(ClientTest, BatchWindowBoundsTheWaitBehindAStuckCall) {
  ClientOptions options;
  options.deadline = absl::Milliseconds(400);
  options.batch_window = absl::Milliseconds(5);
  auto client = Make(options);
  ASSERT_EQ(
      client->CheckRecipientSync(v1::SmtpContext(), "alice@example.com").source,
      RecipientResult::Source::kService);
  ASSERT_TRUE(server_.process().Freeze());
  const absl::Time start = absl::Now();
  absl::Mutex mu;
  std::vector<absl::Duration> took(2);
  absl::BlockingCounter done(2);
  for (int i = 0; i < 2; ++i) {
    client->CheckRecipient(
        v1::SmtpContext(), "alice@example.com", {}, [&, i](RecipientResult r) {
          EXPECT_EQ(r.source, RecipientResult::Source::kFailOpen);
          absl::MutexLock lock(&mu);
          took[i] = absl::Now() - start;
          done.DecrementCount();
        });
  }
  done.Wait();
  kill(server_.process().pid(), SIGCONT);
  EXPECT_GE(took[0], absl::Milliseconds(390));
  // The second left at the end of its 5 ms window: about 405 ms; 800 if
  // it had waited for the first to fail. Slack for a loaded machine.
  EXPECT_LT(took[1], absl::Milliseconds(700));
}

TEST_P(ClientTest, DestructorAnswersPendingBatches) {
  std::atomic<int> answered{0};
  {
    ClientOptions options;
    options.batch_window = absl::Milliseconds(10);
    auto client = Make(options);
    for (int i = 0; i < 5; ++i) {
      client->CheckRecipient(
          v1::SmtpContext(), "alice@example.com", {},
          [&answered](RecipientResult r) {
            if (r.source == RecipientResult::Source::kService) {
              answered.fetch_add(1);
            }
          });
    }
  }  // ~Client sends the pending batch and waits for its answer
  EXPECT_EQ(answered.load(), 5);
}

TEST_P(ClientTest, ConcurrentCallersFromManyThreads) {
  ClientOptions options;
  options.batch_window = absl::Microseconds(300);
  auto client = Make(options);
  std::atomic<int> valid{0}, unknown{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        RecipientResult r = client->CheckRecipientSync(
            v1::SmtpContext(),
            i % 3 == 0 ? "alice@example.com"
                       : absl::StrCat("t", t, "n", i, "@example.com"));
        if (r.source != RecipientResult::Source::kService) {
          other.fetch_add(1);
        } else if (r.verdict.status() == v1::RECIPIENT_STATUS_VALID) {
          valid.fetch_add(1);
        } else {
          unknown.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(valid.load(), 8 * 67);
  EXPECT_EQ(unknown.load(), 8 * 133);
}

INSTANTIATE_TEST_SUITE_P(Transports, ClientTest,
                         ::testing::Values(Transport::kUnary,
                                           Transport::kStream,
                                           Transport::kBatchStream),
                         [](const ::testing::TestParamInfo<Transport>& info) {
                           return std::string(TransportName(info.param));
                         });

}  // namespace
}  // namespace rcptguard::client
