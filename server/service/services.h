// gRPC services of rcptguardd. Handlers are thin: they call plain C++ parts
// (Validator, DirectoryManager), convert the status, and nothing else.
//
// Thread safety: gRPC calls these from its own thread pool; every service is
// safe to call concurrently as long as what it points at outlives it.
#ifndef RCPTGUARD_SERVER_SERVICE_SERVICES_H_
#define RCPTGUARD_SERVER_SERVICE_SERVICES_H_

#include "grpcpp/support/message_allocator.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "server/metrics/metrics.h"
#include "server/service/access.h"
#include "server/service/directory_manager.h"
#include "server/service/validator.h"

namespace rcptguard::service {

// Allocates each Validate's request and response on a protobuf arena.
// Thread safety: AllocateMessages() may be called from any thread.
class ArenaMessageAllocator final
    : public grpc::MessageAllocator<v1::ValidateRequest,
                                    v1::ValidateResponse> {
 public:
  grpc::MessageHolder<v1::ValidateRequest, v1::ValidateResponse>*
  AllocateMessages() override;
};

// Served with gRPC's callback API: a call is answered on the thread that
// read it, with no hand-over to a thread of a synchronous pool.
class RecipientValidationService final
    : public v1::RecipientValidation::CallbackService {
 public:
  // `metrics`, `access` and `limiter` may be null (no metrics, everyone
  // allowed, no budget).
  explicit RecipientValidationService(const Validator* validator,
                                      metrics::ServerMetrics* metrics = nullptr,
                                      const AccessPolicy* access = nullptr,
                                      RateLimiter* limiter = nullptr);

  grpc::ServerUnaryReactor* Validate(grpc::CallbackServerContext* context,
                                     const v1::ValidateRequest* request,
                                     v1::ValidateResponse* response) override;
  grpc::ServerBidiReactor<v1::ValidateRequest, v1::ValidateResponse>*
  ValidateStream(grpc::CallbackServerContext* context) override;

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

  const Validator* const validator_;
  metrics::ServerMetrics* const metrics_;
  const AccessPolicy* const access_;
  RateLimiter* const limiter_;
  ArenaMessageAllocator allocator_;
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
