#include "server/service/call_queues.h"

#include <algorithm>
#include <chrono>

#include "absl/time/clock.h"
#include "common/log.h"

namespace rcptguard::service {
namespace {

// Serves everything `queue` returns until it is shut down and drained.
void Drain(grpc::ServerCompletionQueue* queue) {
  void* tag = nullptr;
  bool ok = false;
  while (queue->Next(&tag, &ok)) static_cast<Completion*>(tag)->Done(ok);
}

}  // namespace

CallQueues::~CallQueues() { Shutdown(); }

void CallQueues::AddTo(grpc::ServerBuilder* builder, int count) {
  for (int i = 0; i < std::max(count, 1); ++i) {
    queues_.push_back(builder->AddCompletionQueue());
  }
}

void CallQueues::AddPassenger(CallQueues* other) {
  passengers_.push_back(other);
  other->host_ = this;
}

void CallQueues::Start(
    absl::FunctionRef<void(grpc::ServerCompletionQueue*)> first, bool threads) {
  {
    absl::MutexLock lock(&mu_);
    accepting_ = true;
  }
  for (auto& queue : queues_) first(queue.get());
  if (!threads) return;
  for (size_t i = 0; i < queues_.size(); ++i) {
    grpc::ServerCompletionQueue* queue = queues_[i].get();
    const bool with_passengers = i == 0 && !passengers_.empty();
    threads_.emplace_back(
        [this, queue, with_passengers] { Run(queue, with_passengers); });
  }
}

bool CallQueues::Request(absl::FunctionRef<void()> request) {
  absl::MutexLock lock(&mu_);
  if (!accepting_) return false;
  request();
  return true;
}

void CallQueues::Run(grpc::ServerCompletionQueue* queue, bool with_passengers) {
  void* tag = nullptr;
  bool ok = false;
  absl::Time next_passengers = absl::Now();
  // Until every passenger queue is shut down and drained.
  while (with_passengers) {
    const grpc::CompletionQueue::NextStatus next =
        queue->AsyncNext(&tag, &ok, absl::ToChronoTime(next_passengers));
    if (next == grpc::CompletionQueue::SHUTDOWN) return;
    if (next == grpc::CompletionQueue::GOT_EVENT) {
      static_cast<Completion*>(tag)->Done(ok);
    }
    if (absl::Now() >= next_passengers) {
      with_passengers = ServePassengers();
      next_passengers = absl::Now() + kPassengerInterval;
    }
  }
  Drain(queue);
}

bool CallQueues::ServePassengers() {
  bool open = false;
  for (CallQueues* p : passengers_) {
    if (ServeNow(p->queues_)) open = true;
  }
  return open;
}

bool CallQueues::ServeNow(
    const std::vector<std::unique_ptr<grpc::ServerCompletionQueue>>& queues) {
  bool open = false;
  const auto now = std::chrono::system_clock::now();
  for (auto& queue : queues) {
    void* tag = nullptr;
    bool ok = false;
    while (true) {
      const grpc::CompletionQueue::NextStatus next =
          queue->AsyncNext(&tag, &ok, now);
      if (next == grpc::CompletionQueue::GOT_EVENT) {
        static_cast<Completion*>(tag)->Done(ok);
        continue;
      }
      if (next == grpc::CompletionQueue::TIMEOUT) open = true;
      break;
    }
  }
  return open;
}

void CallQueues::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
  }
  // The calls' last completions come back on the queues, still served:
  // by our threads, or (a passenger) by its host's first thread, or here
  // when no thread serves them. Never two at once: a call's completions
  // must not run concurrently.
  const bool served_here =
      threads_.empty() && (host_ == nullptr || host_->threads_.empty());
  const absl::Time deadline = absl::Now() + kCallsGoneTimeout;
  while (live_calls() > 0 && absl::Now() < deadline) {
    if (served_here) ServeNow(queues_);
    absl::SleepFor(absl::Milliseconds(1));
  }
  // Past the timeout, a call still alive awaits something that will not
  // come (none is known to): it is logged, and the queues go.
  if (const int64_t left = live_calls(); left > 0) {
    LogWarning("calls_left_at_shutdown",
               {{"calls", left},
                {"waited_ms", absl::ToInt64Milliseconds(kCallsGoneTimeout)}});
  }
  for (auto& queue : queues_) queue->Shutdown();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  // A queue without a thread of ours (a passenger, or a server that never
  // started) is drained here, as gRPC requires before it goes; draining a
  // drained queue returns at once.
  for (auto& queue : queues_) Drain(queue.get());
  for (CallQueues* p : passengers_) {
    for (auto& queue : p->queues_) Drain(queue.get());
  }
}

}  // namespace rcptguard::service
