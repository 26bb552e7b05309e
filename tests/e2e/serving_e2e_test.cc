// How rcptguardd serves calls (server/service/call_queues.h,
// generic_calls.h), against the real binary: our own grpc.health.v1 (Check
// and Watch, on the main and the health-only port, ended at shutdown),
// UNIMPLEMENTED for methods nobody serves, Admin on its worker thread
// while validation goes on, and limits.grpc_threads.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/raw_call.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/slapd.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

namespace hv1 = ::grpc::health::v1;
using ::rcptguard::testing::RawUnaryCall;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::testing::HasSubstr;

std::string Config(const std::string& extra = "",
                   const std::string& ldif = "") {
  return absl::StrCat(
      R"(listen_address: "127.0.0.1:0"
domains { name: "example.com" }
domains { name: "example.org" }
directory { ldif_files: ")",
      ldif.empty() ? absl::StrCat(SourceDir(), "/deploy/examples/sample.ldif")
                   : ldif,
      R"(" preset: "ad" }
)",
      extra);
}

void Deadline(grpc::ClientContext& ctx, int seconds = 10) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(seconds));
}

v1::ValidateRequest Ask(const std::string& recipient) {
  v1::ValidateRequest request;
  request.mutable_context()->set_client_ip("192.0.2.10");
  request.add_recipients(recipient);
  return request;
}

// A Watch reads the current status at once, then each change; SIGTERM
// turns it NOT_SERVING and then ends the stream, on both ports, and the
// open Watch streams do not hold up the exit.
TEST(ServingE2eTest, HealthWatchFollowsTheStatusAndEndsAtShutdown) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(
      Config("health_listen_address: \"127.0.0.1:0\"\n"
             "shutdown { grace_ms: 1000 drain_timeout_ms: 20000 }\n")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  ASSERT_GT(server.health_port(), 0);
  auto health_channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.health_port()),
                          grpc::InsecureChannelCredentials());
  struct Watch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<hv1::HealthCheckResponse>> reader;
  };
  std::vector<std::unique_ptr<Watch>> watches;
  for (auto channel : {server.channel(), health_channel}) {
    auto w = std::make_unique<Watch>();
    Deadline(w->ctx, 30);
    w->reader = hv1::Health::NewStub(channel)->Watch(&w->ctx, {});
    hv1::HealthCheckResponse r;
    ASSERT_TRUE(w->reader->Read(&r));
    EXPECT_EQ(r.status(), hv1::HealthCheckResponse::SERVING);
    watches.push_back(std::move(w));
  }
  // A Watch of a service health does not know ends at shutdown too.
  Watch unknown;
  Deadline(unknown.ctx, 30);
  hv1::HealthCheckRequest unknown_request;
  unknown_request.set_service("no.such.Service");
  unknown.reader = hv1::Health::NewStub(server.channel())
                       ->Watch(&unknown.ctx, unknown_request);
  {
    hv1::HealthCheckResponse r;
    ASSERT_TRUE(unknown.reader->Read(&r));
    EXPECT_EQ(r.status(), hv1::HealthCheckResponse::SERVICE_UNKNOWN);
  }
  const absl::Time term = absl::Now();
  server.process().Signal(SIGTERM);
  for (auto& w : watches) {
    hv1::HealthCheckResponse r;
    ASSERT_TRUE(w->reader->Read(&r));
    EXPECT_EQ(r.status(), hv1::HealthCheckResponse::NOT_SERVING);
    EXPECT_FALSE(w->reader->Read(&r));
    const grpc::Status end = w->reader->Finish();
    EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE)
        << end.error_message();
  }
  {
    hv1::HealthCheckResponse r;
    EXPECT_FALSE(unknown.reader->Read(&r)) << r.DebugString();
    EXPECT_EQ(unknown.reader->Finish().error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  std::optional<int> exit_status = server.process().Wait(absl::Seconds(15));
  ASSERT_TRUE(exit_status.has_value()) << "did not exit";
  EXPECT_EQ(WEXITSTATUS(*exit_status), 0);
  // The grace period, not the 20 s drain timeout.
  EXPECT_LT(absl::Now() - term, absl::Seconds(10));
}

// Check knows the overall status and RecipientValidation's; other names
// are NOT_FOUND for Check and SERVICE_UNKNOWN (stream kept open) for Watch.
TEST(ServingE2eTest, HealthNamesItsServices) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config()));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  auto stub = hv1::Health::NewStub(server.channel());
  for (const char* name : {"", "rcptguard.v1.RecipientValidation"}) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    hv1::HealthCheckRequest request;
    request.set_service(name);
    hv1::HealthCheckResponse response;
    grpc::Status s = stub->Check(&ctx, request, &response);
    ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
    EXPECT_EQ(response.status(), hv1::HealthCheckResponse::SERVING) << name;
  }
  hv1::HealthCheckRequest unknown;
  unknown.set_service("no.such.Service");
  {
    grpc::ClientContext ctx;
    Deadline(ctx);
    hv1::HealthCheckResponse response;
    EXPECT_EQ(stub->Check(&ctx, unknown, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  grpc::ClientContext ctx;
  Deadline(ctx);
  auto reader = stub->Watch(&ctx, unknown);
  hv1::HealthCheckResponse r;
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.status(), hv1::HealthCheckResponse::SERVICE_UNKNOWN);
  ctx.TryCancel();
  EXPECT_FALSE(reader->Read(&r));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server is fine after the cancelled stream.
  EXPECT_EQ(server.Health(), hv1::HealthCheckResponse::SERVING);
}

TEST(ServingE2eTest, MethodsNobodyServesAreUnimplemented) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config()));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  for (const char* method :
       {"/rcptguard.v1.Admin/NoSuchMethod",
        "/rcptguard.v1.RecipientValidation/NoSuchMethod", "/no.Such/Thing"}) {
    std::string out;
    grpc::Status s = RawUnaryCall(server.channel(), method, "", &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
  }
  // A request that does not parse is named, as for RecipientValidation.
  std::string out;
  grpc::Status s =
      RawUnaryCall(server.channel(), "/rcptguard.v1.Admin/ListOffenders",
                   std::string("\x08\xff", 2), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("ListOffendersRequest"));
}

