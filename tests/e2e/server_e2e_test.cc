// End-to-end: the real rcptguardd binary, started on port 0 with the bundled
// sample LDIF, asked over gRPC (Validate, ValidateStream, Health, Admin).
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/adapter_process.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::grpc::health::v1::HealthCheckResponse;
using ::rcptguard::testing::BinaryDir;
using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::rcptguard::testing::Subprocess;
using ::rcptguard::testing::WaitForFile;
using ::rcptguard::testing::WriteFile;
using ::testing::HasSubstr;

std::string SampleConfig(const std::string& ldif, int grace_ms) {
  return absl::StrCat(R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" subaddress_delimiters: "+" aliases: "mail.example.com" }
domains { name: "example.org" mode: DOMAIN_MODE_MONITOR }
directory { ldif_files: ")",
                      ldif, R"(" preset: "ad" stale_after: "0s" }
limits { max_recipients_per_request: 50 }
shutdown { grace_ms: )",
                      grace_ms, R"( drain_timeout_ms: 5000 }
)");
}

v1::ValidateRequest SampleRequest(uint64_t id) {
  v1::ValidateRequest request;
  request.set_request_id(id);
  // One client per request id: these tests are about lookups, and repeated
  // unknown recipients from one client would (rightly) trip harvest rules.
  request.mutable_context()->set_client_ip(
      absl::StrCat("10.", id % 256, ".", (id / 256) % 256, ".1"));
  request.mutable_context()->set_mail_from("sender@remote.example.net");
  request.mutable_context()->set_edge_id("edge-1");
  for (const char* r :
       {"alice@example.com", "<Bob@EXAMPLE.COM>", "nobody-here@example.com",
        "someone@elsewhere.example.net", "not an address",
        "alice+news@example.com", "alice@mail.example.com",
        "postmaster@example.org", "nobody-here@example.org", "info@example.com",
        "carol.former@example.com"}) {
    request.add_recipients(r);
  }
  return request;
}

void ExpectSampleVerdicts(const v1::ValidateResponse& response, uint64_t id) {
  EXPECT_EQ(response.request_id(), id);
  EXPECT_FALSE(response.directory_version().empty());
  ASSERT_EQ(response.verdicts_size(), 11);
  auto status = [&](int i) { return response.verdicts(i).status(); };
  auto code = [&](int i) { return response.verdicts(i).reply().code(); };
  EXPECT_EQ(status(0), v1::RECIPIENT_STATUS_VALID);
  EXPECT_EQ(code(0), 250u);
  EXPECT_EQ(response.verdicts(0).reply().enhanced_status(), "2.1.5");
  EXPECT_EQ(status(1), v1::RECIPIENT_STATUS_VALID);
  EXPECT_EQ(status(2), v1::RECIPIENT_STATUS_UNKNOWN);
  EXPECT_EQ(code(2), 550u);
  EXPECT_EQ(response.verdicts(2).reply().enhanced_status(), "5.1.1");
  EXPECT_EQ(status(3), v1::RECIPIENT_STATUS_NOT_SERVED);
  EXPECT_EQ(code(3), 554u);
  EXPECT_EQ(response.verdicts(3).reply().enhanced_status(), "5.7.1");
  EXPECT_EQ(status(4), v1::RECIPIENT_STATUS_MALFORMED);
  EXPECT_EQ(code(4), 501u);
  EXPECT_EQ(response.verdicts(4).reply().enhanced_status(), "5.1.3");
  EXPECT_FALSE(response.verdicts(4).detail().empty());
  EXPECT_EQ(status(5), v1::RECIPIENT_STATUS_VALID) << "subaddress";
  EXPECT_EQ(status(6), v1::RECIPIENT_STATUS_VALID) << "alias domain";
  EXPECT_EQ(status(7), v1::RECIPIENT_STATUS_VALID) << "postmaster";
  // MONITOR domain: reported unknown, accepted.
  EXPECT_EQ(status(8), v1::RECIPIENT_STATUS_UNKNOWN);
  EXPECT_EQ(code(8), 250u);
  EXPECT_TRUE(response.verdicts(8).monitor_only());
  EXPECT_EQ(status(9), v1::RECIPIENT_STATUS_VALID) << "shared mailbox";
  EXPECT_EQ(status(10), v1::RECIPIENT_STATUS_UNKNOWN) << "disabled account";
  EXPECT_EQ(response.client().action(), v1::CLIENT_ACTION_ACCEPT);
}

std::string SampleLdif() {
  return SourceDir() + "/deploy/examples/sample.ldif";
}

