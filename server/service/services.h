// gRPC services of rcptguardd. Handlers check who calls and what they send,
// call plain C++ parts (Validator, DirectoryManager) and convert the
// status.
//
// Thread safety: gRPC calls these from its own thread pool; every service is
// safe to call concurrently as long as what it points at outlives it.
#ifndef RCPTGUARD_SERVER_SERVICE_SERVICES_H_
#define RCPTGUARD_SERVER_SERVICE_SERVICES_H_

#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "server/metrics/metrics.h"
#include "server/service/access.h"
#include "server/service/directory_manager.h"
#include "server/service/stream_limits.h"
#include "server/service/validator.h"

namespace rcptguard::service {

// The validation service. Served with gRPC's callback API: a call is
// answered on the thread that read it, with no hand-over to a thread of a
// synchronous pool. Requests are read as raw bytes and parsed here
// (server/service/wire.h), so that a request that does not parse is
// answered INVALID_ARGUMENT naming the field, not UNIMPLEMENTED.
class RecipientValidationService final
    : public v1::RecipientValidation::WithRawCallbackMethod_Validate<
          v1::RecipientValidation::WithRawCallbackMethod_ValidateStream<
              v1::RecipientValidation::Service>> {
 public:
  // `metrics`, `access` and `limiter` may be null (no metrics, everyone
  // allowed, no budget).
  explicit RecipientValidationService(const Validator* validator,
                                      metrics::ServerMetrics* metrics = nullptr,
                                      const AccessPolicy* access = nullptr,
                                      RateLimiter* limiter = nullptr,
                                      const StreamLimits& limits = {});

  grpc::ServerUnaryReactor* Validate(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ValidateStream(
      grpc::CallbackServerContext* context) override;

  // Octets of stream answers waiting to be written, over all streams.
  uint64_t buffered_response_bytes() const { return budget_.used(); }

 private:
  class StreamReactor;

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

  const Validator* const validator_;
  metrics::ServerMetrics* const metrics_;
  const AccessPolicy* const access_;
  RateLimiter* const limiter_;
  const StreamLimits limits_;
  mutable StreamCounter streams_;
  mutable BufferBudget budget_;
};

class AdminService final : public v1::Admin::Service {
 public:
  // `detector` may be null (harvest detection disabled); `access` may be
  // null (everyone allowed).
  AdminService(DirectoryManager* manager, harvest::Detector* detector,
               bool observe_only, metrics::ServerMetrics* metrics = nullptr,
               const AccessPolicy* access = nullptr)
      : manager_(manager),
        detector_(detector),
        observe_only_(observe_only),
        metrics_(metrics),
        access_(access) {}

  grpc::Status GetStatus(grpc::ServerContext* context,
                         const v1::GetStatusRequest* request,
                         v1::GetStatusResponse* response) override;
  grpc::Status ListOffenders(grpc::ServerContext* context,
                             const v1::ListOffendersRequest* request,
                             v1::ListOffendersResponse* response) override;
  grpc::Status ForgetClient(grpc::ServerContext* context,
                            const v1::ForgetClientRequest* request,
                            v1::ForgetClientResponse* response) override;
  grpc::Status Reload(grpc::ServerContext* context,
                      const v1::ReloadRequest* request,
                      v1::ReloadResponse* response) override;

 private:
  grpc::Status GetStatusImpl(grpc::ServerContext* context,
                             const v1::GetStatusRequest* request,
                             v1::GetStatusResponse* response);
  grpc::Status ListOffendersImpl(grpc::ServerContext* context,
                                 const v1::ListOffendersRequest* request,
                                 v1::ListOffendersResponse* response);
  grpc::Status ForgetClientImpl(grpc::ServerContext* context,
                                const v1::ForgetClientRequest* request,
                                v1::ForgetClientResponse* response);
  grpc::Status ReloadImpl(grpc::ServerContext* context,
                          const v1::ReloadRequest* request,
                          v1::ReloadResponse* response);

  // OK when the caller may act in `role`; otherwise the refusal (counted).
  grpc::Status Authorize(const grpc::ServerContextBase& context,
                         Role role) const;

  DirectoryManager* const manager_;
  harvest::Detector* const detector_;
  const bool observe_only_;
  metrics::ServerMetrics* const metrics_;
  const AccessPolicy* const access_;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_SERVICES_H_
