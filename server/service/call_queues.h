// The completion queues rcptguardd serves every gRPC call on, and the
// threads that drive them (limits.grpc_threads, default 1).
//
// Why not gRPC's callback or synchronous API: with those, gRPC's own
// threads poll the sockets, and every thread that polls takes turns with
// the others (gRPC's epoll1 engine hands the poller role over, one futex
// wake-up each time). A message that arrives alone then costs about three
// thread wake-ups before it is answered. Here one thread polls, reads the
// request, answers it and writes the answer: one wake-up (BENCHMARKS.md,
// "One polling thread"). More threads serve hosts that need more than one
// core for gRPC, at the price of the hand-overs between them.
//
//   CallQueues queues;
//   queues.AddTo(&builder, config.limits().grpc_threads());
//   server = builder.BuildAndStart();
//   queues.Start([&](grpc::ServerCompletionQueue* q) { FirstCalls(q); });
//   ...
//   server->Shutdown(deadline);   // gRPC first,
//   queues.Shutdown();            // then the queues (joins the threads)
//
// Every tag given to gRPC on these queues is a Completion; a call object
// holds one per operation it starts and deletes itself after its last
// completion. Each call waits for the next call of its method on the same
// queue (Request) as soon as its own arrives, so one call of every method
// is always awaited on every queue.
//
// Every call object also holds a CallQueues::Live from its construction
// to its destruction. gRPC requires that no operation is started on a
// queue once it is shut down; a call cancelled by the drain deadline still
// starts one (its Finish, when its cancelled read comes back), so Shutdown
// shuts the queues down only once no call object is left.
//
// A passenger is the queue of another server (the health-only port) that
// the first thread serves between its own events and at least every
// kPassengerInterval: a thread of its own would poll too, and take turns
// with ours on every event of the main port.
//
// Thread safety: Request may be called from any thread; AddTo, AddPassenger,
// Start and Shutdown by one owner, in that order.
#ifndef RCPTGUARD_SERVER_SERVICE_CALL_QUEUES_H_
#define RCPTGUARD_SERVER_SERVICE_CALL_QUEUES_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/server_builder.h"

namespace rcptguard::service {

// One operation's completion; every tag on our queues is one.
class Completion {
 public:
  virtual void Done(bool ok) = 0;

 protected:
  ~Completion() = default;
};

// A Completion that calls `handler` on `call`.
template <typename Call>
class Op final : public Completion {
 public:
  using Handler = void (Call::*)(bool ok);
  Op(Call* call, Handler handler) : call_(call), handler_(handler) {}
  void Done(bool ok) override { (call_->*handler_)(ok); }

 private:
  Call* const call_;
  const Handler handler_;
};

class CallQueues {
 public:
  static constexpr absl::Duration kPassengerInterval = absl::Milliseconds(50);
  // How long Shutdown waits for the cancelled calls' last completions.
  static constexpr absl::Duration kCallsGoneTimeout = absl::Seconds(5);

  // Counts a call object on `queues` for as long as it lives; a member of
  // every call object (thread-safe: construct and destroy anywhere).
  class Live {
   public:
    explicit Live(CallQueues* queues) : queues_(queues) {
      queues_->live_.fetch_add(1, std::memory_order_relaxed);
    }
    ~Live() { queues_->live_.fetch_sub(1, std::memory_order_acq_rel); }
    Live(const Live&) = delete;
    Live& operator=(const Live&) = delete;

   private:
    CallQueues* const queues_;
  };

  CallQueues() = default;
  CallQueues(const CallQueues&) = delete;
  CallQueues& operator=(const CallQueues&) = delete;
  // Shuts down what Shutdown() has not.
  ~CallQueues();

  // Adds `count` (at least 1) queues to `builder`, before BuildAndStart.
  void AddTo(grpc::ServerBuilder* builder, int count);
  // The first thread also serves `other`'s queues, which gets no thread of
  // its own (its Start(..., /*threads=*/false)). `other` must be shut down
  // before this.
  void AddPassenger(CallQueues* other);

  // Starts accepting: `first(queue)` requests the first calls on each
  // queue (through Request), then each queue gets its thread (without
  // `threads`: a passenger's queues, driven by another's first thread).
  void Start(absl::FunctionRef<void(grpc::ServerCompletionQueue*)> first,
             bool threads = true);

  // Runs `request` (which asks gRPC for the next call on `queue`) unless
  // the queues are shutting down; false then, and nothing was requested
  // (gRPC must not be handed a request on a queue being shut down).
  bool Request(absl::FunctionRef<void()> request) ABSL_LOCKS_EXCLUDED(mu_);

  // After grpc::Server::Shutdown returned: no more calls are requested;
  // the awaited calls come back !ok and the cancelled ones finish, all
  // served by the threads, and delete themselves (waited for, at most
  // kCallsGoneTimeout); then the queues shut down and the threads end
  // (joined here). A passenger's calls are served by its host's thread
  // meanwhile (or here, when the host has stopped).
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);
  // Call objects alive now (Live); Shutdown waits for none.
  int64_t live_calls() const { return live_.load(std::memory_order_acquire); }

 private:
  // Serves `queue` until it is shut down; with passengers, serves theirs
  // in between.
  void Run(grpc::ServerCompletionQueue* queue, bool with_passengers);
  // Serves what the passengers' queues hold now, without waiting. Returns
  // false once every passenger queue is shut down and drained.
  bool ServePassengers();
  // Serves what `queues` hold now, without waiting; true if any is still
  // open (not shut down, or not yet drained).
  static bool ServeNow(
      const std::vector<std::unique_ptr<grpc::ServerCompletionQueue>>& queues);

  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  std::vector<CallQueues*> passengers_;
  CallQueues* host_ = nullptr;  // whose first thread serves us (passenger)
  bool shut_down_ = false;
  std::atomic<int64_t> live_{0};  // call objects (Live)

  absl::Mutex mu_;
  bool accepting_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_CALL_QUEUES_H_