TEST(ServerE2eTest, ValidateAnswersEveryStatus) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(SampleConfig(SampleLdif(), 0)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();

  auto stub = v1::RecipientValidation::NewStub(server.channel());
  grpc::ClientContext ctx;
  v1::ValidateResponse response;
  grpc::Status status = stub->Validate(&ctx, SampleRequest(7), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ExpectSampleVerdicts(response, 7);
}

// Starts rcptguardd on the sample directory and waits until it serves.
void StartOnSample(ServerProcess& server) {
  ASSERT_NO_FATAL_FAILURE(server.Start(SampleConfig(SampleLdif(), 0)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
}

// Reads the answers to SampleRequest(first) .. SampleRequest(last), in order.
template <typename Stream>
void ExpectSampleAnswers(Stream& stream, uint64_t first, uint64_t last) {
  for (uint64_t id = first; id <= last; ++id) {
    v1::ValidateResponse response;
    ASSERT_TRUE(stream.Read(&response)) << "answer " << id;
    ExpectSampleVerdicts(response, id);
  }
}

TEST(ServerE2eTest, ValidateStreamAnswersInOrderWithRequestIds) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(StartOnSample(server));
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  grpc::ClientContext ctx;
  auto stream = stub->ValidateStream(&ctx);
  for (uint64_t id = 100; id < 110; ++id) {
    ASSERT_TRUE(stream->Write(SampleRequest(id)));
    v1::ValidateResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ExpectSampleVerdicts(response, id);
  }
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// A client may send many requests before reading any answer (pipelining):
// all are answered, in order, also past the server's queue of 64 answers
// (reading pauses, then resumes as the client reads).
TEST(ServerE2eTest, ValidateStreamAnswersPipelinedRequestsInOrder) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(StartOnSample(server));
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  grpc::ClientContext ctx;
  auto stream = stub->ValidateStream(&ctx);
  constexpr uint64_t kRequests = 400;
  std::thread writer([&stream] {
    for (uint64_t id = 1; id <= kRequests; ++id) {
      if (!stream->Write(SampleRequest(id))) return;
    }
    stream->WritesDone();
  });
  // Let the server run ahead of the reader, up to its queue bound.
  absl::SleepFor(absl::Milliseconds(300));
  ExpectSampleAnswers(*stream, 1, kRequests);
  // On a failed read the writer may be blocked: cancel, so it can be joined.
  if (HasFatalFailure()) ctx.TryCancel();
  writer.join();
  if (HasFatalFailure()) return;
  v1::ValidateResponse extra;
  EXPECT_FALSE(stream->Read(&extra));
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// A refused request in a pipeline: the answers before it arrive, then the
// stream ends with its error, naming it; nothing after it is answered.
TEST(ServerE2eTest, ValidateStreamRefusalEndsThePipelineAfterEarlierAnswers) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(StartOnSample(server));
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  grpc::ClientContext ctx;
  auto stream = stub->ValidateStream(&ctx);
  for (uint64_t id = 1; id <= 5; ++id) {
    ASSERT_TRUE(stream->Write(SampleRequest(id)));
  }
  v1::ValidateRequest too_many;
  too_many.set_request_id(6);
  for (int i = 0; i < 51; ++i) too_many.add_recipients("alice@example.com");
  ASSERT_TRUE(stream->Write(too_many));
  // Written after the refused one; the server may or may not have read it,
  // but never answers it.
  stream->Write(SampleRequest(7));
  stream->WritesDone();
  ASSERT_NO_FATAL_FAILURE(ExpectSampleAnswers(*stream, 1, 5));
  v1::ValidateResponse none;
  EXPECT_FALSE(stream->Read(&none));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "request_id 6: recipients: 51 exceeds the limit of 50 per request");
}

TEST(ServerE2eTest, OverLimitRequestIsInvalidArgument) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(SampleConfig(SampleLdif(), 0)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  auto stub = v1::RecipientValidation::NewStub(server.channel());

  v1::ValidateRequest request;
  for (int i = 0; i < 51; ++i) request.add_recipients("alice@example.com");
  grpc::ClientContext ctx;
  v1::ValidateResponse response;
  grpc::Status status = stub->Validate(&ctx, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "recipients: 51 exceeds the limit of 50 per request");

  v1::ValidateRequest long_address;
  long_address.add_recipients(std::string(2000, 'a') + "@example.com");
  grpc::ClientContext ctx2;
  status = stub->Validate(&ctx2, long_address, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "recipients[0]: 2012 octets exceeds the limit of 1024");

  // The server keeps serving after bad requests.
  grpc::ClientContext ctx3;
  status = stub->Validate(&ctx3, SampleRequest(1), &response);
  EXPECT_TRUE(status.ok());
}

TEST(ServerE2eTest, AdminStatusDescribesTheDirectory) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(SampleConfig(SampleLdif(), 0)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  auto stub = v1::Admin::NewStub(server.channel());
  grpc::ClientContext ctx;
  v1::GetStatusResponse response;
  grpc::Status status =
      stub->GetStatus(&ctx, v1::GetStatusRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.serving());
  EXPECT_THAT(response.source(), HasSubstr("sample.ldif"));
  EXPECT_GT(response.total_addresses(), 100u);
  ASSERT_EQ(response.domains_size(), 2);
  EXPECT_EQ(response.domains(0).name(), "example.com");
  EXPECT_EQ(response.domains(0).mode(), v1::DOMAIN_MODE_ENFORCE);
  EXPECT_EQ(response.domains(1).mode(), v1::DOMAIN_MODE_MONITOR);
  EXPECT_EQ(response.domains(0).addresses() + response.domains(1).addresses(),
            response.total_addresses());
  EXPECT_GT(response.load().disabled_entries(), 0u);
  // The sample lists addresses in the alias domain mail.example.com too:
  // counted, shown and logged (issue 17), not silently folded.
  ASSERT_EQ(response.load().alias_domain_addresses_size(), 1);
  EXPECT_EQ(response.load().alias_domain_addresses(0).alias(),
            "mail.example.com");
  EXPECT_EQ(response.load().alias_domain_addresses(0).target(), "example.com");
  const uint64_t folded = response.load().alias_domain_addresses(0).addresses();
  EXPECT_GT(folded, 0u);
  EXPECT_THAT(server.log(), HasSubstr(absl::StrCat(
                                "event=alias_domain_has_explicit_addresses"
                                " alias=mail.example.com target=example.com"
                                " addresses=",
                                folded, " ")));
}

// A large generated LDIF keeps the load busy long enough to observe health
// NOT_SERVING before SERVING; SIGTERM then turns it NOT_SERVING again while
// an open stream is still answered, and the process exits cleanly.
TEST(ServerE2eTest, HealthTransitionsAndGracefulDrain) {
  const std::string dir = MakeTempDir("rg-e2e-big");
  const std::string ldif = dir + "/big.ldif";
  {
    std::string text = "version: 1\n\n";
    text.reserve(60 << 20);
    for (int i = 0; i < 400000; ++i) {
      absl::StrAppend(&text, "dn: CN=user", i, ",OU=Users,DC=example,DC=com\n",
                      "objectClass: user\nuserAccountControl: 512\n",
                      "proxyAddresses: SMTP:user", i, "@example.com\n",
                      "proxyAddresses: smtp:u", i, "@example.org\n\n");
    }
    ASSERT_TRUE(WriteFile(ldif, text).ok());
  }
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(SampleConfig(ldif, 3000)));
  EXPECT_EQ(server.Health(), HealthCheckResponse::NOT_SERVING)
      << "health must not be SERVING before the directory is loaded";
  ASSERT_TRUE(server.WaitServing(absl::Seconds(120))) << server.log();

  auto stub = v1::RecipientValidation::NewStub(server.channel());
  grpc::ClientContext ctx;
  auto stream = stub->ValidateStream(&ctx);
  v1::ValidateRequest request;
  request.set_request_id(1);
  request.add_recipients("user123@example.com");
  v1::ValidateResponse response;
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);

  server.process().Signal(SIGTERM);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(server.Health(), HealthCheckResponse::NOT_SERVING);
  // The open stream is still answered during the drain.
  request.set_request_id(2);
  request.set_recipients(0, "u399999@example.org");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.request_id(), 2u);
  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  std::optional<int> exit_status = server.process().Wait(absl::Seconds(15));
  ASSERT_TRUE(exit_status.has_value()) << "did not exit within the drain";
  EXPECT_TRUE(WIFEXITED(*exit_status));
  EXPECT_EQ(WEXITSTATUS(*exit_status), 0);
  EXPECT_THAT(server.log(), HasSubstr("event=draining"));
}

