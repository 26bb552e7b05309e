// The RecipientValidation gRPC service: Validate (unary), ValidateStream
// (bidirectional, stream_reactor.h) and GetServedDomains (unary, for the
// edges' failure policy; any identity that may validate may ask).
//
// Each handler, for each request: authorizes the caller (access.h; the
// refusal is counted and logged), parses the raw request bytes itself
// (wire.h) so that a request that does not parse is answered
// INVALID_ARGUMENT naming the field, not UNIMPLEMENTED, charges the
// caller's recipient budget (RateLimiter), asks the Validator, serializes
// the answer, records the call in metrics, and returns the absl::Status
// through ToGrpcStatus (grpc_status.h). Served on our completion queues
// (call_queues.h): a call is answered by the thread that polled it, with no
// hand-over between threads.
//
//   service.Serve(&queues, queue);   // for each queue, in CallQueues::Start
//
// Thread safety: the calls run on the queues' threads; the service is safe
// to use from several at once as long as what it points at outlives it.
#ifndef RCPTGUARD_SERVER_SERVICE_VALIDATION_SERVICE_H_
#define RCPTGUARD_SERVER_SERVICE_VALIDATION_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "server/metrics/metrics.h"
#include "server/service/access.h"
#include "server/service/call_queues.h"
#include "server/service/stream_limits.h"
#include "server/service/validator.h"

namespace rcptguard::service {

class RecipientValidationService final
    : public v1::RecipientValidation::WithRawMethod_Validate<
          v1::RecipientValidation::WithRawMethod_ValidateStream<
              v1::RecipientValidation::WithRawMethod_GetServedDomains<
                  v1::RecipientValidation::WithRawMethod_ValidateBatchStream<
                      v1::RecipientValidation::Service>>>> {
 public:
  // `metrics`, `access` and `limiter` may be null (no metrics, everyone
  // allowed, no budget).
  explicit RecipientValidationService(const Validator* validator,
                                      metrics::ServerMetrics* metrics = nullptr,
                                      const AccessPolicy* access = nullptr,
                                      RateLimiter* limiter = nullptr,
                                      const StreamLimits& limits = {});

  // Awaits the first call of each method on `queue` (one of `queues`, in
  // CallQueues::Start); each call awaits the next when it arrives.
  void Serve(CallQueues* queues, grpc::ServerCompletionQueue* queue);

  // From now on every answer has `draining` set (the server is shutting
  // down: edges move their new requests elsewhere). Safe from any thread.
  void SetDraining() { draining_.store(true, std::memory_order_relaxed); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // Octets of stream answers waiting to be written, over all streams.
  uint64_t buffered_response_bytes() const { return budget_.used(); }

 private:
  class UnaryCall;      // validation_service.cc
  class StreamReactor;  // stream_reactor.h

  // The unary methods' work: the answer's octets or the call's error.
  absl::Status AnswerValidate(const grpc::ServerContextBase& context,
                              const grpc::ByteBuffer& request,
                              grpc::ByteBuffer* response) const;
  absl::Status AnswerServedDomains(const grpc::ServerContextBase& context,
                                   const grpc::ByteBuffer& request,
                                   grpc::ByteBuffer* response) const;

  // The caller's identity if it may validate; otherwise the refusal
  // (counted and logged).
  absl::StatusOr<std::string> Identify(
      const grpc::ServerContextBase& context) const;
  // OK when `identity` may ask about `recipients` more recipients now
  // (its budget); otherwise RESOURCE_EXHAUSTED (counted and logged).
  absl::Status Charge(const grpc::ServerContextBase& context,
                      const std::string& identity, int recipients) const;
  // Parses a request; a malformed one is counted and logged (rate-limited)
  // and its error returned.
  absl::Status Parse(const grpc::ServerContextBase& context,
                     const grpc::ByteBuffer& bytes,
                     v1::ValidateRequest* request) const;
  // One ValidateBatchStream message (batch_stream.cc): every request judged
  // as Validate judges it, each failure in its own result. Errors (ending
  // the stream): InvalidArgument for a message that is not a
  // ValidateBatchRequest or holds too many requests.
  absl::Status AnswerBatch(const grpc::ServerContextBase& context,
                           const std::string& identity,
                           const grpc::ByteBuffer& bytes,
                           grpc::ByteBuffer* answer) const;

  // Constant after construction.
  const Validator* const validator_;
  metrics::ServerMetrics* const metrics_;
  const AccessPolicy* const access_;
  RateLimiter* const limiter_;
  const StreamLimits limits_;
  // Thread-safe themselves; shared by every stream.
  mutable StreamCounter streams_;
  mutable BufferBudget budget_;
  std::atomic<bool> draining_{false};
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_VALIDATION_SERVICE_H_
