// The API additions of the edge contract (docs/edges.md) against a real
// rcptguardd: GetServedDomains, ClientVerdict.harvest_skipped, the delay cap
// (ValidateRequest.max_delay_ms), `draining` on answers once SIGTERM came,
// and server reflection v1 beside v1alpha.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

namespace rv1 = ::grpc::reflection::v1;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsSupersetOf;

std::string Config(const std::string& extra = "") {
  return absl::StrCat(R"(listen_address: "127.0.0.1:0"
domains { name: "example.com" aliases: "mail.example.com" }
domains { name: "example.org" mode: DOMAIN_MODE_MONITOR }
directory { ldif_files: ")",
                      SourceDir(),
                      R"(/deploy/examples/sample.ldif" preset: "ad" }
)",
                      extra);
}

void Deadline(grpc::ClientContext& ctx, int seconds = 10) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(seconds));
}

TEST(EdgeContractE2eTest, ServedDomainsListNamesAliasesAndModes) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config()));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  grpc::ClientContext ctx;
  Deadline(ctx);
  v1::ServedDomains answer;
  grpc::Status s = v1::RecipientValidation::NewStub(server.channel())
                       ->GetServedDomains(&ctx, {}, &answer);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(answer.domains_size(), 2);
  EXPECT_EQ(answer.domains(0).name(), "example.com");
  EXPECT_THAT(answer.domains(0).aliases(), ElementsAre("mail.example.com"));
  EXPECT_FALSE(answer.domains(0).monitor());
  EXPECT_EQ(answer.domains(1).name(), "example.org");
  EXPECT_TRUE(answer.domains(1).monitor());
  EXPECT_FALSE(answer.directory_version().empty());
  EXPECT_FALSE(answer.stale());
}

TEST(EdgeContractE2eTest, HarvestSkippedAndDelayCap) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config(R"(harvest {
  rules { name: "tarpit" scopes: "v4/32" window: "10m" min_unknown: 1
          action: HARVEST_ACTION_TARPIT base_delay: "20s" factor: 1 max_delay: "20s" }
})")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  auto ask = [&](const std::string& ip, uint32_t max_delay_ms) {
    v1::ValidateRequest request;
    request.mutable_context()->set_client_ip(ip);
    request.mutable_context()->set_mail_from("<s@sender.example>");
    request.set_max_delay_ms(max_delay_ms);
    request.add_recipients("nobody@example.com");
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::ValidateResponse response;
    grpc::Status s = stub->Validate(&ctx, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.client();
  };
  EXPECT_EQ(ask("", 0).harvest_skipped(), v1::HARVEST_SKIP_NO_CLIENT_IP);
  EXPECT_EQ(ask("192.0.2.300", 0).harvest_skipped(),
            v1::HARVEST_SKIP_UNPARSABLE_CLIENT_IP);
  const v1::ClientVerdict capped = ask("192.0.2.1", 2500);
  EXPECT_EQ(capped.harvest_skipped(), v1::HARVEST_SKIP_UNSPECIFIED);
  EXPECT_EQ(capped.action(), v1::CLIENT_ACTION_TARPIT);
  EXPECT_EQ(capped.delay_ms(), 2500u);
  EXPECT_EQ(ask("192.0.2.2", 0).delay_ms(), 20000u);
}

