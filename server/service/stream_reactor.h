// One ValidateStream or ValidateBatchStream call of
// RecipientValidationService (validation_service.h), served on one of our
// completion queues (call_queues.h); internal to the service.
//
// Each object first awaits a new call of its method on its queue (Await);
// when one arrives it awaits the next (so a call is always awaited) and
// serves its own. Every operation's completion comes back on the queue,
// whose thread calls OnReadDone, OnWriteDone or OnFinishDone.
//
// Requests are read and answered one after another, in order; the next
// read starts as soon as a request is answered, while its answer is still
// being written, so a client that sends several requests before reading
// their answers (pipelining) has them all in flight: reads and writes
// overlap and gRPC carries several messages per system call. Answers are
// serialized as soon as they are built and wait as bytes. Reading pauses
// (backpressure) while an answer waits and any of these holds: kMaxQueued
// answers wait, the stream's waiting answers reach
// limits.max_stream_buffer_bytes, or all streams' waiting answers reach
// limits.max_buffered_response_bytes; it resumes as the client reads. One
// answer may always wait, so every stream makes progress. Each message is
// authorized (at the first one only: the peer's certificate cannot change
// within a stream), parsed, charged and validated as a unary call is, and
// recorded as one ValidateStream request. A refused request ends the
// stream with its error, through ToGrpcStatus, once the answers before it
// are written. Deletes itself when done.
//
// Thread safety: a call's completions all come from its queue, which one
// thread drives, so they never run at the same time; the state they share
// is still guarded by mu_ (uncontended) and the stream's operations (Read,
// Write, Finish) are started after releasing it.
#ifndef RCPTGUARD_SERVER_SERVICE_STREAM_REACTOR_H_
#define RCPTGUARD_SERVER_SERVICE_STREAM_REACTOR_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_stream.h"
#include "grpcpp/support/byte_buffer.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/service/call_queues.h"
#include "server/service/validation_service.h"

namespace rcptguard::service {

class RecipientValidationService::StreamReactor final {
 public:
  // Answers that may wait to be written before reading pauses.
  static constexpr size_t kMaxQueued = 64;

  // Awaits the next call of ValidateStream (or, with `batch`, of
  // ValidateBatchStream: the messages are ValidateBatchRequests, answered
  // by AnswerBatch) on `queue`, one of `queues`.
  static void Await(RecipientValidationService* service, CallQueues* queues,
                    grpc::ServerCompletionQueue* queue, bool batch);

 private:
  StreamReactor(RecipientValidationService* service, CallQueues* queues,
                grpc::ServerCompletionQueue* queue, bool batch);

  // A call arrived (ok) or the server shuts down (!ok). Opens the stream
  // (counted per peer; over the limit it finishes at once with the
  // refusal) and starts the first read.
  void OnStarted(bool ok);
  void OnReadDone(bool ok);
  void OnWriteDone(bool ok);
  // The call is over (Finish is started only when no read or write is
  // outstanding): uncounts it and deletes this.
  void OnFinishDone(bool ok);

  // What to start once mu_ is released.
  struct Actions {
    grpc::ByteBuffer* write = nullptr;
    bool read = false;
    std::optional<absl::Status> finish;
  };

  // Drops the `n` oldest waiting answers from the accounting.
  void Dequeue(size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decides the next operations from the state, and marks them started.
  Actions NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(const Actions& next);

  RecipientValidationService* const service_;
  CallQueues* const queues_;
  // Counts this call (call_queues.h); destroyed after its gRPC objects.
  CallQueues::Live live_;
  grpc::ServerCompletionQueue* const queue_;
  const bool batch_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> stream_{
      &context_};
  Op<StreamReactor> started_{this, &StreamReactor::OnStarted};
  Op<StreamReactor> read_done_{this, &StreamReactor::OnReadDone};
  Op<StreamReactor> write_done_{this, &StreamReactor::OnWriteDone};
  Op<StreamReactor> finish_done_{this, &StreamReactor::OnFinishDone};
  // Set once in OnStarted.
  std::string peer_;      // what the stream is counted under
  bool counted_ = false;  // streams_.Open succeeded

  // Used by OnReadDone only (one read at a time).
  // The caller's identity or its refusal, from the first message on.
  std::optional<absl::StatusOr<std::string>> identity_;
  grpc::ByteBuffer request_bytes_;
  uint64_t messages_ = 0;  // read so far

  // Serialized answers not yet written: ring_[head_] and the queued_ - 1
  // after it (circularly), oldest first; ring_[head_] is being written when
  // writing_. Not guarded: a slot belongs to OnReadDone while it builds the
  // answer in it, then to the queue, then to gRPC while written.
  std::array<grpc::ByteBuffer, kMaxQueued> ring_;

  absl::Mutex mu_;
  std::array<uint64_t, kMaxQueued> sizes_ ABSL_GUARDED_BY(mu_) = {};
  uint64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t head_ ABSL_GUARDED_BY(mu_) = 0;
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;  // no more requests
  bool broken_ ABSL_GUARDED_BY(mu_) = false;       // a write failed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;     // Finish was called
  // The status a refused request ends the stream with.
  std::optional<absl::Status> refusal_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_STREAM_REACTOR_H_
