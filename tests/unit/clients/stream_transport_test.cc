// The client library's stream transports (clients/cpp/stream_transport.h)
// against in-process fake servers on 127.0.0.1 (port 0): group commit
// (nothing waits when idle; requests queue while a message is in flight
// and leave together), answers that do not match their request, and the
// fallback for servers without the stream methods.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clients/cpp/client.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/validation.grpc.pb.h"

namespace rcptguard::client {
namespace {

v1::ValidateResponse AllValid(const v1::ValidateRequest& request) {
  v1::ValidateResponse response;
  response.set_request_id(request.request_id());
  for (int i = 0; i < request.recipients_size(); ++i) {
    response.add_verdicts()->set_status(v1::RECIPIENT_STATUS_VALID);
  }
  response.mutable_client()->set_action(v1::CLIENT_ACTION_ACCEPT);
  return response;
}

// Answers every batch after `delay`, recording how many requests each
// message held; with `wrong_ids`, ValidateStream answers carry a wrong
// request_id.
class FakeService final : public v1::RecipientValidation::Service {
 public:
  explicit FakeService(absl::Duration delay, bool wrong_ids = false)
      : delay_(delay), wrong_ids_(wrong_ids) {}

  grpc::Status ValidateBatchStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ValidateBatchResponse,
                               v1::ValidateBatchRequest>* stream) override {
    v1::ValidateBatchRequest batch;
    while (stream->Read(&batch)) {
      {
        absl::MutexLock lock(&mu_);
        sizes_.push_back(batch.requests_size());
      }
      absl::SleepFor(delay_);
      v1::ValidateBatchResponse answer;
      answer.set_batch_id(batch.batch_id());
      for (const v1::ValidateRequest& r : batch.requests()) {
        *answer.add_results()->mutable_response() = AllValid(r);
      }
      if (!stream->Write(answer)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status ValidateStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ValidateResponse, v1::ValidateRequest>*
          stream) override {
    v1::ValidateRequest request;
    while (stream->Read(&request)) {
      v1::ValidateResponse response = AllValid(request);
      if (wrong_ids_) response.set_request_id(request.request_id() + 1000);
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  std::vector<int> sizes() {
    absl::MutexLock lock(&mu_);
    return sizes_;
  }

 private:
  const absl::Duration delay_;
  const bool wrong_ids_;
  absl::Mutex mu_;
  std::vector<int> sizes_ ABSL_GUARDED_BY(mu_);
};

// Only the unary method, as a server older than the stream methods.
class UnaryOnlyService final : public v1::RecipientValidation::Service {
 public:
  grpc::Status Validate(grpc::ServerContext*, const v1::ValidateRequest* r,
                        v1::ValidateResponse* response) override {
    *response = AllValid(*r);
    return grpc::Status::OK;
  }
};

class Fixture {
 public:
  explicit Fixture(grpc::Service* service) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
  }
  ~Fixture() { server_->Shutdown(std::chrono::system_clock::now()); }

  std::unique_ptr<Client> Make(Transport transport) {
    ClientOptions options;
    options.target = absl::StrCat("127.0.0.1:", port_);
    options.transport = transport;
    options.deadline = absl::Seconds(5);
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

v1::SmtpContext Context(int i) {
  v1::SmtpContext c;
  c.set_client_ip(absl::StrCat("192.0.2.", i + 1));
  return c;
}

std::vector<RecipientResult> Burst(Client& client, int n) {
  std::vector<RecipientResult> out(n);
  absl::BlockingCounter done(n);
  for (int i = 0; i < n; ++i) {
    client.CheckRecipient(Context(i), "a@example.com",
                          CheckOptions{.dry_run = false, .batch = false},
                          [&out, &done, i](RecipientResult r) {
                            out[i] = std::move(r);
                            done.DecrementCount();
                          });
  }
  done.Wait();
  return out;
}

TEST(StreamTransportTest, GroupCommitSendsAtOnceThenTogether) {
  FakeService service(absl::Milliseconds(100));
  Fixture fixture(&service);
  auto client = fixture.Make(Transport::kBatchStream);
  // Opens the stream (requests wait only while it starts).
  ASSERT_EQ(client->CheckRecipientSync(Context(0), "a@example.com").source,
            RecipientResult::Source::kService);
  // Idle: the first request leaves alone, at once; the 19 issued while it
  // is in flight leave together when its answer returns.
  std::vector<RecipientResult> results = Burst(*client, 20);
  for (const RecipientResult& r : results) {
    ASSERT_EQ(r.source, RecipientResult::Source::kService) << r.error;
    EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_VALID);
  }
  EXPECT_EQ(service.sizes(), (std::vector<int>{1, 1, 19}));
  const ClientStats stats = client->stats();
  EXPECT_EQ(stats.calls, 21u);
  EXPECT_EQ(stats.streams, 1u);
  EXPECT_EQ(stats.stream_messages, 3u);
}

// Requests that together would make a message too large for the server
// leave in messages of their own.
TEST(StreamTransportTest, LargeRequestsAreNotGroupedPastTheMessageCap) {
  FakeService service(absl::Milliseconds(100));
  Fixture fixture(&service);
  auto client = fixture.Make(Transport::kBatchStream);
  ASSERT_EQ(client->CheckRecipientSync(Context(0), "a@example.com").source,
            RecipientResult::Source::kService);
  v1::ValidateRequest large;
  *large.mutable_context() = Context(1);
  for (int i = 0; i < 500; ++i) {
    large.add_recipients(std::string(290, 'a') + "@example.com");  // 150 KB
  }
  absl::BlockingCounter done(3);
  for (int i = 0; i < 3; ++i) {
    client->Validate(large, [&done](absl::StatusOr<v1::ValidateResponse> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) EXPECT_EQ(r->verdicts_size(), 500);
      done.DecrementCount();
    });
  }
  done.Wait();
  EXPECT_EQ(service.sizes(), (std::vector<int>{1, 1, 1, 1}));
}

TEST(StreamTransportTest, MismatchedAnswerIsAnErrorNotAWrongVerdict) {
  FakeService service(absl::ZeroDuration(), /*wrong_ids=*/true);
  Fixture fixture(&service);
  auto client = fixture.Make(Transport::kStream);
  RecipientResult r = client->CheckRecipientSync(Context(1), "a@example.com");
  EXPECT_EQ(r.source, RecipientResult::Source::kFailOpen);
  EXPECT_EQ(r.error.code(), absl::StatusCode::kInternal) << r.error;
  EXPECT_NE(r.error.message().find("answer for request"),
            absl::string_view::npos)
      << r.error;
}

TEST(StreamTransportTest, ServerWithoutStreamsIsAskedUnary) {
  UnaryOnlyService service;
  Fixture fixture(&service);
  for (Transport t : {Transport::kBatchStream, Transport::kStream}) {
    auto client = fixture.Make(t);
    for (int i = 0; i < 3; ++i) {
      RecipientResult r =
          client->CheckRecipientSync(Context(i), "a@example.com");
      EXPECT_EQ(r.source, RecipientResult::Source::kService) << r.error;
      EXPECT_EQ(r.verdict.status(), v1::RECIPIENT_STATUS_VALID);
    }
    EXPECT_EQ(client->stats().policy_answers, 0u);
  }
}

TEST(StreamTransportTest, TransportNamesRoundTrip) {
  for (Transport t :
       {Transport::kUnary, Transport::kStream, Transport::kBatchStream}) {
    EXPECT_EQ(*ParseTransport(TransportName(t)), t);
  }
  EXPECT_EQ(ParseTransport("grpc").status().message(),
            "transport \"grpc\": expected unary, stream or batch_stream");
  ClientOptions o;
  o.stream_messages_in_flight = 0;
  EXPECT_EQ(Client::Create(o).status().message(),
            "stream_messages_in_flight: must be 1..64");
  o = ClientOptions();
  o.max_requests_per_message = 1001;
  EXPECT_EQ(Client::Create(o).status().message(),
            "max_requests_per_message: must be 1..1000");
}

}  // namespace
}  // namespace rcptguard::client