TEST(EdgeContractE2eTest, AnswersSayDrainingOnceShutdownBegins) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(
      Config("shutdown { grace_ms: 3000 drain_timeout_ms: 2000 }")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  grpc::ClientContext ctx;
  Deadline(ctx, 30);
  auto stream = stub->ValidateStream(&ctx);
  v1::ValidateRequest request;
  request.mutable_context()->set_client_ip("192.0.2.1");
  request.add_recipients("alice@example.com");
  request.set_request_id(1);
  ASSERT_TRUE(stream->Write(request));
  v1::ValidateResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_FALSE(response.draining());

  server.process().Signal(SIGTERM);
  // Within the grace period the server still answers, now saying so.
  bool draining = false;
  for (int i = 2; i < 40 && !draining; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    request.set_request_id(i);
    ASSERT_TRUE(stream->Write(request));
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.request_id(), static_cast<uint64_t>(i));
    EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
    draining = response.draining();
  }
  EXPECT_TRUE(draining);
  // A unary call says it too.
  grpc::ClientContext unary;
  Deadline(unary);
  v1::ValidateResponse one;
  ASSERT_TRUE(stub->Validate(&unary, request, &one).ok());
  EXPECT_TRUE(one.draining());
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(EdgeContractE2eTest, BatchStreamAnswersEachRequestAsValidateWould) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config(R"(harvest {
  rules { name: "tarpit" scopes: "v4/32" window: "10m" min_unknown: 1
          action: HARVEST_ACTION_TARPIT base_delay: "1s" factor: 1 max_delay: "1s" }
})")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  grpc::ClientContext ctx;
  Deadline(ctx);
  auto stream = stub->ValidateBatchStream(&ctx);
  // Three SMTP sessions of two clients in one message: each is judged on
  // its own context (192.0.2.9 sends unknown recipients and is tarpitted,
  // 198.51.100.1 in between is not).
  v1::ValidateBatchRequest batch;
  batch.set_batch_id(7);
  const struct {
    const char* ip;
    const char* rcpt;
  } asks[] = {{"192.0.2.9", "nobody@example.com"},
              {"198.51.100.1", "alice@example.com"},
              {"192.0.2.9", "nobody2@example.com"}};
  uint64_t id = 100;
  for (const auto& a : asks) {
    v1::ValidateRequest* r = batch.add_requests();
    r->set_request_id(++id);
    r->mutable_context()->set_client_ip(a.ip);
    r->mutable_context()->set_session_id(absl::StrCat("s", id));
    r->mutable_context()->set_mail_from("<s@sender.example>");
    r->add_recipients(a.rcpt);
  }
  ASSERT_TRUE(stream->Write(batch));
  v1::ValidateBatchResponse answer;
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.batch_id(), 7u);
  ASSERT_EQ(answer.results_size(), 3);
  for (const auto& result : answer.results()) {
    ASSERT_TRUE(result.has_response());
    EXPECT_FALSE(result.response().draining());
  }
  const auto response = [&](int i) { return answer.results(i).response(); };
  EXPECT_EQ(response(0).request_id(), 101u);
  EXPECT_EQ(response(0).verdicts(0).reply().code(), 550u);
  EXPECT_EQ(response(0).client().action(), v1::CLIENT_ACTION_TARPIT);
  EXPECT_EQ(response(1).request_id(), 102u);
  EXPECT_EQ(response(1).verdicts(0).reply().code(), 250u);
  EXPECT_EQ(response(1).client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(response(2).request_id(), 103u);
  EXPECT_EQ(response(2).client().action(), v1::CLIENT_ACTION_TARPIT);

  // Over the limit of requests per message: the stream ends, naming it.
  v1::ValidateBatchRequest big;
  for (int i = 0; i < 1001; ++i) big.add_requests()->set_request_id(i + 1);
  ASSERT_TRUE(stream->Write(big));
  EXPECT_FALSE(stream->Read(&answer));
  grpc::Status end = stream->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(
      end.error_message(),
      ::testing::HasSubstr("ValidateBatchRequest.requests: more than 1000"));
}

// Every file answer of one stream: names of the FileDescriptorProtos.
std::vector<std::string> FileNames(const rv1::ServerReflectionResponse& r) {
  std::vector<std::string> names;
  for (const std::string& bytes :
       r.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    EXPECT_TRUE(file.ParseFromString(bytes));
    names.push_back(file.name());
  }
  return names;
}

TEST(EdgeContractE2eTest, ReflectionV1BesideV1alpha) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config()));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  auto stub = rv1::ServerReflection::NewStub(server.channel());
  grpc::ClientContext ctx;
  Deadline(ctx);
  auto stream = stub->ServerReflectionInfo(&ctx);

  rv1::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  rv1::ServerReflectionResponse r;
  ASSERT_TRUE(stream->Read(&r));
  std::vector<std::string> services;
  for (const auto& s : r.list_services_response().service()) {
    services.push_back(s.name());
  }
  EXPECT_THAT(
      services,
      IsSupersetOf({"rcptguard.v1.RecipientValidation", "rcptguard.v1.Admin",
                    "grpc.reflection.v1.ServerReflection",
                    "grpc.reflection.v1alpha.ServerReflection"}));

  rv1::ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol(
      "rcptguard.v1.RecipientValidation.GetServedDomains");
  ASSERT_TRUE(stream->Write(symbol));
  ASSERT_TRUE(stream->Read(&r));
  const std::vector<std::string> files = FileNames(r);
  ASSERT_FALSE(files.empty()) << r.DebugString();
  EXPECT_EQ(files[0], "rcptguard/v1/validation.proto");
  EXPECT_THAT(files, Contains("google/protobuf/timestamp.proto"));

  // Asked again on this stream: the file, without the imports sent already.
  ASSERT_TRUE(stream->Write(symbol));
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_THAT(FileNames(r), ElementsAre("rcptguard/v1/validation.proto"));

  rv1::ServerReflectionRequest missing;
  missing.set_file_containing_symbol("no.such.Symbol");
  ASSERT_TRUE(stream->Write(missing));
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.error_response().error_code(),
            static_cast<int>(grpc::StatusCode::NOT_FOUND));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace rcptguard
