// Everything rcptguardd serves besides RecipientValidation, through gRPC's
// generic API on our completion queues (call_queues.h): Admin, our own
// grpc.health.v1 (Check and Watch), server reflection (v1 and v1alpha),
// and UNIMPLEMENTED for any other method. None of gRPC's own services
// (default health, the reflection plugin) is used: each would bring
// threads of gRPC's that poll and take turns with ours.
//
//   Health health;
//   GenericCalls calls({.admin = &admin, .reflection = &reflection}, &health);
//   calls.Register(&builder);
//   ... queues.Start([&](auto* q) { calls.Serve(&queues, q); });
//   health.Set(true);
//   ...
//   health.EndWatches();  server->Shutdown(deadline);  calls.StopWorker();
//
// Admin calls run one at a time on a worker thread of their own (a reload
// takes seconds; the queues' threads answer validation calls meanwhile);
// health and reflection are answered on the queue's thread.
#ifndef RCPTGUARD_SERVER_SERVICE_GENERIC_CALLS_H_
#define RCPTGUARD_SERVER_SERVICE_GENERIC_CALLS_H_

#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/server_builder.h"
#include "server/service/admin_service.h"
#include "server/service/call_queues.h"
#include "server/service/reflection_v1.h"

namespace rcptguard::service {

// The grpc.health.v1 status shared by the servers of one rcptguardd (main
// and health-only port), and the Watch streams that follow it.
//
// Check and Watch know the overall status ("") and
// "rcptguard.v1.RecipientValidation" (the same status); Check answers
// NOT_FOUND for other names, Watch SERVICE_UNKNOWN (grpc.health.v1).
//
// Thread safety: every method may be called from any thread.
class Health {
 public:
  // A Watch stream, told each new status.
  class Watcher {
   public:
    virtual void Push(bool serving) = 0;
    // The server shuts down: the stream ends.
    virtual void End() = 0;

   protected:
    ~Watcher() = default;
  };

  // Ignored once ShutDown() was called.
  void Set(bool serving) ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_SERVING for good (the server is shutting down).
  void ShutDown() ABSL_LOCKS_EXCLUDED(mu_);
  bool serving() const ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every Watch stream, and those that start from now on.
  void EndWatches() ABSL_LOCKS_EXCLUDED(mu_);

  // A watcher is pushed the current status at once (or ended); Remove
  // returns once no Push or End runs on it any more.
  void Add(Watcher* watcher) ABSL_LOCKS_EXCLUDED(mu_);
  void Remove(Watcher* watcher) ABSL_LOCKS_EXCLUDED(mu_);

  // Whether Check and Watch know `service`.
  static bool Knows(std::string_view service);

 private:
  // Records the status and pushes a change to every watcher.
  void SetLocked(bool serving) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

class GenericCalls {
 public:
  struct Options {
    // Null: Admin is not served (the health-only port).
    AdminService* admin = nullptr;
    // Null: no reflection (the health-only port).
    const ReflectionV1Service* reflection = nullptr;
    // Said in UNIMPLEMENTED answers after the method's name.
    std::string unimplemented = "no such method";
  };

  // `health` must outlive this.
  GenericCalls(Options options, Health* health);
  // Stops the worker if StopWorker() has not.
  ~GenericCalls();

  // Registers the generic service with `builder` (before BuildAndStart).
  void Register(grpc::ServerBuilder* builder);
  // Awaits the first call on `queue` (in CallQueues::Start).
  void Serve(CallQueues* queues, grpc::ServerCompletionQueue* queue);
  // After grpc::Server::Shutdown returned: runs what the worker holds,
  // then joins it.
  void StopWorker() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class Call;

  // Runs `work` on the worker thread, after what it holds already; false
  // (and `work` dropped) once StopWorker has begun: nothing would run it.
  bool Post(std::function<void()> work) ABSL_LOCKS_EXCLUDED(mu_);
  void RunWorker() ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const Options options_;
  Health* const health_;
  grpc::AsyncGenericService service_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> work_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;  // with Admin only
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_GENERIC_CALLS_H_
