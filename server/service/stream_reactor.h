// One ValidateStream or ValidateBatchStream call of
// RecipientValidationService (validation_service.h); internal to the
// service, which creates one per stream. The two differ only in what one
// message holds: one request and its answer, or a batch of requests
// (ValidateBatch, at most kMaxBatchRequests) and their answers in order.
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
// Thread safety: gRPC may run OnReadDone and OnWriteDone at the same time
// on different threads; the state they share is guarded by mu_, and the
// gRPC calls (StartRead, StartWrite, Finish) are made after releasing it.
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
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/service/validation_service.h"

namespace rcptguard::service {

class RecipientValidationService::StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Answers that may wait to be written before reading pauses.
  static constexpr size_t kMaxQueued = 64;
  // Requests one ValidateBatch may hold (validation.proto).
  static constexpr int kMaxBatchRequests = 1000;

  // Opens the stream (counted per peer; over the limit it finishes at once
  // with the refusal) and starts the first read. `batch`: the messages are
  // ValidateBatch / ValidateBatchResponse.
  StreamReactor(const RecipientValidationService* service,
                grpc::CallbackServerContext* context, bool batch = false);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  // What to start once mu_ is released.
  struct Actions {
    grpc::ByteBuffer* write = nullptr;
    bool read = false;
    std::optional<absl::Status> finish;
  };

  // Parses, charges and answers the message in request_bytes_ into
  // `out`. On a refusal, `refused_id` is the request_id it names.
  absl::Status AnswerOne(grpc::ByteBuffer* out, uint64_t* refused_id);
  absl::Status AnswerBatch(grpc::ByteBuffer* out, uint64_t* refused_id);

  // Drops the `n` oldest waiting answers from the accounting.
  void Dequeue(size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decides the next operations from the state, and marks them started.
  Actions NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(const Actions& next);

  const RecipientValidationService* const service_;
  grpc::CallbackServerContext* const context_;
  const bool batch_;
  // Constant after construction.
  std::string peer_;     // what the stream is counted under
  bool counted_ = true;  // streams_.Open succeeded

  // Used by OnReadDone only (one read at a time).
  // The caller's identity or its refusal, from the first message on.
  std::optional<absl::StatusOr<std::string>> identity_;
  grpc::ByteBuffer request_bytes_;
  v1::ValidateRequest request_;
  v1::ValidateResponse response_;
  v1::ValidateBatch batch_request_;
  v1::ValidateBatchResponse batch_response_;
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
  bool reading_ ABSL_GUARDED_BY(mu_) = true;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;  // no more requests
  bool broken_ ABSL_GUARDED_BY(mu_) = false;       // a write failed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;     // Finish was called
  // The status a refused request ends the stream with.
  std::optional<absl::Status> refusal_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_STREAM_REACTOR_H_
