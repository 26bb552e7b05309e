#include "server/service/call_queues.h"

#include <algorithm>
#include <chrono>

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
  const auto now = std::chrono::system_clock::now();
  for (CallQueues* p : passengers_) {
    for (auto& queue : p->queues_) {
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
  }
  return open;
}

void CallQueues::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    for (auto& queue : queues_) queue->Shutdown();
  }
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