// limits.idle_timeout closes connections that carry no call, whether they
// never sent a byte or went quiet after a call; other clients are served.
TEST(ServerE2eTest, IdleConnectionsAreClosed) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(absl::StrReplaceAll(
      SampleConfig(SourceDir() + "/deploy/examples/sample.ldif", 0),
      {{"limits {", "limits { idle_timeout: \"1s\""}})));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  // A TCP connection that never speaks.
  testing::RawConnection silent(server.port(), /*timeout_seconds=*/15);
  ASSERT_TRUE(silent.connected());
  const absl::Time start = absl::Now();
  EXPECT_TRUE(silent.DrainedToClose());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  // A channel that made one call and then stays quiet goes back to IDLE
  // once the server closes its connection.
  auto channel = server.NewChannel();
  v1::ValidateRequest request;
  request.add_recipients("alice@example.com");
  request.set_dry_run(true);
  v1::ValidateResponse response;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(v1::RecipientValidation::NewStub(channel)
                    ->Validate(&ctx, request, &response)
                    .ok());
  }
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (channel->GetState(false) == GRPC_CHANNEL_READY &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(channel->GetState(false), GRPC_CHANNEL_IDLE);
  // A new call reconnects and is answered.
  grpc::ClientContext ctx;
  EXPECT_TRUE(v1::RecipientValidation::NewStub(channel)
                  ->Validate(&ctx, request, &response)
                  .ok());
}

