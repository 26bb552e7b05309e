// The Admin gRPC service: GetStatus, ListOffenders (read role),
// ForgetClient and Reload (admin role).
//
// Each handler authorizes the caller (access.h; the refusal is counted and
// logged), checks the request, asks the part that knows the answer
// (DirectoryManager for the directory and reloads, harvest::Detector for
// client state), translates the answer into the API's messages, logs the
// actions that change state (ForgetClient, Reload) with the caller's peer,
// records the call in metrics and returns its absl::Status through
// ToGrpcStatus (grpc_status.h).
//
// Served by GenericCalls (generic_calls.h) on the server's Admin worker
// thread: a reload may take seconds and must not hold up the threads that
// answer validation calls.
//
// Thread safety: safe to call concurrently as long as what it points at
// outlives it (DirectoryManager and Detector are thread-safe themselves).
#ifndef RCPTGUARD_SERVER_SERVICE_ADMIN_SERVICE_H_
#define RCPTGUARD_SERVER_SERVICE_ADMIN_SERVICE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "rcptguard/v1/admin.pb.h"
#include "server/harvest/harvest.h"
#include "server/harvest_shared/replicator.h"
#include "server/metrics/metrics.h"
#include "server/service/access.h"
#include "server/service/directory_manager.h"

namespace rcptguard::service {

class AdminService final {
 public:
  // `detector` may be null (harvest detection disabled); `metrics` may be
  // null (nothing recorded); `access` may be null (everyone allowed).
  AdminService(DirectoryManager* manager, harvest::Detector* detector,
               bool observe_only, metrics::ServerMetrics* metrics = nullptr,
               const AccessPolicy* access = nullptr,
               harvest_shared::Replicator* replicator = nullptr)
      : manager_(manager),
        detector_(detector),
        observe_only_(observe_only),
        metrics_(metrics),
        access_(access),
        replicator_(replicator) {}

  // Answers one call of `method`, the full gRPC method name (e.g.
  // "/rcptguard.v1.Admin/Reload"), with the serialized response or the
  // call's error: UNIMPLEMENTED for a method Admin does not have,
  // INVALID_ARGUMENT for a request that does not parse.
  absl::Status Answer(std::string_view method,
                      const grpc::ServerContextBase& context,
                      const grpc::ByteBuffer& request,
                      grpc::ByteBuffer* response);

 private:
  // The work of each call once the caller is authorized; free of gRPC but
  // for the peer string that the state-changing calls log.
  absl::Status DoGetStatus(v1::GetStatusResponse* response) const;
  absl::Status DoListOffenders(const v1::ListOffendersRequest& request,
                               v1::ListOffendersResponse* response) const;
  absl::Status DoForgetClient(const v1::ForgetClientRequest& request,
                              const std::string& peer,
                              v1::ForgetClientResponse* response);
  absl::Status DoReload(const v1::ReloadRequest& request,
                        const std::string& peer, v1::ReloadResponse* response);

  // OK when the caller may act in `role`; otherwise the refusal (counted
  // and logged).
  absl::Status Authorize(const grpc::ServerContextBase& context,
                         Role role) const;

  // Constant after construction.
  DirectoryManager* const manager_;
  harvest::Detector* const detector_;
  const bool observe_only_;
  metrics::ServerMetrics* const metrics_;
  const AccessPolicy* const access_;
  // Null unless harvest.shared: ForgetClient then clears every replica.
  harvest_shared::Replicator* const replicator_;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_ADMIN_SERVICE_H_
