// CallQueues against a real gRPC server on loopback: Shutdown must not
// shut a queue down while a call object still lives, because a call
// cancelled by the drain deadline still starts an operation (its Finish)
// when its cancelled read comes back. Starting one on a queue already shut
// down aborts the process (grpc_cq_begin_op), which is how rcptguardd
// once died on SIGTERM with a stream open.
#include "server/service/call_queues.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

namespace rcptguard::service {
namespace {

// What the test watches, shared with its calls.
struct Watch {
  std::atomic<int> reading{0};   // calls waiting in their second read
  std::atomic<int> finished{0};  // Finish completions seen
  // How long a call takes, once its read fails, before it starts Finish.
  absl::Duration finish_delay = absl::Milliseconds(300);
};

// One streaming call of the generic service: reads until its read fails,
// then (after a delay, standing for work) finishes; deletes itself after
// the Finish completes.
class SlowCall {
 public:
  static void Await(grpc::AsyncGenericService* service, CallQueues* queues,
                    grpc::ServerCompletionQueue* queue, Watch* watch) {
    auto* call = new SlowCall(service, queues, queue, watch);
    if (!queues->Request([&] {
          service->RequestCall(&call->context_, &call->stream_, queue, queue,
                               &call->started_);
        })) {
      delete call;
    }
  }

 private:
  SlowCall(grpc::AsyncGenericService* service, CallQueues* queues,
           grpc::ServerCompletionQueue* queue, Watch* watch)
      : service_(service),
        queues_(queues),
        live_(queues),
        queue_(queue),
        watch_(watch) {}

  void OnStarted(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    Await(service_, queues_, queue_, watch_);
    stream_.Read(&in_, &read_);
  }
  void OnRead(bool ok) {
    if (ok) {
      ++reads_;
      if (reads_ == 1) ++watch_->reading;
      stream_.Read(&in_, &read_);
      return;
    }
    absl::SleepFor(watch_->finish_delay);
    stream_.Finish(grpc::Status::OK, &finished_);
  }
  void OnFinished(bool /*ok*/) {
    ++watch_->finished;
    delete this;
  }

  grpc::AsyncGenericService* const service_;
  CallQueues* const queues_;
  CallQueues::Live live_;
  grpc::ServerCompletionQueue* const queue_;
  Watch* const watch_;
  grpc::GenericServerContext context_;
  grpc::GenericServerAsyncReaderWriter stream_{&context_};
  grpc::ByteBuffer in_;
  int reads_ = 0;
  Op<SlowCall> started_{this, &SlowCall::OnStarted};
  Op<SlowCall> read_{this, &SlowCall::OnRead};
  Op<SlowCall> finished_{this, &SlowCall::OnFinished};
};

grpc::ByteBuffer Bytes(const std::string& text) {
  grpc::Slice slice(text);
  return grpc::ByteBuffer(&slice, 1);
}

TEST(CallQueuesTest, ShutdownWaitsForACancelledCallToFinish) {
  Watch watch;
  grpc::AsyncGenericService service;
  CallQueues queues;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterAsyncGenericService(&service);
  queues.AddTo(&builder, 1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);
  queues.Start([&](grpc::ServerCompletionQueue* q) {
    SlowCall::Await(&service, &queues, q, &watch);
  });

  // A client opens a stream, sends one message and never closes it.
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue client_queue;
  grpc::ClientContext ctx;
  auto call = stub.PrepareCall(&ctx, "/test.Slow/Stream", &client_queue);
  auto client_op = [&](auto start) {
    start();
    void* tag = nullptr;
    bool ok = false;
    return client_queue.Next(&tag, &ok) && ok;
  };
  ASSERT_TRUE(client_op([&] { call->StartCall(&client_queue); }));
  const grpc::ByteBuffer hello = Bytes("hello");
  ASSERT_TRUE(client_op([&] { call->Write(hello, &client_queue); }));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (watch.reading.load() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(watch.reading.load(), 1);
  EXPECT_GE(queues.live_calls(), 2);  // the open call and the awaited one

  // The drain deadline passes at once: gRPC cancels the call; its read
  // fails, and the call finishes 300 ms later, after Server::Shutdown has
  // returned. CallQueues::Shutdown must wait for that Finish.
  server->Shutdown(std::chrono::system_clock::now());
  queues.Shutdown();
  EXPECT_EQ(watch.finished.load(), 1);
  EXPECT_EQ(queues.live_calls(), 0);

  ctx.TryCancel();
  client_queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (client_queue.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace rcptguard::service