// limits.max_connection_age sends busy connections away too (that is what
// moves edges to replicas added later): a stream open past the age and its
// grace ends, and the same channel reconnects for the next call.
TEST(ServerE2eTest, OldConnectionsAreSentAwayAfterTheirGrace) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(absl::StrReplaceAll(
      SampleConfig(SourceDir() + "/deploy/examples/sample.ldif", 0),
      {{"limits {",
        "limits { max_connection_age: \"1s\" "
        "max_connection_age_grace: \"1s\""}})));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  auto channel = server.NewChannel();
  auto stub = v1::RecipientValidation::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto stream = stub->ValidateStream(&ctx);
  v1::ValidateRequest request;
  request.set_request_id(1);
  request.set_dry_run(true);
  request.add_recipients("alice@example.com");
  v1::ValidateResponse response;
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  const absl::Time start = absl::Now();
  // No more writes: the stream stays open until the server ends it (the
  // age is 1s +-10% jitter, then 1s of grace).
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status ended = stream->Finish();
  EXPECT_FALSE(ended.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << ended.error_message();
  grpc::ClientContext again;
  v1::ValidateRequest unary;
  unary.set_dry_run(true);
  unary.add_recipients("alice@example.com");
  EXPECT_TRUE(stub->Validate(&again, unary, &response).ok());
  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
}

TEST(ServerE2eTest, BadConfigExitsNamingTheField) {
  const std::string dir = MakeTempDir("rg-e2e-bad");
  const std::string config = dir + "/bad.textproto";
  ASSERT_TRUE(
      WriteFile(config, absl::StrReplaceAll(SampleConfig(SampleLdif(), 0),
                                            {{"name: \"example.org\"",
                                              "name: \"exa mple.org\""}}))
          .ok());
  std::string output;
  auto status = testing::RunCommand(
      {BinaryDir() + "/server/rcptguardd", "--config=" + config}, &output);
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_THAT(output, HasSubstr("invalid configuration"));
  EXPECT_THAT(output, HasSubstr("domains[1].name"));

  ASSERT_TRUE(WriteFile(config, "domains { nam: \"x\" }").ok());
  status = testing::RunCommand(
      {BinaryDir() + "/server/rcptguardd", "--config=" + config}, &output);
  ASSERT_TRUE(status.ok());
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_THAT(output, HasSubstr("bad.textproto:1:"));
  EXPECT_THAT(output, HasSubstr("nam"));
}

TEST(ServerE2eTest, CliChecksAndReportsStatus) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(SampleConfig(SampleLdif(), 0)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  const std::string port = ReadFile(server.dir() + "/port");
  const std::string target =
      absl::StrCat("--server=127.0.0.1:", std::stoi(port));
  std::string output;
  // Flags may be spelled with dashes as in the docs (--client-ip).
  auto status = testing::RunCommand(
      {BinaryDir() + "/clients/rcptguard", "check", "alice@example.com",
       "nobody-here@example.com", target, "--client-ip=192.0.2.55"},
      &output);
  ASSERT_TRUE(status.ok());
  // Like `postmap -q`: 1 when a recipient is not found.
  EXPECT_EQ(WEXITSTATUS(*status), 1) << output;
  EXPECT_THAT(output, HasSubstr("alice@example.com\tVALID\t250 2.1.5"));
  EXPECT_THAT(output, HasSubstr("nobody-here@example.com\tUNKNOWN\t550 5.1.1"));

  status = testing::RunCommand(
      {BinaryDir() + "/clients/rcptguard", "status", target}, &output);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(WEXITSTATUS(*status), 0) << output;
  EXPECT_THAT(output, HasSubstr("example.com"));
  EXPECT_THAT(output, HasSubstr("monitor"));

  status = testing::RunCommand(
      {BinaryDir() + "/clients/rcptguard", "health", target}, &output);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(WEXITSTATUS(*status), 0) << output;
  EXPECT_THAT(output, HasSubstr("SERVING"));
}

}  // namespace
}  // namespace rcptguard