// A reload runs on the Admin worker: validation calls are answered while
// it loads a large directory.
TEST(ServingE2eTest, ValidationIsAnsweredWhileAdminReloads) {
  const testing::ScopedTempDir dir("rg-e2e-serving");
  const std::string ldif = dir.path() + "/big.ldif";
  {
    std::string text = "version: 1\n\n";
    for (int i = 0; i < 300000; ++i) {
      absl::StrAppend(&text, "dn: CN=user", i, ",OU=Users,DC=example,DC=com\n",
                      "objectClass: user\nuserAccountControl: 512\n",
                      "proxyAddresses: SMTP:user", i, "@example.com\n\n");
    }
    ASSERT_TRUE(testing::WriteFile(ldif, text).ok());
  }
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config("", ldif)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(120))) << server.log();
  auto validation = v1::RecipientValidation::NewStub(server.channel());

  std::atomic<bool> reloading{true};
  grpc::Status reload_status;
  std::thread reload([&] {
    grpc::ClientContext ctx;
    Deadline(ctx, 120);
    v1::ReloadRequest request;
    request.set_force(true);
    v1::ReloadResponse response;
    reload_status = v1::Admin::NewStub(server.NewChannel())
                        ->Reload(&ctx, request, &response);
    reloading = false;
  });
  // Wait until the reload has begun (it logs first).
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (server.log().find("event=admin_reload") == std::string::npos &&
         absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  int answered_during_reload = 0;
  while (reloading) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::ValidateResponse response;
    grpc::Status s =
        validation->Validate(&ctx, Ask("user42@example.com"), &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
    if (reloading) ++answered_during_reload;
  }
  reload.join();
  EXPECT_TRUE(reload_status.ok()) << reload_status.error_message();
  // A reload of 300 000 entries takes far longer than a few calls.
  EXPECT_GT(answered_during_reload, 10);
}

// Several threads (limits.grpc_threads) serve every kind of call alike.
TEST(ServingE2eTest, SeveralThreadsServeEveryMethod) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config("limits { grpc_threads: 3 }\n")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  EXPECT_THAT(server.log(), HasSubstr("grpc_threads=3"));
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&, c] {
      auto channel = server.NewChannel();
      auto validation = v1::RecipientValidation::NewStub(channel);
      for (int i = 0; i < 50; ++i) {
        grpc::ClientContext ctx;
        Deadline(ctx);
        v1::ValidateResponse response;
        grpc::Status s = validation->Validate(
            &ctx, Ask(c % 2 == 0 ? "alice@example.com" : "nobody@example.com"),
            &response);
        if (!s.ok() || response.verdicts(0).status() !=
                           (c % 2 == 0 ? v1::RECIPIENT_STATUS_VALID
                                       : v1::RECIPIENT_STATUS_UNKNOWN)) {
          ++failures;
        }
      }
      grpc::ClientContext ctx;
      Deadline(ctx);
      auto stream = validation->ValidateStream(&ctx);
      for (int i = 0; i < 50; ++i) {
        v1::ValidateRequest request = Ask("alice@example.com");
        request.set_request_id(i + 1);
        v1::ValidateResponse response;
        if (!stream->Write(request) || !stream->Read(&response) ||
            response.request_id() != static_cast<uint64_t>(i + 1)) {
          ++failures;
        }
      }
      stream->WritesDone();
      if (!stream->Finish().ok()) ++failures;
      grpc::ClientContext admin_ctx;
      Deadline(admin_ctx);
      v1::GetStatusResponse status;
      if (!v1::Admin::NewStub(channel)
               ->GetStatus(&admin_ctx, {}, &status)
               .ok()) {
        ++failures;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server.Health(), hv1::HealthCheckResponse::SERVING);
}

// The health-only port's queue rides along with the main thread
// (CallQueues passengers): probes there are answered while that thread is
// kept busy by the main port, well within a probe's timeout.
TEST(ServingE2eTest, HealthPortAnswersWhileTheMainPortIsBusy) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      server.Start(Config("health_listen_address: \"127.0.0.1:0\"\n")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  ASSERT_GT(server.health_port(), 0);

  std::atomic<bool> stop{false};
  std::atomic<int64_t> answered{0};
  std::vector<std::thread> load;
  for (int c = 0; c < 4; ++c) {
    load.emplace_back([&] {
      auto stub = v1::RecipientValidation::NewStub(server.NewChannel());
      grpc::ClientContext ctx;
      Deadline(ctx, 60);
      auto stream = stub->ValidateStream(&ctx);
      v1::ValidateRequest request = Ask("alice@example.com");
      v1::ValidateResponse response;
      while (!stop) {
        // 8 pipelined requests, then their 8 answers.
        for (int i = 0; i < 8; ++i) {
          if (!stream->Write(request)) return;
        }
        for (int i = 0; i < 8; ++i) {
          if (!stream->Read(&response)) return;
          ++answered;
        }
      }
      stream->WritesDone();
      stream->Finish();
    });
  }
  auto health = hv1::Health::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.health_port()),
                          grpc::InsecureChannelCredentials()));
  absl::Duration slowest;
  int probes = 0;
  const absl::Time until = absl::Now() + absl::Seconds(3);
  while (absl::Now() < until) {
    grpc::ClientContext ctx;
    Deadline(ctx, 5);
    hv1::HealthCheckResponse response;
    const absl::Time start = absl::Now();
    grpc::Status s = health->Check(&ctx, {}, &response);
    slowest = std::max(slowest, absl::Now() - start);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.status(), hv1::HealthCheckResponse::SERVING);
    ++probes;
    absl::SleepFor(absl::Milliseconds(50));
  }
  stop = true;
  for (std::thread& t : load) t.join();
  std::cout << "health port under load: " << probes << " probes, slowest "
            << slowest << ", " << answered.load()
            << " stream answers meanwhile\n";
  EXPECT_GT(answered.load(), 1000);
  // Kubernetes' probes in deploy/ allow 2 s.
  EXPECT_LT(slowest, absl::Seconds(1));
}

}  // namespace
}  // namespace rcptguard
